//! What the suite is pointed at: an endpoint and the runs it can do.

use std::time::Duration;

use serde_json::Value;
use theory_protocol::Mode;

/// Inputs and mode of one kind of run the target supports.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// `mock` or `real`.
    pub mode: Mode,
    /// The inputs, in any form the processor accepts.
    pub inputs: Value,
}

impl RunSpec {
    /// A mock run with these inputs.
    pub fn mock(inputs: Value) -> RunSpec {
        RunSpec { mode: Mode::Mock, inputs }
    }
}

/// A processor endpoint and what it can be asked to do. Checks that need a run kind the target
/// lacks are reported as not applicable, with the reason, never as passed.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port`.
    pub base_url: String,
    /// The server's process id on this machine, for resource checks.
    pub pid: Option<u32>,
    /// A run that succeeds quickly with at least one output.
    pub quick: RunSpec,
    /// A run whose handler takes several seconds and honours cancellation.
    pub slow: Option<RunSpec>,
    /// A run whose handler ignores cancellation, to prove the hard stop.
    pub stubborn: Option<RunSpec>,
    /// A run with one output of at least [`Target::large_min_bytes`].
    pub large: Option<RunSpec>,
    /// A run whose handler returns an output path that escapes (`../x`).
    pub bad_path: Option<RunSpec>,
    /// A run whose handler panics.
    pub panics: Option<RunSpec>,
    /// How many quick runs in a row the endurance check serves.
    pub endurance_runs: usize,
    /// The least size of the large output.
    pub large_min_bytes: u64,
    /// The most memory (peak RSS) the server may use, large output included.
    pub max_peak_rss_bytes: u64,
    /// The cancel grace period the server was started with.
    pub cancel_grace: Duration,
    /// The address the processor reaches this machine's stand-in servers at; `None` is
    /// 127.0.0.1. A processor in a container gets its bridge's gateway here.
    pub host_address: Option<String>,
}

impl Target {
    /// The runs of the probe's inputs (`theory/probe@1`, and the Python SDK's
    /// `examples/probe.py`, which reads them the same way): a quick echo, a slow run, one that
    /// ignores cancel, a bad output path, a panic and a 256 MiB output.
    #[must_use]
    pub fn with_probe_runs(mut self) -> Target {
        self.slow = Some(RunSpec::mock(serde_json::json!({"sleep_ms": 60_000})));
        self.stubborn =
            Some(RunSpec::mock(serde_json::json!({"sleep_ms": 60_000, "ignore_cancel": true})));
        self.bad_path = Some(RunSpec::mock(serde_json::json!({"relpath": "../escape.txt"})));
        self.panics = Some(RunSpec::mock(serde_json::json!({"panic": true})));
        self.large = Some(RunSpec::mock(serde_json::json!({"size_bytes": 256 * 1024 * 1024 + 17})));
        self
    }

    /// A target with only a quick run and the contract's default limits.
    pub fn new(base_url: impl Into<String>, quick: RunSpec) -> Target {
        Target {
            base_url: base_url.into(),
            pid: None,
            quick,
            slow: None,
            stubborn: None,
            large: None,
            bad_path: None,
            panics: None,
            endurance_runs: 10_000,
            large_min_bytes: 256 * 1024 * 1024,
            max_peak_rss_bytes: 64 * 1024 * 1024,
            cancel_grace: Duration::from_secs(2),
            host_address: None,
        }
    }
}

//! `theory/probe@1`: a diagnostics processor. It echoes its text, and on request produces a
//! large output, sleeps (honouring cancellation or not), writes a bad output path, panics, fails
//! with a chosen code or demands a secret — so every part of `theory.run.v1` can be exercised on
//! a real processor, and users can check a setup without an API key.
//!
//! Parameters (all optional), in `params`:
//!
//! | key | effect |
//! |---|---|
//! | `text` | echoed as tokens and in `echo.txt` (default `probe`) |
//! | `size_bytes` | adds `blob.bin`, that many deterministic bytes, streamed from a file |
//! | `sleep_ms` | sleeps that long before finishing, stopping early when cancelled |
//! | `ignore_cancel` | with `sleep_ms`, sleeps without watching for cancellation |
//! | `relpath` | adds an output at this relative path, valid or not |
//! | `output_count` | adds that many small outputs, `many/00000.txt` on (at most 100,000) |
//! | `ballast` | any value, ignored (for measuring large inputs) |
//! | `panic` | panics in the handler |
//! | `fail` | `{"code": "ERR_…", "message": "…"}`: fails with that code |
//! | `require_secret` | in `real` mode, reads this secret (`ERR_MISSING_SECRET` when unset) |
//! | `leak_secret` | with `require_secret`, tries to leak its value in a log line and an error (for redaction tests) |
//! | `crash` | exits the whole process mid-run (code 70), as a crash would |
//! | `stamp_tokens` | each token is the time it was sent, in µs since the epoch (for latency benchmarks) |
//! | `usage` | an object reported as the run's `usage` (token counts, `cost_usd_micro`), for pricing |
//!
//! Outputs: `echo.txt`, `meta.json` (`{"text","mode","input_files","size_bytes"}`), and the
//! optional `blob.bin` and `relpath` output.

use std::io::Write;
use std::time::Duration;

use serde::Deserialize;
use theory_processor::protocol::ErrorCode;
use theory_processor::{
    Context, Identity, Inputs, OutputFile, OutputItem, ProcessorError, ProcessorResult,
};

/// The ref this processor answers to.
pub const REF: &str = "theory/probe@1";

/// Returns the probe's identity.
pub fn identity() -> Identity {
    Identity::new(REF)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each flag asks for one behaviour of the contract"
)]
struct Params {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    size_bytes: Option<u64>,
    #[serde(default)]
    sleep_ms: Option<u64>,
    #[serde(default)]
    ignore_cancel: bool,
    #[serde(default)]
    stamp_tokens: bool,
    #[serde(default)]
    relpath: Option<String>,
    #[serde(default)]
    output_count: Option<u32>,
    #[serde(default, rename = "ballast")]
    _ballast: serde::de::IgnoredAny,
    #[serde(default)]
    panic: bool,
    #[serde(default)]
    fail: Option<Failure>,
    #[serde(default)]
    require_secret: Option<String>,
    #[serde(default)]
    leak_secret: bool,
    #[serde(default)]
    crash: bool,
    #[serde(default)]
    usage: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Failure {
    code: String,
    message: String,
}

/// Runs the probe once.
pub async fn run(inputs: Inputs, context: Context) -> Result<ProcessorResult, ProcessorError> {
    let params: Params = inputs.params_as()?;
    if context.mode() == theory_processor::protocol::Mode::Real
        && let Some(name) = &params.require_secret
    {
        let value = context.secret(name)?;
        if params.leak_secret {
            context.info(format!("the secret is {value}"));
            return Err(ProcessorError::runtime(format!("leaking {value} on purpose")));
        }
    }
    let text = params.text.clone().unwrap_or_else(|| "probe".into());
    for (index, word) in text.split(' ').enumerate() {
        if params.stamp_tokens {
            let sent = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_micros());
            context.token(format!("{sent} "));
            continue;
        }
        context.token(if index == 0 { word.to_owned() } else { format!(" {word}") });
    }
    if let Some(sleep_ms) = params.sleep_ms {
        let sleep = tokio::time::sleep(Duration::from_millis(sleep_ms));
        if params.ignore_cancel {
            sleep.await;
        } else {
            tokio::select! {
                () = sleep => {}
                () = context.cancelled() => return Err(ProcessorError::cancelled()),
            }
        }
    }
    assert!(!params.panic, "the probe was asked to panic");
    if params.crash {
        // The whole process goes, mid-run, as a segfault or an OOM kill would take it.
        tokio::time::sleep(Duration::from_millis(20)).await;
        std::process::exit(70);
    }
    if let Some(failure) = params.fail {
        return Err(ProcessorError::new(ErrorCode::parse(&failure.code), failure.message));
    }

    let mut outputs = vec![OutputItem::text("echo.txt", text.clone())];
    if let Some(size_bytes) = params.size_bytes {
        let path = context.scratch_dir()?.join("blob.bin");
        let blob = tokio::task::spawn_blocking(move || write_pattern(path, size_bytes, &text))
            .await
            .map_err(|error| ProcessorError::runtime(error.to_string()))??;
        outputs.push(blob);
    }
    if let Some(count) = params.output_count {
        if count > MAX_OUTPUT_COUNT {
            let message = format!("output_count is at most {MAX_OUTPUT_COUNT}, found {count}");
            return Err(ProcessorError::new(ErrorCode::InputSchema, message));
        }
        outputs.extend(
            (0..count)
                .map(|index| OutputItem::text(format!("many/{index:05}.txt"), index.to_string())),
        );
    }
    if let Some(relpath) = params.relpath {
        outputs.push(OutputItem::text(relpath, "extra"));
    }
    let meta = serde_json::json!({
        "text": params.text.unwrap_or_else(|| "probe".into()),
        "mode": context.mode(),
        "input_files": context.input_files().values().map(|file| file.cid.to_string()).collect::<Vec<_>>(),
        "size_bytes": params.size_bytes,
    });
    outputs.push(OutputItem::json("meta.json", &meta)?);
    Ok(ProcessorResult {
        outputs,
        processor_info: identity().processor_info,
        usage: params.usage,
        ..ProcessorResult::default()
    })
}

/// The most small outputs `output_count` asks for.
const MAX_OUTPUT_COUNT: u32 = 100_000;

/// Writes `size_bytes` of a pattern seeded by `seed`, 1 MiB at a time, hashing as it writes;
/// returns it as the `blob.bin` output.
fn write_pattern(
    path: std::path::PathBuf,
    size_bytes: u64,
    seed: &str,
) -> std::io::Result<OutputItem> {
    let mut state = seed.bytes().fold(0x9E37_79B9_7F4A_7C15_u64, |state, byte| {
        (state ^ u64::from(byte)).wrapping_mul(0x100_0000_01B3)
    });
    let mut file = OutputFile::create(path)?;
    let mut block = vec![0u8; 1024 * 1024];
    let mut left = size_bytes;
    while left > 0 {
        for word in block.chunks_mut(8) {
            // xorshift64: cheap, deterministic, not compressible to nothing.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
        let take = left.min(block.len() as u64) as usize;
        file.write_all(&block[..take])?;
        left -= take as u64;
    }
    file.finish("blob.bin", "application/octet-stream")
}

//! The `docker` runtime on a real engine, with the built `theory/probe@1` image:
//! - `local start` to healthy (median of 5, the container removed between);
//! - warm `local run`: the orchestrator's run on the started container (p50/p99 of 200) against
//!   the processor's own work, a bare protocol run on the same endpoint — the difference is
//!   Theory's overhead (plan, `/info` check, store, index, receipts);
//! - cold `theory run` with the docker runtime (container created, run, removed) against the same
//!   by hand: `docker run`, wait for `/healthz`, one protocol run, `docker rm -f`.
//!
//! Needs Docker and the image (`theory processor build --ref theory/probe@1`). Run with
//! `cargo bench -p theory-local --bench docker_local` or `scripts/bench`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use theory_conformance::client::{client_open, run_once};
use theory_conformance::process::wait_healthy;
use theory_core::orchestrator::MemoCache;
use theory_core::registry::{Registry, sources_from_dir};
use theory_core::{Adapter, EnvSnapshot, Mode, Orchestrator, Redactor, RunRequest};
use theory_local::{LocalAdapter, Services};
use theory_protocol::Envelope;
use theory_store::FsStore;

const PROBE: &str = "theory/probe@1";
const IMAGE: &str = "theory-local/theory/probe:1";

/// The sample at `per_mille`/1000 of the sorted samples.
fn percentile(samples: &mut [Duration], per_mille: usize) -> Duration {
    samples.sort();
    samples[(samples.len() - 1) * per_mille / 1000]
}

fn registry() -> Arc<Registry> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../registry");
    Arc::new(Registry::load(sources_from_dir(&root).expect("registry files")).expect("registry"))
}

fn orchestrator(state: &Path, adapter: Arc<dyn Adapter>, env: EnvSnapshot) -> Orchestrator {
    Orchestrator {
        registry: registry(),
        store: Arc::new(FsStore::new(state.join("artifacts"))),
        adapters: BTreeMap::from([(theory_core::AdapterKind::Local, adapter)]),
        memo: MemoCache::new(state.join("memo")),
        redactor: Redactor::from_env(&env, std::iter::empty()),
        ledger: None,
        warm: None,
        signer: None,
        env,
    }
}

fn request(options: &str) -> RunRequest {
    RunRequest {
        reference: PROBE.parse().expect("ref"),
        adapter: theory_core::AdapterKind::Local,
        mode: Mode::Mock,
        write_prefix: None,
        inputs: json!({"text": "bench"}),
        options: theory_core::AdapterOptions::from_json(options).expect("options"),
        attachments: Vec::new(),
        transfer: theory_core::orchestrator::TransferRequest::default(),
        plan: None,
        use_cache: false,
        reuse_real: false,
        observer: None,
        cancel: theory_core::cancel::Cancel::default(),
    }
}

async fn timed_run(orchestrator: &Orchestrator, options: &str) -> Duration {
    let started = Instant::now();
    let outcome = orchestrator.run(request(options)).await;
    let elapsed = started.elapsed();
    assert!(matches!(outcome.envelope, Envelope::Success(_)), "{:?}", outcome.envelope);
    elapsed
}

fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().expect("docker CLI");
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    docker(&["image", "inspect", IMAGE]);
    let folder = tempfile::tempdir().expect("temp dir");
    let state = folder.path().join(".theory");
    let env = EnvSnapshot::from_pairs([("THEORY_LOCAL_RUNTIME", "docker")]);
    let adapter = LocalAdapter::from_env(&env, Some(&state));
    let services = Services::new(adapter.clone(), &state);
    let registry = registry();
    let spec = &registry.processor(&PROBE.parse().expect("ref")).expect("probe spec").spec;

    let mut starts = Vec::new();
    for _ in 0..5 {
        services.stop(Some(&spec.reference)).await.expect("stop");
        let started = Instant::now();
        services.start(spec, None, &env).await.expect("start");
        starts.push(started.elapsed());
    }
    eprintln!("local start → healthy (median of 5): {:.1?}", percentile(&mut starts, 500));

    let (info, _) = services.start(spec, None, &env).await.expect("running");
    let endpoint = format!("http://127.0.0.1:{}", info.port.expect("port"));
    let warm = orchestrator(&state, Arc::new(services.adapter()), env.clone());
    let (mut theory, mut bare) = (Vec::new(), Vec::new());
    for index in 0..200 {
        theory.push(timed_run(&warm, "{}").await);
        let frame =
            client_open(&format!("bare-{index}"), Mode::Mock, json!({"text": "bench"}), None);
        let started = Instant::now();
        run_once(&endpoint, &frame, Duration::from_secs(10)).await.expect("bare run");
        bare.push(started.elapsed());
    }
    let (theory_p50, bare_p50) = (percentile(&mut theory, 500), percentile(&mut bare, 500));
    eprintln!(
        "warm local run (200): p50 {theory_p50:.2?} p99 {:.2?}; the processor's own run p50 {bare_p50:.2?}; Theory's overhead p50 {:.2?}",
        percentile(&mut theory, 990),
        theory_p50.saturating_sub(bare_p50)
    );
    let service_adapter = services.adapter();
    let options = theory_core::AdapterOptions::default();
    let mut plans = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        service_adapter.plan(spec, &options, Mode::Mock).await.expect("plan");
        plans.push(started.elapsed());
    }
    eprintln!(
        "  of which the plan (Docker: image inspect + container list) p50 {:.2?}",
        percentile(&mut plans, 500)
    );
    services.stop(Some(&spec.reference)).await.expect("stop");

    let cold = orchestrator(&state, Arc::new(adapter), env);
    let (mut ours, mut by_hand) = (Vec::new(), Vec::new());
    for index in 0..10 {
        ours.push(timed_run(&cold, r#"{"runtime":"docker"}"#).await);
        let started = Instant::now();
        let id = docker(&["run", "-d", "-p", "127.0.0.1::8000", IMAGE]);
        let port = docker(&["port", &id, "8000/tcp"]);
        let published = format!("http://{}", port.lines().next().unwrap_or_default());
        wait_healthy(&published, Duration::from_secs(20)).await.expect("healthy");
        let frame =
            client_open(&format!("cold-{index}"), Mode::Mock, json!({"text": "bench"}), None);
        run_once(&published, &frame, Duration::from_secs(10)).await.expect("run");
        docker(&["rm", "-f", &id]);
        by_hand.push(started.elapsed());
    }
    eprintln!(
        "cold run in a new container (median of 10): theory {:.1?}; docker run + healthz + run + rm by hand {:.1?}",
        percentile(&mut ours, 500),
        percentile(&mut by_hand, 500)
    );
}

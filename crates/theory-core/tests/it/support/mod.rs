//! What the orchestrator tests share: an in-memory store, an in-process adapter, a registry.

mod in_process;
mod memory_store;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use theory_core::orchestrator::MemoCache;
use theory_core::registry::{DocumentKind, Registry, Source, sources_from_dir};
use theory_core::{
    AdapterOptions, EnvSnapshot, Mode, Orchestrator, Redactor, RunOutcome, RunRequest,
};

pub(crate) use in_process::{Counters, InProcessAdapter};
pub(crate) use memory_store::MemoryStore;

/// The repository's registry, plus a probe variant that requires a secret.
pub(crate) fn registry() -> Registry {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../registry");
    let mut sources = sources_from_dir(std::path::Path::new(root)).expect("registry readable");
    sources.push(Source {
        origin: "test:secretive.yaml".into(),
        kind: DocumentKind::Processor,
        text: "ref: theory/secretive@1\nsecrets: {required: [SECRETIVE_KEY]}\n".into(),
        builtin: false,
    });
    Registry::load(sources).expect("registry valid")
}

pub(crate) struct Harness {
    pub(crate) orchestrator: Orchestrator,
    pub(crate) store: MemoryStore,
    pub(crate) counters: Arc<Counters>,
    _memo: tempfile::TempDir,
}

pub(crate) fn harness(env: &[(&str, &str)]) -> Harness {
    let store = MemoryStore::default();
    let adapter = InProcessAdapter::new();
    let counters = Arc::clone(&adapter.counters);
    let memo = tempfile::tempdir().expect("temp dir");
    let env = EnvSnapshot::from_pairs(env.iter().copied());
    let orchestrator = Orchestrator {
        registry: Arc::new(registry()),
        store: Arc::new(store.clone()),
        adapters: BTreeMap::from([(
            theory_core::AdapterKind::Local,
            Arc::new(adapter) as Arc<dyn theory_core::Adapter>,
        )]),
        memo: MemoCache::new(memo.path()),
        redactor: Redactor::from_env(&env, ["SECRETIVE_KEY"]),
        ledger: None,
        warm: None,
        signer: None,
        env,
    };
    Harness { orchestrator, store, counters, _memo: memo }
}

pub(crate) fn request(reference: &str, mode: Mode, inputs: Value) -> RunRequest {
    RunRequest {
        reference: reference.parse().expect("valid ref"),
        adapter: theory_core::AdapterKind::Local,
        mode,
        write_prefix: None,
        inputs,
        options: AdapterOptions::default(),
        attachments: Vec::new(),
        transfer: theory_core::orchestrator::TransferRequest::default(),
        plan: None,
        use_cache: true,
        reuse_real: false,
        observer: None,
        cancel: theory_core::cancel::Cancel::default(),
    }
}

impl Harness {
    pub(crate) async fn run(&self, request: RunRequest) -> RunOutcome {
        self.orchestrator.run(request).await
    }

    pub(crate) fn starts(&self) -> usize {
        self.counters.starts.load(std::sync::atomic::Ordering::SeqCst)
    }
}

//! An adapter that serves `theory/probe@1` (or any processor) in this test process, on a real
//! loopback socket, counting starts and stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use theory_core::registry::ProcessorSpec;
use theory_core::{Adapter, AdapterOptions, Failure, Instance, Launch, Plan};
use theory_processor::{Identity, ServerConfig};
use theory_protocol::Mode;

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) plans: AtomicUsize,
    pub(crate) starts: AtomicUsize,
    pub(crate) stops: AtomicUsize,
}

pub(crate) struct InProcessAdapter {
    pub(crate) counters: Arc<Counters>,
    pub(crate) identity: String,
}

impl InProcessAdapter {
    pub(crate) fn new() -> InProcessAdapter {
        InProcessAdapter { counters: Arc::default(), identity: "test:probe-1".into() }
    }
}

struct InProcessInstance {
    endpoint: String,
    server: tokio::task::JoinHandle<()>,
    counters: Arc<Counters>,
}

#[async_trait]
impl Instance for InProcessInstance {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    async fn stop(self: Box<Self>) {}
}

impl Drop for InProcessInstance {
    fn drop(&mut self) {
        self.server.abort();
        self.counters.stops.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Adapter for InProcessAdapter {
    fn kind(&self) -> theory_core::AdapterKind {
        theory_core::AdapterKind::Local
    }

    async fn plan(
        &self,
        _spec: &ProcessorSpec,
        _options: &AdapterOptions,
        _mode: Mode,
    ) -> Result<Plan, Failure> {
        self.counters.plans.fetch_add(1, Ordering::SeqCst);
        Ok(Plan {
            runtime: theory_core::Runtime::Process,
            image_identity: self.identity.clone(),
            pinned: false,
            target: "theory_probe::run".into(),
            platform: None,
            secrets_held: false,
            reaches_host_loopback: true,
        })
    }

    async fn start(
        &self,
        _spec: &ProcessorSpec,
        _plan: &Plan,
        _launch: &Launch,
    ) -> Result<Box<dyn Instance>, Failure> {
        self.counters.starts.fetch_add(1, Ordering::SeqCst);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let config = ServerConfig {
            cancel_grace: std::time::Duration::from_millis(200),
            ..ServerConfig::default()
        };
        let server = tokio::spawn(async move {
            let _ = theory_processor::serve_on(
                listener,
                Identity::new("theory/probe@1"),
                theory_probe::run,
                config,
                std::future::pending(),
            )
            .await;
        });
        Ok(Box::new(InProcessInstance { endpoint, server, counters: Arc::clone(&self.counters) }))
    }
}

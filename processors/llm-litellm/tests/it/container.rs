//! The conformance suite against `llm/litellm@1` in its own image (built by `theory processor
//! build`, which `scripts/test` runs first), on a real Docker Engine. The container shares the
//! host's network so its real-mode runs reach the local fake provider.

use std::process::Command;
use std::time::Duration;

use theory_conformance::process::wait_healthy;
use theory_conformance::run_suite;

use crate::support::{assert_conforms, litellm_target};
use theory_conformance::llm::{KEY, LlmStandIn as FakeProvider};

const IMAGE: &str = "theory-local/llm/litellm:1";

/// Removes the container when the test ends, however it ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().expect("the docker CLI runs");
    assert!(
        output.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn litellm_in_its_container_passes_the_conformance_suite() {
    let present = Command::new("docker").args(["image", "inspect", IMAGE]).output();
    assert!(
        present.is_ok_and(|output| output.status.success()),
        "{IMAGE} is missing: build it with `theory processor build --ref llm/litellm@1` (scripts/test does), with Docker running"
    );
    let fake = FakeProvider::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let name = format!("theory-conformance-litellm-{}", std::process::id());
    let base = format!("OPENAI_API_BASE={}/v1", fake.base_url);
    let key = format!("OPENAI_API_KEY={KEY}");
    let port_env = format!("PORT={port}");
    let id = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "host",
        "-e",
        &port_env,
        "-e",
        "HOST=127.0.0.1",
        "-e",
        &key,
        "-e",
        &base,
        "-e",
        "THEORY_CANCEL_GRACE_MS=2000",
        IMAGE,
    ]);
    let _container = Container(id.clone());
    let base_url = format!("http://127.0.0.1:{port}");
    wait_healthy(&base_url, Duration::from_secs(20)).await.expect("the container becomes healthy");
    let pid: u32 = docker(&["inspect", "--format", "{{.State.Pid}}", &id]).parse().expect("a pid");

    let report = run_suite(&litellm_target(&base_url, pid)).await;
    assert_conforms(&report);
}

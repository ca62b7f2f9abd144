//! `theory serve` under load, measured from a separate client over loopback (SQLite ledger,
//! filesystem store, the probe in the process runtime, warm instances):
//!
//! - one mock run at a time through `POST /v1/runs` + `Prefer: wait`: p50 and p99;
//! - runs per second with 64 concurrent clients;
//! - 10,000 runs queued at once, drained, and the server's peak RSS;
//! - how long a token takes from the processor to an SSE subscriber (the probe stamps each token
//!   with the time it sent it);
//! - the server's RSS when idle.
//!
//! Run with `scripts/bench` (release build). `SERVE_LOAD_QUEUED` and `SERVE_LOAD_SECONDS` shrink
//! it for a quick look; `SERVE_LOAD_WORKERS` sets the server's `--max-concurrent-runs` (8).
//!
//! The servers' projects are made under `TMPDIR` and removed only at the end (a removal of
//! thousands of files slows every file made after it on some file systems: ext4 without a
//! journal skips each inode freed in the last minutes, one by one, when it allocates one). Set
//! `TMPDIR` to compare file systems, e.g. a tmpfs.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

const CLIENTS: usize = 64;

struct Server {
    child: Child,
    url: String,
    project: Option<tempfile::TempDir>,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let project = tempfile::tempdir().unwrap();
        let binary = PathBuf::from(env!("CARGO_BIN_EXE_theory"));
        let mut child = Command::new(&binary)
            .args(["serve", "--no-auth", "--listen", "127.0.0.1:0"])
            .args(extra)
            .current_dir(project.path())
            .env("THEORY_LOG", "error")
            .env("THEORY_LOCAL_RUNTIME", "process")
            .env("THEORY_PROCESSOR_PATH", binary.parent().unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let listening: Value = serde_json::from_str(&line).unwrap();
        let url = format!("http://{}", listening["listening"].as_str().unwrap());
        Server { child, url, project: Some(project) }
    }

    /// `VmRSS` and `VmHWM` (peak) of the server process, in MiB.
    fn rss(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Server {
    /// Stops the server and hands its project over (removed when dropped).
    fn stop(mut self) -> Option<tempfile::TempDir> {
        self.terminate();
        self.project.take()
    }

    fn terminate(&mut self) {
        // Once waited for, its pid may be another process's.
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap()),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// The sample at `per_mille` / 1000 of the sorted samples.
fn percentile(samples: &mut [Duration], per_mille: usize) -> Duration {
    samples.sort();
    samples[(samples.len() - 1) * per_mille / 1000]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

async fn run_waited(http: &reqwest::Client, url: &str, text: String) {
    let answer: Value = http
        .post(format!("{url}/v1/runs"))
        .header("prefer", "wait")
        .json(&json!({"ref": "theory/probe@1", "inputs": {"text": text}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["status"], "succeeded", "{answer}");
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|text| text.parse().ok()).unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(measure());
}

async fn measure() {
    let tls = theory_core::tls::client_config(&theory_core::EnvSnapshot::capture()).unwrap();
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();
    let workers = env_number("SERVE_LOAD_WORKERS", 8).to_string();
    let server = Server::start(&["--max-concurrent-runs", &workers]);
    let url = server.url.clone();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (idle, _) = server.rss();
    latency(&http, &url).await;
    throughput(&http, &url).await;
    drain(&http, &server).await;
    let (after, _) = server.rss();
    eprintln!(
        "serve: idle server RSS {idle:.1} MiB at start, {after:.1} MiB after the load (goal <= 30)"
    );
    // Stopped, its project kept until the end (see the module's comment).
    let first_project = server.stop();
    token_latency(&http).await;
    drop(first_project);
}

/// One run at a time.
async fn latency(http: &reqwest::Client, url: &str) {
    for n in 0..20 {
        run_waited(http, url, format!("warm {n}")).await;
    }
    let mut latencies = Vec::new();
    for n in 0..300 {
        let started = Instant::now();
        run_waited(http, url, format!("latency {n}")).await;
        latencies.push(started.elapsed());
    }
    let p50 = percentile(&mut latencies, 500);
    let p99 = percentile(&mut latencies, 990);
    eprintln!(
        "serve: one mock run through POST /v1/runs + Prefer: wait (warm instance, SQLite): p50 {:.2} ms, p99 {:.2} ms (goal p50 <= 2 ms, p99 <= 10 ms)",
        ms(p50),
        ms(p99)
    );
}

/// Runs per second with [`CLIENTS`] clients.
async fn throughput(http: &reqwest::Client, url: &str) {
    let seconds = env_number("SERVE_LOAD_SECONDS", 10);
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (http, url, done) = (http.clone(), url.to_owned(), Arc::clone(&done));
            tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    run_waited(&http, &url, format!("load {client} {n}")).await;
                    done.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    eprintln!("serve: {rate:.0} mock runs/s with {CLIENTS} concurrent clients (goal >= 1000)");
}

/// Many runs queued at once, drained.
async fn drain(http: &reqwest::Client, server: &Server) {
    let url = server.url.clone();
    let queued = env_number("SERVE_LOAD_QUEUED", 10_000);
    let started = Instant::now();
    let submitted = Arc::new(AtomicUsize::new(0));
    let submitters: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (http, url, submitted) = (http.clone(), url.clone(), Arc::clone(&submitted));
            tokio::spawn(async move {
                loop {
                    let n = submitted.fetch_add(1, Ordering::Relaxed);
                    if n as u64 >= queued {
                        return;
                    }
                    let response = http
                        .post(format!("{url}/v1/runs"))
                        .json(&json!({"ref": "theory/probe@1", "inputs": {"text": format!("queued {client} {n}")}}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 201);
                }
            })
        })
        .collect();
    for submitter in submitters {
        submitter.await.unwrap();
    }
    let queued_in = started.elapsed();
    loop {
        let ready: Value =
            http.get(format!("{url}/readyz")).send().await.unwrap().json().await.unwrap();
        let metrics =
            http.get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
        let starting_or_running = metrics
            .lines()
            .filter(|line| {
                line.contains("status=\"running\"") || line.contains("status=\"starting\"")
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>();
        if ready["queue_depth"] == 0 && starting_or_running == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained_in = started.elapsed();
    let (_, peak) = server.rss();
    eprintln!(
        "serve: {queued} runs queued in {:.1} s and drained in {:.1} s ({:.0} runs/s); server peak RSS {peak:.1} MiB (goal <= 100)",
        queued_in.as_secs_f64(),
        drained_in.as_secs_f64(),
        queued as f64 / drained_in.as_secs_f64()
    );
}

/// From the processor to an SSE subscriber.
async fn token_latency(http: &reqwest::Client) {
    // One worker: a run waits behind a blocker, so its events are subscribed to before it runs.
    let server = Server::start(&["--max-concurrent-runs", "1"]);
    let url = server.url.clone();
    run_waited(http, &url, "warm".into()).await;
    let mut delays = Vec::new();
    for n in 0..50 {
        http.post(format!("{url}/v1/runs"))
            .json(&json!({"ref": "theory/probe@1", "inputs": {"text": format!("blocker {n}"), "sleep_ms": 30}}))
            .send()
            .await
            .unwrap();
        let run: Value = http
            .post(format!("{url}/v1/runs"))
            .json(&json!({"ref": "theory/probe@1", "inputs": {"text": format!("a b c {n}"), "stamp_tokens": true}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = run["id"].as_str().unwrap();
        let response = http.get(format!("{url}/v1/runs/{id}/events")).send().await.unwrap();
        let mut body = response.bytes_stream();
        let mut buffer = String::new();
        'stream: while let Some(chunk) = body.next().await {
            let arrived = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros();
            buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                if event.contains("event: end") || event.contains("event:end") {
                    break 'stream;
                }
                let Some(data) = event.lines().find_map(|line| line.strip_prefix("data:")) else {
                    continue;
                };
                let frame: Value = serde_json::from_str(data.trim()).unwrap();
                if frame["kind"] == "Token" {
                    let sent: u128 =
                        frame["content"]["text"].as_str().unwrap().trim().parse().unwrap();
                    delays.push(Duration::from_micros(
                        u64::try_from(arrived.saturating_sub(sent)).unwrap(),
                    ));
                }
            }
        }
    }
    let p50 = percentile(&mut delays, 500);
    let p99 = percentile(&mut delays, 990);
    eprintln!(
        "serve: a token from the processor to an SSE subscriber: p50 {:.3} ms, p99 {:.3} ms (goal <= 1 ms)",
        ms(p50),
        ms(p99)
    );
}

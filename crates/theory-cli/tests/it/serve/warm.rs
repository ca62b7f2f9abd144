//! Warm instances: a processor started for one run serves the next; one that crashed or was
//! killed is replaced; a shutdown stops them all. And `/metrics` counts it.

use serde_json::json;

use super::Server;
use crate::support::Project;

/// The `theory-probe` processes whose parent is `parent`.
fn probes_of(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid …`: the name may hold spaces; the fields after it do not.
        let Some((name, rest)) = stat.split_once(" (").and_then(|(_, rest)| rest.rsplit_once(") "))
        else {
            continue;
        };
        let parent_pid = rest.split_whitespace().nth(1).and_then(|text| text.parse::<u32>().ok());
        if name == "theory-probe" && parent_pid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn an_instance_serves_the_next_run_and_a_dead_one_is_replaced() {
    let project = Project::new();
    let server = Server::start(&project, &[]);
    let pid = server.pid();
    let run = |text: &str| {
        let (_, run) = server.submit(
            &json!({"ref": "theory/probe@1", "inputs": {"text": text}}),
            &[("Prefer", "wait")],
        );
        assert_eq!(run["status"], "succeeded", "{run}");
    };
    run("first");
    let first = probes_of(pid);
    assert_eq!(first.len(), 1, "one warm instance after a run: {first:?}");
    run("second");
    assert_eq!(probes_of(pid), first, "the second run reused the first run's instance");

    // An instance that crashes mid-run is not kept; the next run starts a fresh one.
    let (_, crashed) = server.submit(
        &json!({"ref": "theory/probe@1", "inputs": {"crash": true}}),
        &[("Prefer", "wait")],
    );
    assert_eq!(crashed["status"], "failed", "{crashed}");
    run("after the crash");
    let fresh = probes_of(pid);
    assert_eq!(fresh.len(), 1, "{fresh:?}");
    assert_ne!(fresh, first, "a crashed instance is replaced");

    // Killed while idle: found dead before it is used, and replaced.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(fresh[0]).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    run("after the kill");
    let replaced = probes_of(pid);
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    assert_ne!(replaced, fresh);

    let (status, metrics) = server.request("GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    let text = String::from_utf8(server.exchange("GET", "/metrics", &[], b"").body).unwrap();
    assert!(
        text.contains("theory_runs{processor=\"theory/probe@1\",status=\"succeeded\"} 4"),
        "{text}"
    );
    assert!(
        text.contains("theory_runs{processor=\"theory/probe@1\",status=\"failed\"} 1"),
        "{text}"
    );
    assert!(text.contains("theory_warm_instances 1\n"), "{text}");
    assert!(text.contains("theory_queue_depth 0\n"), "{text}");
    assert!(text.contains("theory_run_duration_seconds_count 5\n"), "{text}");
    assert!(text.contains("theory_queue_wait_seconds_bucket{le=\"+Inf\"} 5\n"), "{text}");
    assert!(metrics.is_null(), "metrics are text, not JSON");

    // A shutdown stops the warm instances.
    assert_eq!(server.stop(), Some(0));
    assert!(!alive(replaced[0]), "the warm instance outlived the server");
}

#[test]
fn without_warm_instances_each_run_stops_its_processor() {
    let project = Project::new();
    let server = Server::start(&project, &["--warm-idle-s", "0"]);
    let (_, run) = server.submit(&json!({"ref": "theory/probe@1"}), &[("Prefer", "wait")]);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(probes_of(server.pid()).is_empty());
}

//! How much memory large inputs cost (issue 18): a shape, not a time. Each process's peak
//! resident memory (`VmHWM`) is read from `/proc` while the run goes — it only grows, so any
//! reading after the peak is the peak.

use std::process::Stdio;

use theory_conformance::process::{Peaks, wait_with_peaks};

use crate::support::Project;

/// The inputs' size: large beside the processes' own memory (a few MiB each).
const INPUT_BYTES: usize = 16_000_000;

#[test]
fn large_inputs_are_held_about_twice_by_each_process_not_five_times() {
    let project = Project::new();
    let inputs = format!(r#"{{"params":{{"ballast":"{}"}}}}"#, "x".repeat(INPUT_BYTES));
    std::fs::write(project.path().join("inputs.json"), inputs).expect("inputs file");
    let run = ["run", "--ref", "theory/probe@1", "--mode", "mock", "--no-cache", "--json"];
    let small = peaks(&project, &[&run[..], &["--inputs-json", "{}"]].concat());
    let large = peaks(&project, &[&run[..], &["--inputs-file", "inputs.json"]].concat());
    let added = |large: u64, small: u64| large.saturating_sub(small) as f64 / INPUT_BYTES as f64;
    let theory = added(large.own, small.own);
    let processor = added(large.children, small.children);
    eprintln!("added peak memory per byte of inputs: theory {theory:.2}, processor {processor:.2}");
    // theory holds the decoded inputs, and the file's text while decoding it; the text of the
    // RunOpen frame goes out a fragment at a time (it was 4.9 × when it was whole, and copied).
    assert!(theory <= 2.0, "theory held {theory:.2} × its inputs");
    // The processor holds the whole message (one WebSocket message is reassembled whole) and
    // the inputs decoded from it, at once: 2 ×, and the WebSocket's buffers (it was 3.1 ×).
    assert!(processor <= 2.3, "the processor held {processor:.2} × its inputs");
}

/// The peak memory of `theory` and of the processor it started.
fn peaks(project: &Project, args: &[&str]) -> Peaks {
    let mut child = project
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("theory starts");
    let (status, peaks) = wait_with_peaks(&mut child).expect("theory runs");
    assert!(status.success(), "theory {args:?} failed");
    assert!(peaks.own > 0 && peaks.children > 0, "no memory figures were read");
    peaks
}

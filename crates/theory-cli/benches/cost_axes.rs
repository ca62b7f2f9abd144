//! What a `theory` command costs as the things that should not matter grow (issue 18): one
//! line per axis, with its figure and its goal. `THEORY_BENCH_BASELINE=/path/to/an/older/theory`
//! measures that binary too, beside this one, in the same run (its processor binaries must sit
//! beside it). Run with `scripts/bench`, which builds the release binaries first.
//!
//! Axes here (the processor's own — WebSocket runs, upload connections, replay files — are in
//! `processors/probe/benches/processor_axes.rs`):
//! - registry size: `theory run` with 1, 50 and 500 specs in `registry/`;
//! - ledger size: `theory executions list` at 10, 1,000 and 5,000 rows;
//! - outputs per run: 100 and 3,000 small outputs;
//! - one 1 GiB output end to end, with the peak RSS of the process tree;
//! - inputs of 10 MB: the time they add, and the memory theory and the processor each hold;
//! - the whole CLI mock run;
//! - signing (issue 20): a mock run and a 1 GiB output with and without a signing key, runs
//!   interleaved, and what a `sha256` digest beside BLAKE3 would add to 1 GiB of ingest.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod tree_memory;

/// One axis: its figure and goal for a binary.
type Axis = fn(&Binary) -> Result<String, String>;

/// A `theory` binary under test, and its name in the report.
struct Binary {
    name: &'static str,
    path: PathBuf,
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Bytes in a MiB.
const MIB: f64 = 1_048_576.0;

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Runs `theory` in `project` with `args`; returns the time it took, its stdout, and the
/// peak RSS of its process tree (theory and the processor it started) when `watch_memory`.
fn theory(binary: &Binary, project: &Path, args: &[&str]) -> Result<Duration, String> {
    run_theory(binary, project, args, false).map(|(time, _)| time)
}

fn run_theory(
    binary: &Binary,
    project: &Path,
    args: &[&str],
    watch_memory: bool,
) -> Result<(Duration, u64), String> {
    let started = Instant::now();
    let mut child = theory_command(binary, project, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("theory starts");
    let watcher = watch_memory.then(|| tree_memory::Watcher::start(child.id()));
    let output = {
        use std::io::Read as _;
        let mut stdout = Vec::new();
        child.stdout.take().expect("stdout").read_to_end(&mut stdout).expect("stdout read");
        let mut stderr = String::new();
        child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("stderr read");
        let status = child.wait().expect("theory ends");
        if !status.success() {
            let said = String::from_utf8_lossy(&stdout);
            let error = stderr.lines().find(|line| line.starts_with("error")).unwrap_or(&said);
            return Err(format!("{} {}: {error}", binary.name, args.join(" ")));
        }
        stdout
    };
    let elapsed = started.elapsed();
    drop(output);
    Ok((elapsed, watcher.map_or(0, tree_memory::Watcher::stop)))
}

/// `theory args` in `project`, quiet, on the host's process runtime.
fn theory_command(binary: &Binary, project: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(&binary.path);
    command
        .args(args)
        .current_dir(project)
        .env("THEORY_PROJECT", project)
        .env("THEORY_LOG", "warn")
        .env("THEORY_LOCAL_RUNTIME", "process");
    command
}

/// A project folder with `extra_specs` processor specs beside the built-in ones.
fn project(extra_specs: usize) -> tempfile::TempDir {
    let folder = tempfile::tempdir().expect("temp dir");
    let processors = folder.path().join("registry/processors");
    std::fs::create_dir_all(&processors).expect("registry folder");
    for index in 0..extra_specs {
        let spec = format!(
            "# A spec the run does not use.\nref: bench/spec{index}@1\nname: Spec {index}\n\
             description: one of many specs in a large registry\n\
             image:\n  build: {{context: processors/probe, dockerfile: Dockerfile, binary: theory-probe}}\n\
             runtime: {{cpu: 1, memory_gb: 1, timeout_s: 60}}\n\
             secrets: {{required: [], optional: [BENCH_SECRET_{index}]}}\n\
             inputs:\n  type: object\n  required: [text]\n  properties:\n    text: {{type: string, maxLength: 1000}}\n    n: {{type: integer, minimum: 0}}\n\
             outputs:\n  - {{path: out.txt, mime: text/plain}}\n"
        );
        std::fs::write(processors.join(format!("spec{index:04}.yaml")), spec).expect("spec");
    }
    // As a registry is between edits: its files settled (theory indexes them after a second).
    std::thread::sleep(Duration::from_millis(1_100));
    folder
}

const PROBE_RUN: &[&str] =
    &["run", "--ref", "theory/probe@1", "--mode", "mock", "--json", "--no-cache"];

fn probe_run(binary: &Binary, project: &Path, inputs: &str) -> Result<Duration, String> {
    let mut args = PROBE_RUN.to_vec();
    args.extend(["--inputs-json", inputs]);
    theory(binary, project, &args)
}

fn median_of(
    runs: usize,
    mut one: impl FnMut() -> Result<Duration, String>,
) -> Result<Duration, String> {
    one()?;
    Ok(median((0..runs).map(|_| one()).collect::<Result<_, _>>()?))
}

/// `theory run` of one processor with 1, 50 and 500 specs in the registry.
fn registry_axis(binary: &Binary) -> Result<String, String> {
    // Interleaved, one run of each size per round: the machine's drift over a block of runs
    // (a millisecond or two here) would otherwise land on one size and not the others.
    let folders: Vec<tempfile::TempDir> = [1, 50, 500].into_iter().map(project).collect();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); folders.len()];
    for round in 0..26 {
        for (folder, times) in folders.iter().zip(&mut samples) {
            let time = probe_run(binary, folder.path(), "{}")?;
            // The first round warms each project (its ledger, its registry index).
            if round > 0 {
                times.push(time);
            }
        }
    }
    let figures: Vec<Duration> = samples.into_iter().map(median).collect();
    Ok(format!(
        "registry size: theory run with 1 / 50 / 500 specs: {:.1} / {:.1} / {:.1} ms (+{:.1} ms at 500) | goal: ≤ 2 ms added at 500 specs",
        ms(figures[0]),
        ms(figures[1]),
        ms(figures[2]),
        ms(figures[2].saturating_sub(figures[0]))
    ))
}

/// Fills the ledger `theory` made in `project` with `rows` finished executions, directly.
fn fill_ledger(project: &Path, rows: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        use sqlx::Connection as _;
        let url = format!("sqlite://{}", project.join(".theory/theory.db").display());
        let mut connection = sqlx::SqliteConnection::connect(&url).await.expect("ledger");
        let mut transaction = connection.begin().await.unwrap();
        for row in 0..i64::try_from(rows).expect("rows") {
            let id = format!("BENCH{row:08}");
            sqlx::query(
                "INSERT INTO executions (id, processor_ref, adapter, runtime, mode, status, memo_key,
                 write_prefix, started_at_ms, finished_at_ms, duration_ms, owner, envelope)
                 VALUES ($1, 'theory/probe@1', 'local', 'process', 'mock', $2, $3, $4, $5, $6, 3, 'bench:1', '{}')",
            )
            .bind(&id)
            .bind(if row % 7 == 0 { "error" } else { "success" })
            .bind(format!("memo-{row}"))
            .bind(format!("/artifacts/outputs/{id}/"))
            .bind(1_700_000_000_000_i64 + row)
            .bind(1_700_000_000_003_i64 + row)
            .execute(&mut *transaction)
            .await
            .expect("row");
        }
        transaction.commit().await.unwrap();
    });
}

/// `theory executions list` at 10, 1,000 and 5,000 rows.
fn ledger_axis(binary: &Binary) -> Result<String, String> {
    let figures: Vec<Duration> = [10, 1_000, 5_000]
        .iter()
        .map(|&rows| {
            let folder = project(0);
            // The binary under test creates its own ledger, with its own schema.
            theory(binary, folder.path(), &["executions", "list", "--json"])?;
            fill_ledger(folder.path(), rows);
            median_of(15, || theory(binary, folder.path(), &["executions", "list", "--json"]))
        })
        .collect::<Result<_, _>>()?;
    Ok(format!(
        "ledger size: executions list at 10 / 1,000 / 5,000 rows: {:.1} / {:.1} / {:.1} ms | goal: flat in ledger size",
        ms(figures[0]),
        ms(figures[1]),
        ms(figures[2])
    ))
}

/// A run with 100 and with 3,000 small outputs: the cost of each one more.
fn outputs_axis(binary: &Binary) -> Result<String, String> {
    let folder = project(0);
    let time = |count: usize| {
        let inputs = format!(r#"{{"params":{{"output_count":{count}}}}}"#);
        median_of(5, || probe_run(binary, folder.path(), &inputs))
    };
    let (few, many) = (time(100)?, time(3_000)?);
    Ok(format!(
        "outputs per run: 100 / 3,000 small outputs: {:.1} / {:.1} ms, {:.3} ms per output | goal: ≤ 0.05 ms per output",
        ms(few),
        ms(many),
        ms(many.saturating_sub(few)) / 2_900.0
    ))
}

/// One 1 GiB output end to end, and the peak RSS of theory with its processor.
fn big_output_axis(binary: &Binary) -> Result<String, String> {
    const SIZE: u64 = 1 << 30;
    let inputs = format!(r#"{{"params":{{"size_bytes":{SIZE}}}}}"#);
    let mut args = PROBE_RUN.to_vec();
    args.extend(["--inputs-json", &inputs]);
    // Each sample in a new project, after a `sync`: a run into a store that already took
    // gigabytes, or while they are still being written back, took up to 2.5 × as long on this
    // machine's disk, whichever binary it was.
    let mut samples: Vec<(Duration, u64)> = (0..3)
        .map(|_| {
            let folder = project(0);
            let _ = Command::new("sync").status();
            run_theory(binary, folder.path(), &args, true)
        })
        .collect::<Result<_, _>>()?;
    samples.sort();
    let (time, peak) = samples[1];
    Ok(format!(
        "one 1 GiB output end to end: {:.2} s, {:.0} MiB/s, peak RSS of the tree {:.1} MiB | goal: ≥ 1 GiB/s, ≤ 64 MiB",
        time.as_secs_f64(),
        SIZE as f64 / MIB / time.as_secs_f64(),
        peak as f64 / MIB
    ))
}

/// Inputs of 10 MB (a string the probe ignores): the time they add, and the memory each
/// process holds for them beyond a run without them.
fn big_inputs_axis(binary: &Binary) -> Result<String, String> {
    const SIZE: usize = 10_000_000;
    let folder = project(0);
    let inputs = format!(r#"{{"params":{{"ballast":"{}"}}}}"#, "x".repeat(SIZE));
    let file = folder.path().join("inputs.json");
    std::fs::write(&file, inputs).expect("inputs file");
    let file = file.display().to_string();
    let mut args = PROBE_RUN.to_vec();
    args.extend(["--inputs-file", &file]);
    let baseline = median_of(5, || probe_run(binary, folder.path(), "{}"))?;
    let time = median_of(5, || theory(binary, folder.path(), &args))?;
    let mut small_args = PROBE_RUN.to_vec();
    small_args.extend(["--inputs-json", "{}"]);
    let small = process_peaks(binary, folder.path(), &small_args)?;
    let large = process_peaks(binary, folder.path(), &args)?;
    let added = |large: u64, small: u64| large.saturating_sub(small) as f64 / SIZE as f64;
    Ok(format!(
        "inputs of 10 MB: {:.0} ms ({:.1} ms/MB over a run without), memory added per byte of inputs: theory {:.2} ×, processor {:.2} × | goal: ≤ 5 ms/MB, ≤ 2 × the input",
        ms(time),
        ms(time.saturating_sub(baseline)) / 10.0,
        added(large.own, small.own),
        added(large.children, small.children),
    ))
}

/// The peak memory of `theory` and of the processor it started, each on its own.
fn process_peaks(
    binary: &Binary,
    project: &Path,
    args: &[&str],
) -> Result<theory_conformance::process::Peaks, String> {
    let mut child = theory_command(binary, project, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("theory starts");
    let (status, peaks) = theory_conformance::process::wait_with_peaks(&mut child)
        .map_err(|error| format!("{}: {error}", binary.name))?;
    if !status.success() {
        return Err(format!("{} {}: failed", binary.name, args.join(" ")));
    }
    Ok(peaks)
}

/// The whole CLI mock run of the probe.
fn cli_axis(binary: &Binary) -> Result<String, String> {
    let folder = project(0);
    let time = median_of(30, || probe_run(binary, folder.path(), "{}"))?;
    Ok(format!("whole CLI mock run: {:.1} ms median | goal: ≤ 15 ms median", ms(time)))
}

/// A project with a signing key.
fn signed_project(binary: &Binary) -> Result<tempfile::TempDir, String> {
    let folder = project(0);
    theory(binary, folder.path(), &["keys", "generate"])?;
    Ok(folder)
}

/// Seconds to hash 1 GiB in 1 MiB blocks on one core with `update`.
fn hash_gib(mut update: impl FnMut(&[u8])) -> f64 {
    let block: Vec<u8> = (0..1 << 20).map(|index: u32| (index % 251) as u8).collect();
    let started = Instant::now();
    for _ in 0..1024 {
        update(&block);
    }
    started.elapsed().as_secs_f64()
}

/// What signing adds: to a whole mock run (41 runs each, signed and unsigned interleaved), to a
/// memo-cache hit (whose attestation is then verified), to a 1 GiB output (3 each, interleaved,
/// each in a fresh project between `sync`s), and what a second digest (`sha256`) of every output
/// would add to ingesting 1 GiB.
fn signing_axis(binary: &Binary) -> Result<String, String> {
    use sha2::Digest as _;
    let (unsigned, signed) = (project(0), signed_project(binary)?);
    let (mut plain, mut with_key) = (Vec::new(), Vec::new());
    probe_run(binary, unsigned.path(), "{}")?;
    probe_run(binary, signed.path(), "{}")?;
    for _ in 0..41 {
        plain.push(probe_run(binary, unsigned.path(), "{}")?);
        with_key.push(probe_run(binary, signed.path(), "{}")?);
    }
    // A memo-cache hit: signed, it also reads and verifies the hit's attestation.
    let hit = ["run", "--ref", "theory/probe@1", "--mode", "mock", "--json", "--inputs-json", "{}"];
    let (mut hit_plain, mut hit_signed) = (Vec::new(), Vec::new());
    theory(binary, unsigned.path(), &hit)?;
    theory(binary, signed.path(), &hit)?;
    for _ in 0..41 {
        hit_plain.push(theory(binary, unsigned.path(), &hit)?);
        hit_signed.push(theory(binary, signed.path(), &hit)?);
    }
    let inputs = format!(r#"{{"params":{{"size_bytes":{}}}}}"#, 1u64 << 30);
    let mut args = PROBE_RUN.to_vec();
    args.extend(["--inputs-json", &inputs]);
    let (mut big_plain, mut big_signed) = (Vec::new(), Vec::new());
    // Which goes first alternates: the disk's write-back of one run lands on the next.
    for round in 0..3 {
        let mut pair = [(false, &mut big_plain), (true, &mut big_signed)];
        if round % 2 == 1 {
            pair.reverse();
        }
        for (signs, samples) in pair {
            let folder = if signs { signed_project(binary)? } else { project(0) };
            let _ = Command::new("sync").status();
            samples.push(theory(binary, folder.path(), &args)?);
            drop(folder);
            let _ = Command::new("sync").status();
        }
    }
    let mut sha = sha2::Sha256::new();
    let sha_s = hash_gib(|block| sha.update(block));
    let mut b3 = blake3::Hasher::new();
    let b3_s = hash_gib(|block| {
        b3.update(block);
    });
    Ok(format!(
        "signing: mock run unsigned / signed {:.1} / {:.1} ms median; memo hit unsigned / signed (its attestation verified) {:.1} / {:.1} ms; 1 GiB output unsigned / signed {:.2} / {:.2} s median; hashing 1 GiB on one core: blake3 {:.2} s, sha256 {:.2} s (a sha256 subject would add that to each GiB ingested) | goal: signing adds nothing measurable",
        ms(median(plain)),
        ms(median(with_key)),
        ms(median(hit_plain)),
        ms(median(hit_signed)),
        median(big_plain).as_secs_f64(),
        median(big_signed).as_secs_f64(),
        b3_s,
        sha_s,
    ))
}

fn main() {
    let mut binaries =
        vec![Binary { name: "this build", path: PathBuf::from(env!("CARGO_BIN_EXE_theory")) }];
    if let Some(baseline) = std::env::var_os("THEORY_BENCH_BASELINE") {
        binaries.push(Binary { name: "baseline", path: PathBuf::from(baseline) });
    }
    let folder = binaries[0].path.parent().expect("a folder").to_path_buf();
    assert!(
        folder.join("theory-probe").is_file(),
        "{} is missing: run scripts/bench (it builds the release binaries)",
        folder.join("theory-probe").display()
    );
    let axes: [(&str, Axis); 7] = [
        ("registry", registry_axis),
        ("ledger", ledger_axis),
        ("outputs", outputs_axis),
        ("big output", big_output_axis),
        ("big inputs", big_inputs_axis),
        ("cli", cli_axis),
        ("signing", signing_axis),
    ];
    let only = std::env::var("THEORY_BENCH_AXES").ok();
    for (name, axis) in axes {
        if only.as_deref().is_some_and(|only| !only.split(',').any(|wanted| wanted == name)) {
            continue;
        }
        for binary in &binaries {
            let line = axis(binary).unwrap_or_else(|failure| format!("{name}: n/a ({failure})"));
            eprintln!("[{}] {line}", binary.name);
        }
    }
}

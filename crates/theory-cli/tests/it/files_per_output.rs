//! What an output costs the file system (issue 18): a shape, not a time. `strace` counts the
//! files a run creates and the folders it makes; each further output must add one file (its
//! object, written aside and renamed into place) and no folder.

use std::process::Stdio;

use crate::support::Project;

/// File system calls of one `theory run` of the probe with `count` small outputs (the
/// processor's included).
struct Calls {
    created: usize,
    renamed: usize,
    folders: usize,
}

fn calls(project: &Project, count: usize) -> Calls {
    let log = project.path().join(format!("strace-{count}.log"));
    let inputs = format!(r#"{{"params":{{"output_count":{count}}}}}"#);
    let theory = project.command(&[
        "run",
        "--ref",
        "theory/probe@1",
        "--mode",
        "mock",
        "--no-cache",
        "--json",
        "--inputs-json",
        &inputs,
    ]);
    let mut traced = std::process::Command::new("strace");
    traced
        .args([
            "-f",
            "-qq",
            "-e",
            "trace=openat,open,creat,mkdir,mkdirat,rename,renameat,renameat2",
        ])
        .arg("-o")
        .arg(&log)
        .arg(theory.get_program())
        .args(theory.get_args())
        .env_clear()
        .envs(theory.get_envs().filter_map(|(name, value)| Some((name, value?))))
        .current_dir(project.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let status = traced.status().expect("strace runs (scripts/test installs it)");
    assert!(status.success(), "theory run with {count} outputs failed under strace");
    let log = std::fs::read_to_string(&log).expect("strace log");
    let succeeded = |line: &&str| !line.contains(" = -1 ");
    Calls {
        created: log
            .lines()
            .filter(|line| line.contains("O_CREAT") || line.contains("creat("))
            .filter(succeeded)
            .count(),
        renamed: log.lines().filter(|line| line.contains("rename")).filter(succeeded).count(),
        // Every attempt counts: a folder made again for each output fails with EEXIST.
        folders: log.lines().filter(|line| line.contains("mkdir")).count(),
    }
}

#[test]
fn each_output_adds_one_file_and_no_folder() {
    let project = Project::new();
    // Its registry files settled first: a file is indexed once it has been still for a second,
    // and an index written during one of the two measured runs (not the other) is two files
    // more there.
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    // The first run of a project also creates the ledger, the store and the caches.
    calls(&project, 20);
    let few = calls(&project, 20);
    let many = calls(&project, 220);
    assert_eq!(many.created - few.created, 200, "files created per output");
    assert_eq!(many.renamed - few.renamed, 200, "renames per output");
    assert_eq!(many.folders, few.folders, "folders made (or tried) grow with the outputs");
}

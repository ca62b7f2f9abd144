//! `theory scaffold --ref ns/name@N [--lang rust|python]`: a new processor
//! (`processors/{ns}-{name}/`), its Dockerfile and its registry spec, which build, start and pass
//! the conformance suite as generated, in this repository or in a new, empty project folder.
//! Nothing is overwritten: an existing file stops the command before anything is written.
//!
//! - `rust` (`rust.rs`): a crate on the Rust SDK; outside a Cargo workspace that has the SDK, the
//!   project gets a workspace and the SDK's sources this `theory` embeds (`theory-sdk/`).
//! - `python` (`python.rs`): a `make_runner(config)` provider on the Python SDK.

mod python;
mod rust;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use theory_core::Failure;

use theory_core::ProcessorRef;
use theory_protocol::ErrorCode;

use super::Context;
use crate::args::ScaffoldArgs;
use crate::print::{fail, out, print_json};
use crate::usage::usage;

/// Writes the new processor's files.
pub(crate) fn run(args: &ScaffoldArgs, context: &Context) -> Result<ExitCode, Failure> {
    let reference: ProcessorRef = args
        .reference
        .parse()
        .map_err(|error| usage(format!("--ref: {error}"), "a ref looks like vision/replicate@1"))?;
    if let Ok(registry) = &context.registry
        && registry.processor(&reference).is_some()
    {
        return Ok(fail(
            args.json,
            ErrorCode::Registry,
            &format!("{reference} already exists in the registry"),
            Some("pick a new name or a new version"),
        ));
    }
    let root = &context.project.root;
    let package = format!("{}-{}", reference.namespace(), reference.name()).replace('_', "-");
    let folder = root.join("processors").join(&package);
    let spec = root.join("registry/processors").join(format!("{package}.yaml"));
    let files = match args.lang.as_str() {
        "python" => python::files(&reference, &package, &folder, spec),
        _ => rust::files(&reference, &package, &folder, spec, root),
    };
    if let Some((existing, _)) = files.iter().find(|(path, _)| path.exists()) {
        return Ok(fail(
            args.json,
            ErrorCode::Registry,
            &format!("{} already exists; nothing was written", existing.display()),
            Some("remove it first, or scaffold another ref"),
        ));
    }
    let mut written: Vec<PathBuf> = Vec::new();
    for (path, text) in &files {
        if let Err(error) = write_new(path, text) {
            for done in &written {
                let _ = std::fs::remove_file(done);
            }
            return Ok(fail(
                args.json,
                ErrorCode::Registry,
                &format!("cannot write {}: {error}", path.display()),
                Some("check that the project folder is writable"),
            ));
        }
        written.push(path.clone());
    }
    if args.lang == "rust"
        && let Err(error) = rust::add_member(root, &package)
    {
        return Ok(fail(
            args.json,
            ErrorCode::Registry,
            &format!(
                "cannot add processors/{package} to {}: {error}",
                root.join("Cargo.toml").display()
            ),
            Some("add it to [workspace] members by hand"),
        ));
    }
    let relative: Vec<String> = written
        .iter()
        .map(|path| path.strip_prefix(root).unwrap_or(path).display().to_string())
        .collect();
    if args.json {
        print_json(
            &serde_json::json!({"ok": true, "ref": reference.to_string(), "package": package, "files": relative}),
        );
    } else {
        for path in &relative {
            out(path);
        }
    }
    let next = match args.lang.as_str() {
        "python" => python::next_steps(&reference),
        _ => rust::next_steps(&reference, &package),
    };
    for line in next {
        eprintln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(text.as_bytes())
}

//! Embeds the Rust SDK for `theory scaffold --lang rust` outside Theory's repository: the sources
//! of `theory-processor` and `theory-protocol` with manifests that stand alone (each
//! `workspace = true` replaced by this workspace's value), and this workspace's `Cargo.lock`, so a
//! new project builds with the versions Theory was tested with. Also names the commit built, for
//! `theory --version`.

use std::fmt::Write;
use std::path::{Path, PathBuf};

/// `name = value` lines of one `[section]` of a manifest.
fn section(manifest: &str, name: &str) -> Vec<(String, String)> {
    let header = format!("[{name}]");
    let mut inside = false;
    let mut entries = Vec::new();
    for line in manifest.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            inside = trimmed == header;
            continue;
        }
        if inside
            && !trimmed.starts_with('#')
            && let Some((key, value)) = trimmed.split_once(" = ")
        {
            entries.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    entries
}

/// A crate's manifest with its package fields and dependencies taken from the workspace; its
/// tests, benches, dev-dependencies and lints left out.
fn standalone_manifest(crate_manifest: &str, workspace: &str) -> String {
    let package = section(workspace, "workspace.package");
    let dependencies = section(workspace, "workspace.dependencies");
    let value_of = |list: &[(String, String)], key: &str| {
        list.iter()
            .find(|(name, _)| name == key)
            .map_or_else(|| panic!("the workspace has no {key}"), |(_, value)| value.clone())
    };
    let mut out = String::from("[package]\n");
    for (key, value) in section(crate_manifest, "package") {
        match key.strip_suffix(".workspace") {
            Some("publish") => out.push_str("publish = false\n"),
            Some(field) => {
                let _ = writeln!(out, "{field} = {}", value_of(&package, field));
            }
            None => {
                let _ = writeln!(out, "{key} = {value}");
            }
        }
    }
    out.push_str("\n[dependencies]\n");
    for (key, value) in section(crate_manifest, "dependencies") {
        let name = key.strip_suffix(".workspace").unwrap_or(&key);
        let spec = if name.starts_with("theory-") {
            format!("{{ path = \"../{name}\" }}")
        } else if key.ends_with(".workspace") {
            value_of(&dependencies, name)
        } else {
            value
        };
        let _ = writeln!(out, "{name} = {spec}");
    }
    out
}

fn sources(folder: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(folder) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

/// Sets `THEORY_COMMIT`, the commit `theory --version` names: `git rev-parse` of the checkout
/// (`unknown` outside one, or without git), rebuilt when `HEAD` moves.
fn commit(root: &Path) {
    let git = root.join(".git");
    let mut watched = vec![git.join("HEAD"), git.join("packed-refs")];
    if let Ok(head) = std::fs::read_to_string(git.join("HEAD"))
        && let Some(branch) = head.trim().strip_prefix("ref: ")
    {
        watched.push(git.join(branch));
    }
    // A missing file would make cargo run this script on every build.
    for file in watched.iter().filter(|file| file.is_file()) {
        println!("cargo::rerun-if-changed={}", file.display());
    }
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo::rustc-env=THEORY_COMMIT={commit}");
}

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.join("../..").canonicalize().expect("the repository root");
    commit(&root);
    let workspace_manifest = root.join("Cargo.toml");
    println!("cargo::rerun-if-changed={}", workspace_manifest.display());
    let workspace = std::fs::read_to_string(&workspace_manifest).expect("read Cargo.toml");
    let mut code = String::from(
        "/// The Rust SDK's files under `theory-sdk/`: (path, text).\npub(super) const RUST_SDK: &[(&str, &str)] = &[\n",
    );
    for name in ["theory-processor", "theory-protocol"] {
        let folder = root.join("crates").join(name);
        let manifest_path = folder.join("Cargo.toml");
        println!("cargo::rerun-if-changed={}", manifest_path.display());
        let manifest = std::fs::read_to_string(&manifest_path).expect("read a crate manifest");
        let standalone = standalone_manifest(&manifest, &workspace);
        let _ = writeln!(code, "    (\"{name}/Cargo.toml\", {standalone:?}),");
        let mut files = Vec::new();
        sources(&folder.join("src"), &mut files);
        files.sort();
        for file in files {
            println!("cargo::rerun-if-changed={}", file.display());
            let relative =
                file.strip_prefix(&folder).expect("under the crate").display().to_string();
            let _ =
                writeln!(code, "    (\"{name}/{relative}\", include_str!({:?})),", file.display());
        }
    }
    code.push_str("];\n");
    let lock = root.join("Cargo.lock");
    println!("cargo::rerun-if-changed={}", lock.display());
    let _ = writeln!(
        code,
        "/// This workspace's `Cargo.lock`.\npub(super) const WORKSPACE_LOCK: &str = include_str!({:?});",
        lock.display()
    );
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("embedded_rust_sdk.rs");
    std::fs::write(out, code).expect("write the embedded SDK");
}

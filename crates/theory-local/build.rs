//! Embeds what a Python processor needs on any machine: the `theory-processor` SDK's package
//! (`sdk/python/src/theory_processor/`), its dependencies as `pyproject.toml` lists them, and the
//! sources of the built-in Python processors (the folders of `processors/` with no `Cargo.toml`).
//! `theory processor build` writes them into the environment it prepares, so the SDK that runs is
//! always the one this `theory` was built with.

use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Every file under `folder`, sorted, skipping caches and hidden entries.
fn collect(folder: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(folder) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "__pycache__" || name == "tests" {
            continue;
        }
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
    files.sort();
}

/// `&[(relative path, include_str!(absolute))]` for the files of `folder`.
fn embedded(folder: &Path) -> String {
    println!("cargo::rerun-if-changed={}", folder.display());
    let mut files = Vec::new();
    collect(folder, &mut files);
    let mut code = String::from("&[\n");
    for file in files {
        println!("cargo::rerun-if-changed={}", file.display());
        let relative = file.strip_prefix(folder).expect("under its folder").display().to_string();
        let absolute = file.canonicalize().expect("the file exists");
        let _ = writeln!(code, "        ({relative:?}, include_str!({:?})),", absolute.display());
    }
    code.push_str("    ]");
    code
}

/// The strings of `dependencies = [...]` in the SDK's `pyproject.toml` (one line, as written).
fn sdk_dependencies(pyproject: &Path) -> Vec<String> {
    println!("cargo::rerun-if-changed={}", pyproject.display());
    let text = std::fs::read_to_string(pyproject).expect("read the SDK's pyproject.toml");
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("dependencies = ["))
        .expect("pyproject.toml lists its dependencies on one line");
    // Each requirement is a quoted string; commas also separate a requirement's own bounds.
    line.split('"').skip(1).step_by(2).map(str::to_owned).collect()
}

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.join("../..");
    let mut code = String::new();
    let _ = writeln!(
        code,
        "/// The SDK's package files, relative to `theory_processor/`.\npub(crate) const SDK_FILES: &[(&str, &str)] = {};",
        embedded(&root.join("sdk/python/src/theory_processor"))
    );
    let _ = writeln!(
        code,
        "/// The SDK's dependencies, as its `pyproject.toml` lists them.\npub(crate) const SDK_REQUIREMENTS: &[&str] = &{:?};",
        sdk_dependencies(&root.join("sdk/python/pyproject.toml"))
    );
    let processors = root.join("processors");
    println!("cargo::rerun-if-changed={}", processors.display());
    let mut contexts: Vec<PathBuf> = std::fs::read_dir(&processors)
        .expect("read processors/")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_dir() && !path.join("Cargo.toml").exists())
        .collect();
    contexts.sort();
    code.push_str("/// The built-in Python processors' build contexts: (context, files).\npub(crate) const BUILTIN_CONTEXTS: &[(&str, &[(&str, &str)])] = &[\n");
    for context in contexts {
        let name = context.file_name().expect("a folder name").to_string_lossy().into_owned();
        let _ = writeln!(code, "    (\"processors/{name}\", {}),", embedded(&context));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("embedded_python.rs");
    std::fs::write(out, code).expect("write the embedded Python sources");
}

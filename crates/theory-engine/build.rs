//! Embeds the repository's `registry/` in the binary: the built-in processors, schemas,
//! policies and prompts that `theory` knows anywhere, even outside a project.

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn collect(folder: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(folder) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else if path
            .extension()
            .is_some_and(|extension| extension == "yaml" || extension == "yml")
        {
            files.push(path);
        }
    }
}

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let registry = manifest.join("../../registry");
    println!("cargo::rerun-if-changed={}", registry.display());
    let mut code = String::from(
        "/// The built-in registry files: (kind folder, relative path, text).\npub(crate) const BUILTIN: &[(&str, &str, &str)] = &[\n",
    );
    for folder in ["processors", "schemas", "policies", "prompts"] {
        let mut files = Vec::new();
        collect(&registry.join(folder), &mut files);
        files.sort();
        for file in files {
            println!("cargo::rerun-if-changed={}", file.display());
            let relative =
                file.strip_prefix(&registry).expect("under registry").display().to_string();
            let absolute = file.canonicalize().expect("registry file exists");
            let _ = writeln!(
                code,
                "    ({folder:?}, {relative:?}, include_str!({:?})),",
                absolute.display().to_string()
            );
        }
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("builtin_registry.rs");
    std::fs::write(out, code).expect("write the embedded registry");
}

//! From sources to an image tarball: a static `cargo build` of the processor's binary, its
//! Dockerfile's files gathered, and [`write_archive`] for the bytes.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::archive::{Archive, ImagePlatform, LayerFile, write_archive};
use crate::dockerfile::{DockerfileError, Recipe};

/// A platform Theory can name, with its Rust target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildPlatform {
    /// `amd64` or `arm64`.
    pub name: &'static str,
    /// The Rust target triple that builds for it.
    pub rust_target: &'static str,
}

/// The platforms images can be built for.
pub const PLATFORMS: [BuildPlatform; 2] = [
    BuildPlatform { name: "amd64", rust_target: "x86_64-unknown-linux-gnu" },
    BuildPlatform { name: "arm64", rust_target: "aarch64-unknown-linux-gnu" },
];

impl BuildPlatform {
    /// Looks up `amd64`, `arm64`, `linux/amd64` or `linux/arm64`.
    pub fn parse(text: &str) -> Option<BuildPlatform> {
        let name = text.strip_prefix("linux/").unwrap_or(text);
        PLATFORMS.into_iter().find(|platform| platform.name == name)
    }

    /// Whether this toolchain can build for the platform: its standard library is installed, and
    /// the host is that platform (static linking for another one needs its C toolchain too).
    pub fn buildable_here(self) -> Result<(), String> {
        let host = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let sysroot = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .args(["--print", "sysroot"])
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
        let installed = sysroot.is_some_and(|root| {
            root.join("lib/rustlib").join(self.rust_target).join("lib").is_dir()
        });
        if !installed {
            return Err(format!(
                "linux/{} cannot be built here: the Rust target {} is not installed",
                self.name, self.rust_target
            ));
        }
        if host != self.name {
            return Err(format!(
                "linux/{} cannot be built here: this machine is {host} and has no {} C toolchain to link a static binary",
                self.name, self.rust_target
            ));
        }
        Ok(())
    }
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The project root: where `cargo build` runs and paths are relative to.
    pub project_root: PathBuf,
    /// The build context, relative to the project root.
    pub context: String,
    /// The Dockerfile, relative to the context.
    pub dockerfile: String,
    /// The Cargo binary the Dockerfile copies by name.
    pub binary: String,
    /// The platform.
    pub platform: BuildPlatform,
    /// Tags written into the tarball (`repo:tag`).
    pub tags: Vec<String>,
    /// Labels added to the Dockerfile's own.
    pub labels: Vec<(String, String)>,
    /// Where the tarball goes.
    pub output: PathBuf,
}

/// What [`build_image`] made.
#[derive(Debug, Clone)]
pub struct Built {
    /// The tarball and its image ID.
    pub archive: Archive,
    /// The static binary inside it.
    pub binary: PathBuf,
}

/// A failure to build an image.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile could not be read or used.
    #[error("{path}: {source}")]
    Dockerfile {
        /// The Dockerfile.
        path: String,
        /// What is wrong with it.
        #[source]
        source: DockerfileError,
    },
    /// The platform cannot be built on this machine.
    #[error("{0}")]
    Platform(String),
    /// `cargo build` failed; its own output says why.
    #[error("cargo build of {binary} failed ({status})")]
    Cargo {
        /// The binary.
        binary: String,
        /// How cargo ended.
        status: String,
    },
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
}

/// Compiles `request.binary` statically and writes the image tarball.
pub fn build_image(request: &BuildRequest) -> Result<Built, BuildError> {
    request.platform.buildable_here().map_err(BuildError::Platform)?;
    let context = request.project_root.join(&request.context);
    let dockerfile_path = context.join(&request.dockerfile);
    let text = std::fs::read_to_string(&dockerfile_path)
        .map_err(|error| BuildError::Io(format!("{}: {error}", dockerfile_path.display())))?;
    let mut recipe = Recipe::parse(&text).map_err(|source| BuildError::Dockerfile {
        path: dockerfile_path.display().to_string(),
        source,
    })?;
    recipe.labels.extend(request.labels.iter().cloned());
    let binary = cargo_build_static(&request.project_root, &request.binary, request.platform)?;
    let mut files = Vec::new();
    for copy in &recipe.copies {
        let source =
            if copy.source == request.binary { binary.clone() } else { context.join(&copy.source) };
        let destination = if copy.destination.ends_with('/') {
            let name = Path::new(&copy.source).file_name().unwrap_or_default().to_string_lossy();
            format!("{}{name}", copy.destination)
        } else {
            copy.destination.clone()
        };
        gather(&source, destination.trim_start_matches('/'), &mut files)?;
    }
    let platform = ImagePlatform { architecture: request.platform.name };
    let archive = write_archive(&request.output, &files, &recipe, platform, &request.tags)
        .map_err(|error| BuildError::Io(format!("{}: {error}", request.output.display())))?;
    Ok(Built { archive, binary })
}

/// Adds a file, or a folder's files in name order, under `destination`.
fn gather(source: &Path, destination: &str, files: &mut Vec<LayerFile>) -> Result<(), BuildError> {
    let metadata = std::fs::metadata(source)
        .map_err(|error| BuildError::Io(format!("COPY {}: {error}", source.display())))?;
    if metadata.is_dir() {
        let mut children: Vec<_> = std::fs::read_dir(source)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|error| BuildError::Io(format!("COPY {}: {error}", source.display())))?;
        children.sort_by_key(std::fs::DirEntry::file_name);
        for child in children {
            let name = child.file_name().to_string_lossy().into_owned();
            gather(&child.path(), &format!("{destination}/{name}"), files)?;
        }
        return Ok(());
    }
    files.push(LayerFile {
        path: destination.to_owned(),
        source: source.to_owned(),
        executable: metadata.permissions().mode() & 0o111 != 0,
    });
    Ok(())
}

/// Runs `cargo build --release` for the binary as a static executable and returns its path.
/// Source paths are remapped so the binary does not depend on where the checkout is.
fn cargo_build_static(
    root: &Path,
    binary: &str,
    platform: BuildPlatform,
) -> Result<PathBuf, BuildError> {
    let mut flags = vec!["-C".to_owned(), "target-feature=+crt-static".to_owned()];
    flags.push(format!("--remap-path-prefix={}=/build", root.display()));
    if let Some(home) = cargo_home() {
        flags.push(format!("--remap-path-prefix={}=/cargo", home.display()));
    }
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .current_dir(root)
        .args(["build", "--release", "--bin", binary, "--target", platform.rust_target])
        .args(["--message-format", "json-render-diagnostics"])
        .env_remove("RUSTFLAGS")
        .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\u{1f}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if root.join("Cargo.lock").is_file() {
        command.arg("--locked");
    }
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_for_a_crate) {
            command.env_remove(name);
        }
    }
    let mut child =
        command.spawn().map_err(|error| BuildError::Io(format!("cannot run cargo: {error}")))?;
    let mut executable = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            if message["reason"] == "compiler-artifact"
                && message["target"]["name"] == binary
                && let Some(path) = message["executable"].as_str()
            {
                executable = Some(PathBuf::from(path));
            }
        }
    }
    let status = child.wait().map_err(|error| BuildError::Io(format!("cargo: {error}")))?;
    if !status.success() {
        return Err(BuildError::Cargo { binary: binary.to_owned(), status: status.to_string() });
    }
    executable.ok_or_else(|| BuildError::Cargo {
        binary: binary.to_owned(),
        status: "it reported no executable of that name".into(),
    })
}

/// Whether `name` is one of the variables cargo sets for the crate it runs (a test, `cargo run`).
/// Inherited by the inner build they would change its fingerprints — ring's build script reruns
/// when `CARGO_MANIFEST_DIR` changes — and rebuild every dependency of the image for nothing.
fn set_by_cargo_for_a_crate(name: &str) -> bool {
    const EXACT: [&str; 8] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "OUT_DIR",
    ];
    EXACT.contains(&name) || name.starts_with("CARGO_PKG_") || name.starts_with("CARGO_BIN_EXE_")
}

/// Where cargo keeps registry sources: `CARGO_HOME`, else `~/.cargo` — with the home folder
/// from the user database when `HOME` is unset, as cargo itself finds it. The remap flag must be
/// the same whatever the environment, or the binary (and the image ID) would differ.
fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::home_dir().map(|home| home.join(".cargo")))
}

#[cfg(test)]
mod tests {
    use super::set_by_cargo_for_a_crate;

    #[test]
    fn the_crate_variables_of_an_outer_cargo_are_not_passed_on() {
        for name in ["CARGO_MANIFEST_DIR", "CARGO_PKG_NAME", "CARGO_BIN_EXE_theory", "OUT_DIR"] {
            assert!(set_by_cargo_for_a_crate(name), "{name}");
        }
        for name in ["CARGO_HOME", "CARGO_TARGET_DIR", "CARGO_NET_OFFLINE", "CARGO"] {
            assert!(!set_by_cargo_for_a_crate(name), "{name}");
        }
    }
}

//! Python processors on the host: the environment `theory processor build` prepares for the
//! `process` runtime, under `.theory/python/{ns}_{name}-{version}/`:
//!
//! - `venv/`: a virtual environment with the SDK's dependencies and the processor's
//!   `requirements.txt`, installed by pip (which honours `PIP_INDEX_URL`, `PIP_FIND_LINKS` and
//!   `PIP_NO_INDEX` for machines without `PyPI`);
//! - `sdk/theory_processor/`: the SDK this `theory` was built with;
//! - `src/`: a copy of the build context taken at build time, so what runs is what was hashed;
//! - `serve`: the launcher the `process` runtime runs like a binary. Its text carries the
//!   environment's identity (BLAKE3 over the Python version, `pip freeze`, and every file of
//!   `sdk/` and `src/`), so the binary identity of the launcher names all of it.
//!
//! The environment is made in a staging folder and moved into place whole: a failed build leaves
//! the previous one as it was.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use theory_core::ProcessorRef;

include!(concat!(env!("OUT_DIR"), "/embedded_python.rs"));

/// The launcher's file name inside an environment.
pub const LAUNCHER: &str = "serve";

/// The folder of a processor's environment under the state folder (`.theory/`).
pub fn python_env_folder(state: &Path, reference: &ProcessorRef) -> PathBuf {
    state.join("python").join(format!("{}-{}", reference.slug(), reference.version()))
}

/// The sources of a Python processor.
#[derive(Debug, Clone)]
pub enum PythonSource {
    /// A build context on disk.
    Folder(PathBuf),
    /// A built-in processor's context, embedded in `theory`.
    Embedded(&'static [(&'static str, &'static str)]),
}

impl PythonSource {
    /// The context folder in the project when it exists, else the embedded copy of a built-in
    /// context of that name, else `None`.
    pub fn find(project: &Path, context: &str) -> Option<PythonSource> {
        let folder = project.join(context);
        if folder.is_dir() {
            return Some(PythonSource::Folder(folder));
        }
        let context = context.trim_end_matches('/');
        BUILTIN_CONTEXTS
            .iter()
            .find(|(name, _)| *name == context)
            .map(|(_, files)| PythonSource::Embedded(files))
    }
}

/// What to prepare.
#[derive(Debug, Clone)]
pub struct PythonEnvRequest {
    /// The processor's ref (the launcher passes it to the SDK).
    pub reference: ProcessorRef,
    /// Its sources.
    pub source: PythonSource,
    /// The provider file, relative to the sources.
    pub provider: String,
    /// The interpreter the environment is made from (`THEORY_PYTHON`, else `python3`).
    pub python: String,
    /// The environment's folder (see [`python_env_folder`]).
    pub folder: PathBuf,
}

/// A prepared environment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PythonEnv {
    /// Its folder.
    pub folder: PathBuf,
    /// The launcher.
    pub launcher: PathBuf,
    /// `b3:` over the Python version, the installed packages and the files.
    pub identity: String,
    /// `pip freeze` of the environment.
    pub packages: Vec<String>,
    /// `major.minor.micro` of its Python.
    pub python_version: String,
}

/// Why an environment could not be prepared: the message and a hint.
#[derive(Debug, Clone)]
pub struct PythonEnvError {
    /// What went wrong.
    pub message: String,
    /// What to do.
    pub hint: String,
}

fn failed(message: impl Into<String>, hint: impl Into<String>) -> PythonEnvError {
    PythonEnvError { message: message.into(), hint: hint.into() }
}

fn io_failed(what: &str, path: &Path, error: &std::io::Error) -> PythonEnvError {
    failed(format!("cannot {what} {}: {error}", path.display()), "check the folder's permissions")
}

/// Prepares the environment, reporting pip's progress lines to `progress`.
pub fn prepare_python_env(
    request: &PythonEnvRequest,
    progress: &mut dyn FnMut(&str),
) -> Result<PythonEnv, PythonEnvError> {
    let parent = request.folder.parent().ok_or_else(|| failed("no parent folder", "a bug"))?;
    std::fs::create_dir_all(parent).map_err(|error| io_failed("create", parent, &error))?;
    let staging = parent.join(format!(
        ".{}.staging-{}",
        request.folder.file_name().unwrap_or_default().to_string_lossy(),
        crate::random::random_hex(6)
    ));
    let outcome = prepare_in(request, &staging, progress);
    match outcome {
        Ok((identity, packages, python_version)) => {
            replace_folder(&staging, &request.folder)?;
            Ok(PythonEnv {
                launcher: request.folder.join(LAUNCHER),
                folder: request.folder.clone(),
                identity,
                packages,
                python_version,
            })
        }
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(error)
        }
    }
}

/// Moves `staging` to `folder`, replacing what was there only once the new one is complete.
fn replace_folder(staging: &Path, folder: &Path) -> Result<(), PythonEnvError> {
    let old = folder.with_extension(format!("old-{}", crate::random::random_hex(6)));
    let had_one = folder.exists();
    if had_one {
        std::fs::rename(folder, &old).map_err(|error| io_failed("move aside", folder, &error))?;
    }
    if let Err(error) = std::fs::rename(staging, folder) {
        if had_one {
            let _ = std::fs::rename(&old, folder);
        }
        let _ = std::fs::remove_dir_all(staging);
        return Err(io_failed("move into place", folder, &error));
    }
    if had_one {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(())
}

/// Everything but the final move: sources, venv, packages, identity, launcher.
fn prepare_in(
    request: &PythonEnvRequest,
    staging: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<(String, Vec<String>, String), PythonEnvError> {
    let python_version = interpreter_version(&request.python)?;
    write_files(&staging.join("sdk/theory_processor"), SDK_FILES.iter().copied())?;
    let src = staging.join("src");
    match &request.source {
        PythonSource::Folder(folder) => copy_tree(folder, &src)?,
        PythonSource::Embedded(files) => write_files(&src, files.iter().copied())?,
    }
    if !src.join(&request.provider).is_file() {
        return Err(failed(
            format!("the provider file {} is not in the build context", request.provider),
            "image.build.python names a file relative to image.build.context",
        ));
    }
    progress(&format!("making a virtual environment with {} ({python_version})", request.python));
    let venv = staging.join("venv");
    run_streamed(Command::new(&request.python).arg("-m").arg("venv").arg(&venv), progress)
        .map_err(|message| {
            failed(message, "install Python's venv module (Debian: python3-venv)")
        })?;
    let venv_python = venv.join("bin/python");
    let mut install = Command::new(&venv_python);
    install
        .args(["-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"])
        .args(SDK_REQUIREMENTS);
    let requirements = src.join("requirements.txt");
    if requirements.is_file() {
        install.arg("-r").arg(&requirements);
    }
    progress("installing the SDK's dependencies and requirements.txt with pip");
    run_streamed(&mut install, progress).map_err(|message| {
        failed(
            message,
            "pip needs PyPI, or wheels: set PIP_NO_INDEX=1 and PIP_FIND_LINKS=<a folder of wheels>",
        )
    })?;
    let frozen = Command::new(&venv_python)
        .args(["-m", "pip", "freeze", "--disable-pip-version-check"])
        .output()
        .map_err(|error| failed(format!("pip freeze: {error}"), "see pip's output above"))?;
    if !frozen.status.success() {
        return Err(failed(
            format!("pip freeze failed: {}", String::from_utf8_lossy(&frozen.stderr).trim()),
            "see pip's output above",
        ));
    }
    let packages: Vec<String> =
        String::from_utf8_lossy(&frozen.stdout).lines().map(str::to_owned).collect();
    point_scripts_at(&venv, &request.folder.join("venv"))?;
    let identity = identity_of(staging, &python_version, &packages)?;
    let launcher = launcher_text(request, &identity);
    let path = staging.join(LAUNCHER);
    std::fs::write(&path, launcher).map_err(|error| io_failed("write", &path, &error))?;
    set_mode(&path, 0o755)?;
    Ok((identity, packages, python_version))
}

/// The scripts pip put in `venv/bin` (console scripts, `activate`) name the folder the venv was
/// made in; they are pointed at the folder it is moved to.
fn point_scripts_at(venv: &Path, moved_to: &Path) -> Result<(), PythonEnvError> {
    let bin = venv.join("bin");
    let (from, to) = (venv.display().to_string(), moved_to.display().to_string());
    let entries = std::fs::read_dir(&bin).map_err(|error| io_failed("read", &bin, &error))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let is_file = entry.file_type().is_ok_and(|kind| kind.is_file());
        let Some(text) = is_file.then(|| std::fs::read(&path).ok()).flatten() else { continue };
        let Ok(text) = String::from_utf8(text) else { continue };
        if text.contains(&from) {
            let mode = entry.metadata().map(|metadata| {
                use std::os::unix::fs::PermissionsExt as _;
                metadata.permissions().mode()
            });
            std::fs::write(&path, text.replace(&from, &to))
                .map_err(|error| io_failed("write", &path, &error))?;
            if let Ok(mode) = mode {
                set_mode(&path, mode)?;
            }
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), PythonEnvError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|error| io_failed("make executable", path, &error))
}

/// The interpreter's version, refused below 3.10.
fn interpreter_version(python: &str) -> Result<String, PythonEnvError> {
    let output = Command::new(python)
        .args(["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
        .output()
        .map_err(|error| {
            failed(
                format!("cannot run {python}: {error}"),
                "install Python 3.10 or newer, or point THEORY_PYTHON at one",
            )
        })?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let mut parts = version.split('.').map(|part| part.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if !output.status.success() || (major, minor) < (3, 10) {
        return Err(failed(
            format!("{python} is Python {version}; the SDK needs 3.10 or newer"),
            "point THEORY_PYTHON at Python 3.10 or newer",
        ));
    }
    Ok(version)
}

/// `b3:` over a version line, the package list, and `(path, length, bytes)` of every file of
/// `sdk/` and `src/` in name order.
fn identity_of(
    staging: &Path,
    python_version: &str,
    packages: &[String],
) -> Result<String, PythonEnvError> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(format!("theory python env v1\npython {python_version}\n").as_bytes());
    for package in packages {
        hasher.update(package.as_bytes());
        hasher.update(b"\n");
    }
    for part in ["sdk", "src"] {
        let mut files = Vec::new();
        list_files(&staging.join(part), &mut files)
            .map_err(|error| io_failed("read", &staging.join(part), &error))?;
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).map_err(|error| io_failed("read", &file, &error))?;
            let relative = file.strip_prefix(staging).unwrap_or(&file).display().to_string();
            hasher.update(format!("{relative}\0{}\0", bytes.len()).as_bytes());
            hasher.update(&bytes);
        }
    }
    Ok(format!("b3:{}", hasher.finalize().to_hex()))
}

fn list_files(folder: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            list_files(&entry.path(), files)?;
        } else {
            files.push(entry.path());
        }
    }
    Ok(())
}

/// `text` as one shell word in single quotes (a `'` inside written `'\''`).
fn shell_quoted(text: &str) -> String {
    // Inside single quotes the shell expands nothing; a quote ends them, is written escaped,
    // and they start again.
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// A shell script that runs the SDK on the copied provider, with only the environment's
/// folders on `PYTHONPATH`.
fn launcher_text(request: &PythonEnvRequest, identity: &str) -> String {
    let provider = shell_quoted(&request.provider);
    let reference = shell_quoted(request.reference.as_str());
    format!(
        "#!/bin/sh\n\
         # {}: prepared by `theory processor build`; rebuild rather than edit.\n\
         # identity: {identity}\n\
         here=$(CDPATH= cd -- \"$(dirname -- \"$0\")\" && pwd)\n\
         PYTHONPATH=\"$here/sdk:$here/src\" PYTHONDONTWRITEBYTECODE=1 \\\n  \
         exec \"$here/venv/bin/python\" -m theory_processor serve \"$here/src/\"{provider} --ref {reference}\n",
        request.reference.as_str()
    )
}

/// Writes embedded files under `folder`.
fn write_files<'a>(
    folder: &Path,
    files: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<(), PythonEnvError> {
    for (relative, text) in files {
        let path = folder.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| io_failed("create", parent, &error))?;
        }
        std::fs::write(&path, text).map_err(|error| io_failed("write", &path, &error))?;
    }
    Ok(())
}

/// Copies a build context, leaving out what an image's context leaves out
/// ([`theory_image::left_out`]).
fn copy_tree(from: &Path, to: &Path) -> Result<(), PythonEnvError> {
    std::fs::create_dir_all(to).map_err(|error| io_failed("create", to, &error))?;
    let entries = std::fs::read_dir(from).map_err(|error| io_failed("read", from, &error))?;
    for entry in entries {
        let entry = entry.map_err(|error| io_failed("read", from, &error))?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        if theory_image::left_out(&text) {
            continue;
        }
        let kind = entry.file_type().map_err(|error| io_failed("read", &entry.path(), &error))?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &to.join(&name))?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(&name))
                .map_err(|error| io_failed("copy", &entry.path(), &error))?;
        }
    }
    Ok(())
}

/// Runs a command, passing each line of its output to `progress`; the error names the command
/// and its last lines.
fn run_streamed(command: &mut Command, progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run {shown}: {error}"))?;
    let stderr = child.stderr.take();
    // stderr is read on a thread so neither pipe can fill while the other is read.
    let errors = std::thread::spawn(move || {
        stderr.map_or_else(Vec::new, |stderr| {
            BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<String>>()
        })
    });
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            progress(&line);
        }
    }
    let status = child.wait().map_err(|error| format!("{shown}: {error}"))?;
    let errors = errors.join().unwrap_or_default();
    for line in &errors {
        progress(line);
    }
    if status.success() {
        Ok(())
    } else {
        let tail = errors.iter().rev().take(5).rev().cloned().collect::<Vec<_>>().join(" | ");
        Err(format!("{shown} failed ({status}): {tail}"))
    }
}

/// The SDK's package files this `theory` embeds: (path under `theory_processor/`, text).
pub fn sdk_files() -> impl Iterator<Item = (&'static str, &'static str)> {
    SDK_FILES.iter().copied()
}

/// The SDK's dependencies, as its `pyproject.toml` lists them.
pub fn sdk_requirements() -> &'static [&'static str] {
    SDK_REQUIREMENTS
}

/// Writes a source into `folder` (replacing what was there) and returns the folder: a built-in
/// context, for a build that needs it on disk.
pub fn materialize(source: &PythonSource, folder: &Path) -> Result<PathBuf, PythonEnvError> {
    match source {
        PythonSource::Folder(existing) => Ok(existing.clone()),
        PythonSource::Embedded(files) => {
            let _ = std::fs::remove_dir_all(folder);
            write_files(folder, files.iter().copied())?;
            Ok(folder.to_path_buf())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quoted;

    #[test]
    fn a_provider_path_is_one_shell_word_whatever_it_holds() {
        for text in ["provider.py", "it's.py", "$(touch x) `y` \"z\" $HOME.py"] {
            let quoted = shell_quoted(text);
            let output = std::process::Command::new("sh")
                .args(["-c", &format!("printf %s {quoted}")])
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&output.stdout), text);
        }
    }
}

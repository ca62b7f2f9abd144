//! `theory processor build` of a Dockerfile beyond the `FROM scratch` subset: built by the
//! Docker Engine's build API from a deterministic context tarball, the engine's output shown as it
//! comes. Base images are never pulled (a missing one is named with what to do), and each one's
//! image ID is recorded on the result as a label. `SOURCE_DATE_EPOCH` (default 0) sets every
//! timestamp in the context and is passed as a build argument.
//!
//! A Python processor's context also gets `.theory-sdk/` (the SDK this `theory` embeds, and its
//! `requirements.txt`) and `.theory-wheels/` (every wheel its requirements need, downloaded on
//! the host by pip for the base image's Python), so its Dockerfile installs with
//! `pip install --no-index` and the build needs no network.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use theory_core::Failure;
use theory_core::env::names;
use theory_core::registry::{BuildSpec, Platform, ProcessorEntry};
use theory_docker::{Docker, EngineBuild};
use theory_image::{ExtraFile, base_images, write_context};
use theory_local::{local_image_tag, python_env_folder};
use theory_protocol::ErrorCode;

use super::build::BuildReport;
use crate::commands::Context;
use crate::print::docker_failure;

/// The label a base image carries to say which Python it has (`3.11`).
const PYTHON_LABEL: &str = "com.theory.python";

fn failure(message: impl Into<String>, hint: impl Into<String>) -> Failure {
    Failure::with_hint(ErrorCode::Docker, message, hint)
}

/// Builds the image of `entry` on this machine's platform.
pub(super) async fn build_with_engine(
    entry: &ProcessorEntry,
    build: &BuildSpec,
    context: &Context,
) -> Result<BuildReport, Failure> {
    let reference = &entry.spec.reference;
    let state = context.project.state();
    let mut folder = context.project.root.join(&build.context);
    if build.python.is_some()
        && !folder.is_dir()
        && let Some(source) =
            theory_local::PythonSource::find(&context.project.root, &build.context)
    {
        // A built-in Python processor outside Theory's repository: its embedded sources.
        let copy = state.join("python/contexts").join(env_name(reference));
        folder = theory_local::materialize(&source, &copy)
            .map_err(|error| failure(error.message, error.hint))?;
    }
    let dockerfile_path = folder.join(&build.dockerfile);
    let dockerfile = std::fs::read_to_string(&dockerfile_path).map_err(|error| {
        failure(
            format!("cannot read {}: {error}", dockerfile_path.display()),
            "image.build.dockerfile names a file relative to image.build.context",
        )
    })?;
    let docker = Docker::connect().await.map_err(docker_failure)?;
    let mut labels = HashMap::from([("com.theory.ref".to_owned(), reference.to_string())]);
    let mut python_version = None;
    let mut bases = Vec::new();
    for base in base_images(&dockerfile) {
        let info = docker.image(&base).await.map_err(docker_failure)?.ok_or_else(|| {
            failure(
                format!("the base image {base} of {} is not in Docker, and a build never pulls", dockerfile_path.display()),
                format!("load or pull {base} first; for theory-base/python:3.11-bookworm, run scripts/setup-python-base from Theory's repository"),
            )
        })?;
        python_version = python_version.or_else(|| info.labels.get(PYTHON_LABEL).cloned());
        bases.push(format!("{base}={}", info.id));
    }
    labels.insert("com.theory.base".to_owned(), bases.join(","));
    let epoch: u64 =
        context.env.get(names::SOURCE_DATE_EPOCH).and_then(|value| value.parse().ok()).unwrap_or(0);
    let mut extras = Vec::new();
    if build.python.is_some() {
        extras = python_extras(context, reference, &folder, python_version.as_deref()).await?;
    }
    let slug = format!("{}-{}-{}", reference.namespace(), reference.name(), reference.version());
    let tarball = state.join(format!("images/{slug}-context.tar"));
    let images = state.join("images");
    std::fs::create_dir_all(&images).map_err(|error| {
        failure(
            format!("cannot create {}: {error}", images.display()),
            "check the folder's permissions",
        )
    })?;
    let written = {
        let (folder, tarball) = (folder.clone(), tarball.clone());
        tokio::task::spawn_blocking(move || write_context(&folder, &extras, epoch, &tarball))
            .await
            .map_err(|error| failure(error.to_string(), "report this as a bug"))?
    };
    let size = written.map_err(|error| {
        failure(
            format!("cannot write the build context {}: {error}", tarball.display()),
            "check the disk",
        )
    })?;
    let tag = local_image_tag(reference);
    eprintln!(
        "building {reference} with the Docker Engine ({} context, {size} bytes)",
        build.context
    );
    let request = EngineBuild {
        dockerfile: build.dockerfile.clone(),
        tag: tag.clone(),
        build_args: HashMap::from([(names::SOURCE_DATE_EPOCH.to_owned(), epoch.to_string())]),
        labels,
        // A Python processor installs from the wheels in its context: its build needs no
        // network, and gets none.
        network: build.python.is_some().then(|| "none".to_owned()),
    };
    let outcome = docker.build_image(&tarball, &request, |line| eprintln!("  {line}")).await;
    let _ = std::fs::remove_file(&tarball);
    let image_id = outcome.map_err(|error| {
        let mut failure = docker_failure(error);
        failure.message = format!("the build of {reference} failed: {}", failure.message);
        failure.hint = Some("see the build output above".into());
        failure
    })?;
    eprintln!("built {reference}: {image_id} ({tag})");
    Ok(BuildReport {
        reference: reference.to_string(),
        platform: format!("linux/{}", Platform::host().unwrap_or(Platform::Amd64)),
        image_id,
        tag,
        tarball: None,
        size_bytes: size,
    })
}

/// `{ns}_{name}-{version}`: the name of a processor's folders under `.theory/python/`.
fn env_name(reference: &theory_core::ProcessorRef) -> std::ffi::OsString {
    python_env_folder(Path::new(""), reference).file_name().unwrap_or_default().to_owned()
}

/// The SDK and the wheels a Python processor's Dockerfile installs from.
async fn python_extras(
    context: &Context,
    reference: &theory_core::ProcessorRef,
    folder: &Path,
    python_version: Option<&str>,
) -> Result<Vec<ExtraFile>, Failure> {
    let mut extras: Vec<ExtraFile> = theory_local::sdk_files()
        .map(|(path, text)| ExtraFile::Bytes {
            path: format!(".theory-sdk/theory_processor/{path}"),
            bytes: text.as_bytes().to_vec(),
        })
        .collect();
    let requirements = theory_local::sdk_requirements().join("\n") + "\n";
    extras.push(ExtraFile::Bytes {
        path: ".theory-sdk/requirements.txt".into(),
        bytes: requirements.into_bytes(),
    });
    // Only what these requirements need: the folder is emptied first (pip's own cache keeps
    // the downloads cheap).
    let wheels = context.project.state().join("python/wheels").join(env_name(reference));
    let _ = std::fs::remove_dir_all(&wheels);
    let python = context.env.get(names::PYTHON).unwrap_or("python3").to_owned();
    let version = python_version.map(str::to_owned);
    let own = folder.join("requirements.txt");
    let download = {
        let wheels = wheels.clone();
        tokio::task::spawn_blocking(move || {
            download_wheels(
                &python,
                version.as_deref(),
                own.is_file().then_some(own.as_path()),
                &wheels,
            )
        })
        .await
        .map_err(|error| failure(error.to_string(), "report this as a bug"))?
    };
    download?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&wheels)
        .map_err(|error| {
            failure(format!("cannot read {}: {error}", wheels.display()), "check the folder")
        })?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "whl"))
        .collect();
    files.sort();
    for source in files {
        let name = source.file_name().unwrap_or_default().to_string_lossy().into_owned();
        extras.push(ExtraFile::Disk { path: format!(".theory-wheels/{name}"), source });
    }
    Ok(extras)
}

/// `pip download` of the SDK's and the processor's requirements as binary wheels for Linux on
/// this machine's architecture and the given Python (`3.11`; default: the host's).
fn download_wheels(
    python: &str,
    version: Option<&str>,
    own_requirements: Option<&Path>,
    wheels: &Path,
) -> Result<(), Failure> {
    let arch = std::env::consts::ARCH;
    let mut command = std::process::Command::new(python);
    command
        .args(["-m", "pip", "download", "--disable-pip-version-check", "--progress-bar", "off"])
        .args(["--only-binary=:all:", "--implementation", "cp", "--dest"])
        .arg(wheels);
    if let Some(version) = version {
        let abi = format!("cp{}", version.replace('.', ""));
        command.args([
            "--python-version",
            version,
            "--abi",
            &abi,
            "--abi",
            "abi3",
            "--abi",
            "none",
        ]);
        // A glibc userland (Debian bookworm has 2.36): every manylinux tag up to it, and pure wheels.
        for tag in ["manylinux1", "manylinux2010", "manylinux2014"] {
            command.args(["--platform", &format!("{tag}_{arch}")]);
        }
        for minor in 5..=36 {
            command.args(["--platform", &format!("manylinux_2_{minor}_{arch}")]);
        }
        command.args(["--platform", "any"]);
    }
    command.args(theory_local::sdk_requirements());
    if let Some(own) = own_requirements {
        command.arg("-r").arg(own);
    }
    eprintln!("downloading wheels for the image into {}", wheels.display());
    let output = command.output().map_err(|error| {
        failure(
            format!("cannot run {python}: {error}"),
            "install Python 3.10 or newer, or point THEORY_PYTHON at one",
        )
    })?;
    if output.status.success() {
        return Ok(());
    }
    let errors = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> =
        errors.lines().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    Err(failure(
        format!("pip download failed: {}", tail.join(" | ")),
        "pip needs PyPI, or wheels: set PIP_NO_INDEX=1 and PIP_FIND_LINKS=<a folder of wheels>",
    ))
}

//! `theory artifacts ls|cat|get`: read the configured store (the filesystem one or S3) by world
//! path — the paths `theory run` prints and envelopes list.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use futures_util::StreamExt;
use serde_json::json;
use theory_core::{ArtifactStore, Failure, WorldPath};
use theory_protocol::ErrorCode;
use tokio::io::AsyncWriteExt;

use super::Context;
use crate::args::ArtifactsCommand;
use crate::print::{out, print_json};
use crate::usage::usage;

/// Runs a `theory artifacts` subcommand.
pub(crate) async fn run(command: ArtifactsCommand, context: Context) -> Result<ExitCode, Failure> {
    let store = context.project.store(&context.env).await?;
    match command {
        ArtifactsCommand::Ls(args) => list(&*store, &args.prefix, args.json).await,
        ArtifactsCommand::Cat(args) => {
            let path = world_path(&args.path)?;
            print_object(&*store, &path).await?;
            Ok(ExitCode::SUCCESS)
        }
        ArtifactsCommand::Get(args) => {
            let path = world_path(&args.path)?;
            let target = args.output.unwrap_or_else(|| PathBuf::from(path.file_name()));
            get(&*store, &path, &target, args.force).await?;
            if args.json {
                print_json(&json!({"path": path.as_str(), "saved": target.display().to_string()}));
            } else {
                out(target.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Parses a world path as a user typed it.
fn world_path(text: &str) -> Result<WorldPath, Failure> {
    text.parse().map_err(|error| {
        usage(
            format!("{text:?} is not a world path: {error}"),
            "a world path looks like /artifacts/outputs/…/text/response.txt; `theory artifacts ls` lists them",
        )
    })
}

fn store_failure(error: impl std::fmt::Display) -> Failure {
    Failure::with_hint(
        ErrorCode::Store,
        format!("the store cannot be read: {error}"),
        "check the storage settings (STORAGE_BACKEND and its variables)",
    )
}

fn missing(path: &WorldPath) -> Failure {
    Failure::with_hint(
        ErrorCode::Store,
        format!("{path} is not in the store"),
        "list what is there with `theory artifacts ls`",
    )
}

/// Lists the objects under `prefix` (a folder of world paths) with their sizes, sorted.
async fn list(store: &dyn ArtifactStore, prefix: &str, json: bool) -> Result<ExitCode, Failure> {
    let folder = if prefix.ends_with('/') { prefix.to_owned() } else { format!("{prefix}/") };
    if !folder.starts_with('/') {
        return Err(usage(
            format!("{prefix:?} is not a world path prefix"),
            "a prefix starts with /, such as /artifacts/outputs/",
        ));
    }
    let mut paths = store.list(&folder).await.map_err(store_failure)?;
    paths.sort();
    let mut listed = Vec::with_capacity(paths.len());
    for path in paths {
        let size = store.size(&path).await.map_err(store_failure)?;
        listed.push((path, size));
    }
    if json {
        let objects: Vec<_> = listed
            .iter()
            .map(|(path, size)| json!({"path": path.as_str(), "size_bytes": size}))
            .collect();
        print_json(&json!({"prefix": folder, "objects": objects}));
    } else {
        for (path, size) in &listed {
            out(format!(
                "{:>12}  {path}",
                size.map_or_else(|| "-".to_owned(), |size| size.to_string())
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Streams an object to stdout, chunk by chunk; a reader that stops early (`| head`) is no
/// error.
async fn print_object(store: &dyn ArtifactStore, path: &WorldPath) -> Result<(), Failure> {
    use std::io::Write;
    let mut stream = store.open(path).await.map_err(store_failure)?.ok_or_else(|| missing(path))?;
    let mut stdout = std::io::stdout().lock();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(store_failure)?;
        match stdout.write_all(&chunk) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(error) => return Err(write_failure(&error)),
        }
    }
    match stdout.flush() {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(write_failure(&error)),
        _ => Ok(()),
    }
}

/// Streams an object into a file, chunk by chunk.
async fn copy(
    store: &dyn ArtifactStore,
    path: &WorldPath,
    file: &mut tokio::fs::File,
) -> Result<(), Failure> {
    let mut stream = store.open(path).await.map_err(store_failure)?.ok_or_else(|| missing(path))?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(store_failure)?;
        file.write_all(&chunk).await.map_err(|error| write_failure(&error))?;
    }
    Ok(())
}

fn write_failure(error: &std::io::Error) -> Failure {
    Failure::with_hint(
        ErrorCode::Usage,
        format!("cannot write: {error}"),
        "check where the bytes go",
    )
}

/// Saves an object to `target` whole or not at all: written beside it under a temporary name,
/// then moved into place; an existing file is kept unless `force`.
async fn get(
    store: &dyn ArtifactStore,
    path: &WorldPath,
    target: &Path,
    force: bool,
) -> Result<(), Failure> {
    if target.is_dir() {
        return Err(usage(
            format!("--output {}: it is a folder", target.display()),
            "pass a file name",
        ));
    }
    if target.exists() && !force {
        return Err(usage(
            format!("{} exists already", target.display()),
            "pass --force to replace it, or --output another file",
        ));
    }
    let folder =
        target.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name =
        target.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let partial = folder.join(format!(".{name}.part-{}", std::process::id()));
    // Nothing is made on disk for an object that is not there.
    if store.size(path).await.map_err(store_failure)?.is_none() {
        return Err(missing(path));
    }
    let written = async {
        tokio::fs::create_dir_all(folder).await.map_err(|error| write_failure(&error))?;
        let mut file =
            tokio::fs::File::create(&partial).await.map_err(|error| write_failure(&error))?;
        copy(store, path, &mut file).await?;
        file.sync_all().await.map_err(|error| write_failure(&error))?;
        tokio::fs::rename(&partial, target).await.map_err(|error| write_failure(&error))
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    written
}

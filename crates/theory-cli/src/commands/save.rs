//! `--save-dir` and `--save-first`: copies of a run's outputs outside the store. The targets are
//! checked before the run starts, so a run is never spent only to find it cannot be saved.

use std::path::Path;
use theory_core::Failure;

use futures_util::StreamExt;
use theory_core::{ArtifactStore, WorldPath};
use theory_protocol::Envelope;

use crate::usage::usage;

/// Checks that `--save-dir` is (or can become) a writable folder and `--save-first` a writable
/// file, without creating anything.
pub(crate) fn check_targets(
    save_dir: Option<&Path>,
    save_first: Option<&Path>,
) -> Result<(), Failure> {
    if let Some(folder) = save_dir {
        if folder.exists() && !folder.is_dir() {
            return Err(usage(
                format!("--save-dir {}: it exists and is not a folder", folder.display()),
                "pass a folder (it is created if missing)",
            ));
        }
        writable_ancestor(folder).map_err(|reason| {
            usage(
                format!("--save-dir {}: {reason}", folder.display()),
                "pass a folder you can write to",
            )
        })?;
    }
    if let Some(file) = save_first {
        if file.is_dir() {
            return Err(usage(
                format!("--save-first {}: it is a folder", file.display()),
                "pass a file name, e.g. --save-first ./response.txt",
            ));
        }
        let parent =
            file.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
        writable_ancestor(parent).map_err(|reason| {
            usage(
                format!("--save-first {}: {reason}", file.display()),
                "pass a file in a folder you can write to",
            )
        })?;
    }
    Ok(())
}

/// The nearest existing folder at or above `path` must be a folder this process can write to
/// (what is missing below it is created when the outputs are saved).
fn writable_ancestor(path: &Path) -> Result<(), String> {
    let absolute = std::path::absolute(path).map_err(|error| error.to_string())?;
    let existing =
        absolute.ancestors().find(|ancestor| ancestor.exists()).unwrap_or(Path::new("/"));
    if !existing.is_dir() {
        return Err(format!("{} is not a folder", existing.display()));
    }
    nix::unistd::access(existing, nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK)
        .map_err(|error| format!("{} is not writable ({error})", existing.display()))
}

/// Copies outputs out of the store: all of them under `save_dir` by world path, the first to
/// `save_first` — the first the spec declares (`declared`, paths relative to the write prefix)
/// that the run wrote, else the first by path.
pub(crate) async fn save(
    store: &dyn ArtifactStore,
    envelope: &Envelope,
    save_dir: Option<&Path>,
    save_first: Option<&Path>,
    declared: &[String],
) -> anyhow::Result<()> {
    let Envelope::Success(success) = envelope else { return Ok(()) };
    if let Some(folder) = save_dir {
        for output in &success.outputs {
            let path: WorldPath = output.path.parse()?;
            copy_out(store, &path, &folder.join(path.key())).await?;
        }
    }
    let first = declared
        .iter()
        .find_map(|relative| {
            // Every output is `write_prefix + rel`: of those ending in `/rel`, the shortest is
            // the one at `rel` itself.
            let suffix = format!("/{relative}");
            success
                .outputs
                .iter()
                .filter(|output| output.path.ends_with(&suffix))
                .min_by_key(|output| output.path.len())
        })
        .or_else(|| success.outputs.first());
    if let (Some(file), Some(first)) = (save_first, first) {
        copy_out(store, &first.path.parse()?, file).await?;
    }
    Ok(())
}

async fn copy_out(
    store: &dyn ArtifactStore,
    path: &WorldPath,
    target: &Path,
) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut stream =
        store.open(path).await?.ok_or_else(|| anyhow::anyhow!("{path} is not in the store"))?;
    if let Some(parent) = target.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent).await?;
    }
    let mut file = tokio::fs::File::create(target).await?;
    while let Some(chunk) = stream.next().await {
        file.write_all(&chunk?).await?;
    }
    file.flush().await?;
    Ok(())
}

//! The project's Cargo workspace, kept buildable by `theory scaffold`: a Rust processor joins the
//! members of a workspace `theory scaffold` wrote; a Python processor (not a crate) is excluded
//! from a workspace whose members glob `processors/*` would otherwise take it for one (Theory's
//! own repository). Any other manifest is left alone. A manifest is replaced whole, through a
//! temporary file.

use std::path::Path;

/// The first line of a workspace manifest `theory scaffold` wrote; it adds members to it.
pub(super) const OWN_WORKSPACE: &str =
    "# Written by `theory scaffold`: each scaffolded Rust processor is added to members.";

/// Adds `processors/{package}` to the members of a workspace `theory scaffold` wrote.
pub(super) fn add_member(root: &Path, package: &str) -> std::io::Result<()> {
    edit(root, |manifest| {
        manifest.starts_with(OWN_WORKSPACE).then(|| with_item(manifest, "members", package))
    })
}

/// Adds `processors/{package}` to `exclude` of a workspace whose members glob `processors/*`.
pub(super) fn exclude_from_glob(root: &Path, package: &str) -> std::io::Result<()> {
    edit(root, |manifest| {
        let globbed = manifest.lines().any(|line| {
            line.trim_start().starts_with("members") && line.contains("\"processors/*\"")
        });
        globbed.then(|| {
            if manifest.lines().any(|line| line.trim_start().starts_with("exclude = [")) {
                with_item(manifest, "exclude", package)
            } else {
                let mut out = String::new();
                for line in manifest.lines() {
                    out.push_str(line);
                    out.push('\n');
                    if line.trim_start().starts_with("members") && line.contains("\"processors/*\"")
                    {
                        out.push_str("exclude = [\"processors/");
                        out.push_str(package);
                        out.push_str("\"]\n");
                    }
                }
                out
            }
        })
    })
}

/// Replaces the root `Cargo.toml` with `change`'s answer, when it has one that differs.
fn edit(root: &Path, change: impl FnOnce(&str) -> Option<String>) -> std::io::Result<()> {
    let path = root.join("Cargo.toml");
    let Ok(manifest) = std::fs::read_to_string(&path) else { return Ok(()) };
    let Some(updated) = change(&manifest) else { return Ok(()) };
    if updated != manifest {
        let temporary = root.join(".Cargo.toml.theory-scaffold");
        std::fs::write(&temporary, updated)?;
        std::fs::rename(&temporary, &path)?;
    }
    Ok(())
}

/// The manifest with `"processors/{package}"` in the one-line array `key = [...]`.
fn with_item(manifest: &str, key: &str, package: &str) -> String {
    let item = format!("\"processors/{package}\"");
    let prefix = format!("{key} = [");
    let mut out = String::new();
    for line in manifest.lines() {
        if let Some(list) =
            line.trim_start().strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(']'))
        {
            let mut items: Vec<&str> =
                list.split(',').map(str::trim).filter(|item| !item.is_empty()).collect();
            if !items.contains(&item.as_str()) {
                items.push(&item);
            }
            out.push_str(&prefix);
            out.push_str(&items.join(", "));
            out.push_str("]\n");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_python_processor_is_excluded_from_a_processors_glob() {
        let root = tempfile::tempdir().unwrap();
        let manifest =
            "[workspace]\nresolver = \"3\"\nmembers = [\"crates/*\", \"processors/*\"]\n";
        std::fs::write(root.path().join("Cargo.toml"), manifest).unwrap();
        exclude_from_glob(root.path(), "py-one").unwrap();
        exclude_from_glob(root.path(), "py-two").unwrap();
        exclude_from_glob(root.path(), "py-two").unwrap();
        let edited = std::fs::read_to_string(root.path().join("Cargo.toml")).unwrap();
        assert_eq!(
            edited,
            "[workspace]\nresolver = \"3\"\nmembers = [\"crates/*\", \"processors/*\"]\nexclude = [\"processors/py-one\", \"processors/py-two\"]\n"
        );
    }

    #[test]
    fn only_a_workspace_theory_wrote_gets_members() {
        let root = tempfile::tempdir().unwrap();
        let foreign = "[workspace]\nmembers = []\n";
        std::fs::write(root.path().join("Cargo.toml"), foreign).unwrap();
        add_member(root.path(), "a").unwrap();
        assert_eq!(std::fs::read_to_string(root.path().join("Cargo.toml")).unwrap(), foreign);
        let own = format!("{OWN_WORKSPACE}\n[workspace]\nmembers = []\n");
        std::fs::write(root.path().join("Cargo.toml"), &own).unwrap();
        add_member(root.path(), "a").unwrap();
        add_member(root.path(), "b").unwrap();
        let edited = std::fs::read_to_string(root.path().join("Cargo.toml")).unwrap();
        assert!(edited.ends_with("members = [\"processors/a\", \"processors/b\"]\n"), "{edited}");
    }
}

//! `theory ci init`: GitHub Actions workflows that do the seeds' CI/CD order of operations with
//! `theory` commands — `theory-ci.yml` (acceptance tests with mock runs in Docker and the CI
//! guardrail; then each platform built natively and pushed, and the registry's digests pinned
//! in a pull request) and `theory-deploy.yml` (Modal deploy to dev with a mock validation run
//! when the pins change; promotion to staging or main by hand).

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;
use theory_core::Failure;
use theory_core::registry::{ProcessorEntry, Registry};
use theory_protocol::ErrorCode;

use super::{Context, processor_entry};
use crate::args::CiInitArgs;
use crate::print::{Report, out, print_json};
use crate::usage::usage;

const CI_TEMPLATE: &str = include_str!("theory-ci.yml");
const DEPLOY_TEMPLATE: &str = include_str!("theory-deploy.yml");
/// The seeds' platforms (seed 001, seed 003 §6).
const DEFAULT_PLATFORMS: &str = "linux/amd64,linux/arm64";

/// Runs `theory ci init`.
pub(crate) fn init(args: &CiInitArgs, context: &Context) -> Result<ExitCode, Failure> {
    let registry = match &context.registry {
        Ok(registry) => registry,
        Err(errors) => return Ok(super::registry_failure(errors, args.json)),
    };
    let entries = chosen(registry, &args.refs)?;
    let platforms = platforms(args.platforms.as_deref().unwrap_or(DEFAULT_PLATFORMS))?;
    let folder =
        args.dir.clone().unwrap_or_else(|| context.project.root.join(".github").join("workflows"));
    let values = Values {
        refs: entries.iter().map(|entry| entry.spec.reference.to_string()).collect(),
        registry: args
            .registry
            .clone()
            .unwrap_or_else(|| "ghcr.io/${{ github.repository }}".into()),
        install: args.install.clone().unwrap_or_else(default_install),
        platforms,
        secrets: entries
            .iter()
            .flat_map(|entry| entry.spec.secrets.baseline())
            .map(ToString::to_string)
            .collect(),
    };
    let files = [
        ("theory-ci.yml", values.render(CI_TEMPLATE)),
        ("theory-deploy.yml", values.render(DEPLOY_TEMPLATE)),
    ];
    if !args.force
        && let Some((name, _)) = files.iter().find(|(name, _)| folder.join(name).exists())
    {
        return Ok(Failure::with_hint(
            ErrorCode::Usage,
            format!("{} exists already", folder.join(name).display()),
            "pass --force to replace the workflows theory wrote (your edits to them are lost)",
        )
        .report(args.json));
    }
    if let Err(error) = write_all(&folder, &files) {
        return Ok(error.report(args.json));
    }
    let written: Vec<PathBuf> = files.iter().map(|(name, _)| folder.join(name)).collect();
    if args.json {
        print_json(&json!({"ok": true, "files": written, "refs": values.refs}));
    } else {
        for file in &written {
            out(file.display().to_string());
        }
        eprintln!(
            "the workflows read these repository secrets: MODAL_TOKEN_ID, MODAL_TOKEN_SECRET, MODAL_PROXY_TOKEN_ID, MODAL_PROXY_TOKEN_SECRET, THEORY_DATABASE_URL{}",
            values.secrets.iter().fold(String::new(), |mut list, name| {
                let _ = write!(list, ", {name}");
                list
            })
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What the templates are filled with.
struct Values {
    refs: Vec<String>,
    registry: String,
    install: String,
    platforms: Vec<&'static str>,
    secrets: BTreeSet<String>,
}

impl Values {
    fn render(&self, template: &str) -> String {
        let mut matrix = String::new();
        for arch in &self.platforms {
            let runner = if *arch == "arm64" { "ubuntu-24.04-arm" } else { "ubuntu-24.04" };
            let _ = write!(
                matrix,
                "          - platform: linux/{arch}\n            arch: {arch}\n            runner: {runner}\n"
            );
        }
        let secrets = if self.secrets.is_empty() {
            String::new()
        } else {
            let mut lines = String::from("        env:\n");
            for name in &self.secrets {
                let _ = writeln!(lines, "          {name}: ${{{{ secrets.{name} }}}}");
            }
            lines
        };
        template
            .replace(
                "@@VERSION@@",
                concat!(env!("CARGO_PKG_VERSION"), ", commit ", env!("THEORY_COMMIT")),
            )
            .replace("@@REFS@@", &self.refs.join(" "))
            .replace("@@REGISTRY@@", &self.registry)
            .replace("@@INSTALL@@", &self.install)
            .replace("@@MATRIX@@\n", &matrix)
            .replace(
                "@@PLATFORMS@@",
                &self
                    .platforms
                    .iter()
                    .map(|arch| format!("linux/{arch}"))
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .replace("        env:\n@@SECRETS@@\n", &secrets)
    }
}

/// How the workflows install theory: this version, from its repository.
fn default_install() -> String {
    let commit = env!("THEORY_COMMIT");
    let at = if commit == "unknown" {
        format!("--tag v{}", env!("CARGO_PKG_VERSION"))
    } else {
        format!("--rev {commit}")
    };
    format!("cargo install --locked --git {} {at} theory-cli", env!("CARGO_PKG_REPOSITORY"))
}

/// The processors named, else every one of the project's own (not the built-in ones).
fn chosen<'a>(registry: &'a Registry, refs: &[String]) -> Result<Vec<&'a ProcessorEntry>, Failure> {
    if !refs.is_empty() {
        return refs.iter().map(|text| processor_entry(registry, text)).collect();
    }
    let own: Vec<&ProcessorEntry> = registry.processors().filter(|entry| !entry.builtin).collect();
    if own.is_empty() {
        return Err(usage(
            "the project has no processors of its own in registry/processors/",
            "create one with `theory scaffold --ref ns/name@1`, or name the processors with --ref",
        ));
    }
    Ok(own)
}

/// Parses `--platforms` into architectures.
fn platforms(list: &str) -> Result<Vec<&'static str>, Failure> {
    let mut chosen = Vec::new();
    for item in list.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let arch = match item.trim_start_matches("linux/") {
            "amd64" => "amd64",
            "arm64" => "arm64",
            _ => {
                return Err(usage(
                    format!("--platforms: unknown platform {item:?}"),
                    "use linux/amd64 and/or linux/arm64, comma-separated",
                ));
            }
        };
        if !chosen.contains(&arch) {
            chosen.push(arch);
        }
    }
    if chosen.is_empty() {
        return Err(usage("--platforms names no platform", "use linux/amd64,linux/arm64"));
    }
    Ok(chosen)
}

/// Writes every file or none: each under a temporary name first, then renamed into place.
fn write_all(folder: &Path, files: &[(&str, String)]) -> Result<(), Failure> {
    let failed = |error: std::io::Error| {
        Failure::with_hint(
            ErrorCode::Usage,
            format!("cannot write the workflows in {}: {error}", folder.display()),
            "check that the folder is writable, or pass another with --dir",
        )
    };
    std::fs::create_dir_all(folder).map_err(failed)?;
    let temporary: Vec<PathBuf> =
        files.iter().map(|(name, _)| folder.join(format!(".{name}.tmp"))).collect();
    let written = files
        .iter()
        .zip(&temporary)
        .try_for_each(|((_, text), path)| std::fs::write(path, text))
        .and_then(|()| {
            files
                .iter()
                .zip(&temporary)
                .try_for_each(|((name, _), path)| std::fs::rename(path, folder.join(name)))
        });
    if let Err(error) = written {
        for path in &temporary {
            let _ = std::fs::remove_file(path);
        }
        return Err(failed(error));
    }
    Ok(())
}

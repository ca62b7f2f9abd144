//! The Rust processor `theory scaffold --lang rust` writes: a crate on the Rust SDK, a `FROM
//! scratch` Dockerfile, and its spec.

use std::path::{Path, PathBuf};

use theory_core::ProcessorRef;

include!(concat!(env!("OUT_DIR"), "/embedded_rust_sdk.rs"));

/// The first line of a workspace manifest `theory scaffold` wrote; it adds members to it.
const OWN_WORKSPACE: &str =
    "# Written by `theory scaffold`: each scaffolded Rust processor is added to members.";

/// Where the SDK goes in a project that does not have it.
const VENDORED: &str = "theory-sdk";

/// Where the SDK comes from.
enum Sdk {
    /// The project's workspace declares `theory-processor`.
    Workspace,
    /// `THEORY_SDK_PATH` points at its crate.
    Path(String),
    /// The sources this `theory` embeds, under `theory-sdk/`.
    Vendored,
}

fn sdk_source(root: &Path) -> Sdk {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    if manifest.contains("[workspace.dependencies]") && manifest.contains("theory-processor") {
        return Sdk::Workspace;
    }
    if let Ok(path) = std::env::var(theory_core::env::names::SDK_PATH) {
        return Sdk::Path(path);
    }
    Sdk::Vendored
}

/// The files, in the order they are written: the crate, its Dockerfile and spec; in a project
/// without the SDK, the embedded SDK and (once) a workspace and its lock.
pub(super) fn files(
    reference: &ProcessorRef,
    package: &str,
    folder: &Path,
    spec: PathBuf,
    root: &Path,
) -> Vec<(PathBuf, String)> {
    let sdk = sdk_source(root);
    let dependency = match &sdk {
        Sdk::Workspace => "theory-processor.workspace = true".to_owned(),
        Sdk::Path(path) => format!("theory-processor = {{ path = {path:?} }}"),
        Sdk::Vendored => {
            format!("theory-processor = {{ path = \"../../{VENDORED}/theory-processor\" }}")
        }
    };
    let mut files = vec![
        (folder.join("Cargo.toml"), cargo_toml(package, &dependency)),
        (folder.join("src/main.rs"), main_rs(reference)),
        (folder.join("Dockerfile"), dockerfile(reference, package)),
        (spec, spec_yaml(reference, package)),
    ];
    if matches!(sdk, Sdk::Vendored) {
        let vendored = root.join(VENDORED);
        if !vendored.join("theory-processor/Cargo.toml").exists() {
            files.extend(
                RUST_SDK.iter().map(|(path, text)| (vendored.join(path), (*text).to_owned())),
            );
        }
        if !root.join("Cargo.toml").exists() {
            files.push((root.join("Cargo.toml"), workspace_manifest()));
        }
        if !root.join("Cargo.lock").exists() {
            files.push((root.join("Cargo.lock"), WORKSPACE_LOCK.to_owned()));
        }
    }
    files
}

/// A workspace for the project's Rust processors, with the profile Theory builds with.
fn workspace_manifest() -> String {
    format!(
        "{OWN_WORKSPACE}\n[workspace]\nresolver = \"3\"\nmembers = []\n\n[profile.dev]\ndebug = \"line-tables-only\"\n\n[profile.dev.package.\"*\"]\nopt-level = 2\n"
    )
}

/// Adds `processors/{package}` to the members of the project's workspace when `theory scaffold`
/// wrote it (replaced whole, through a temporary file); any other manifest is left alone.
pub(super) fn add_member(root: &Path, package: &str) -> std::io::Result<()> {
    let path = root.join("Cargo.toml");
    let Ok(manifest) = std::fs::read_to_string(&path) else { return Ok(()) };
    let Some(updated) = with_member(&manifest, package) else { return Ok(()) };
    if updated != manifest {
        let temporary = root.join(".Cargo.toml.theory-scaffold");
        std::fs::write(&temporary, updated)?;
        std::fs::rename(&temporary, &path)?;
    }
    Ok(())
}

/// The manifest with `processors/{package}` among its members, when `theory scaffold` wrote it.
fn with_member(manifest: &str, package: &str) -> Option<String> {
    if !manifest.starts_with(OWN_WORKSPACE) {
        return None;
    }
    let member = format!("\"processors/{package}\"");
    let mut out = String::new();
    for line in manifest.lines() {
        if let Some(list) = line.strip_prefix("members = [").and_then(|rest| rest.strip_suffix(']'))
        {
            let mut members: Vec<&str> = list.split(", ").filter(|item| !item.is_empty()).collect();
            if !members.contains(&member.as_str()) {
                members.push(&member);
            }
            out.push_str("members = [");
            out.push_str(&members.join(", "));
            out.push_str("]\n");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    Some(out)
}

/// What to do next, one line each.
pub(super) fn next_steps(reference: &ProcessorRef, package: &str) -> Vec<String> {
    vec![
        format!(
            "next: cargo build -p {package} && theory run --ref {reference} --adapter-opts-json '{{\"runtime\":\"process\"}}' --inputs-json '{{\"text\":\"hi\"}}' --json"
        ),
        format!("then: theory processor build --ref {reference}"),
    ]
}

fn cargo_toml(package: &str, sdk: &str) -> String {
    format!(
        r#"[package]
name = "{package}"
version = "0.1.0"
edition = "2024"
publish = false

[[bin]]
name = "{package}"
path = "src/main.rs"

[dependencies]
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"
{sdk}
"#
    )
}

fn main_rs(reference: &ProcessorRef) -> String {
    format!(
        r#"//! {reference}: generated by `theory scaffold`. Put the processor's work in `run`.
//!
//! Mock mode must stay deterministic, offline and free of secrets; real mode does the work.

use serde::Deserialize;
use theory_processor::protocol::Mode;
use theory_processor::{{Context, Identity, Inputs, OutputItem, ProcessorError, ProcessorResult}};

const REF: &str = "{reference}";

/// The inputs' `params` (the short form puts them at the top level).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {{
    #[serde(default)]
    text: Option<String>,
}}

fn identity() -> Identity {{
    Identity::new(REF)
}}

async fn run(inputs: Inputs, context: Context) -> Result<ProcessorResult, ProcessorError> {{
    let params: Params = inputs.params_as()?;
    let text = params.text.unwrap_or_else(|| "hello".to_owned());
    let answer = match context.mode() {{
        Mode::Mock => format!("mock: {{text}}"),
        Mode::Real => text.to_uppercase(),
    }};
    context.token(answer.clone());
    // Yield once, as real work would: other runs and /healthz are never blocked.
    std::future::ready(()).await;
    let meta = serde_json::json!({{"chars": answer.chars().count(), "mode": context.mode()}});
    Ok(ProcessorResult {{
        outputs: vec![OutputItem::text("text/answer.txt", answer), OutputItem::json("meta.json", &meta)?],
        processor_info: identity().processor_info,
        ..ProcessorResult::default()
    }})
}}

fn main() -> std::process::ExitCode {{
    theory_processor::main(identity(), run)
}}
"#
    )
}

fn dockerfile(reference: &ProcessorRef, package: &str) -> String {
    format!(
        r#"# {reference} — `theory processor build --ref {reference}` compiles {package} statically and
# builds this FROM scratch image reproducibly, without pulling anything.
FROM scratch
COPY {package} /{package}
ENV PORT=8000
EXPOSE 8000
ENTRYPOINT ["/{package}"]
"#
    )
}

fn spec_yaml(reference: &ProcessorRef, package: &str) -> String {
    format!(
        r#"# {reference} — generated by `theory scaffold`; fit inputs, outputs, runtime and secrets to it.
ref: {reference}
name: {name}
description: A new processor
image:
  build: {{context: processors/{package}, dockerfile: Dockerfile, binary: {package}}}
runtime: {{cpu: 1, memory_gb: 1, timeout_s: 120, gpu: null}}
secrets: {{required: [], optional: []}}
inputs:
  $schema: "https://json-schema.org/draft/2020-12/schema"
  type: object
  properties:
    schema: {{const: v1}}
    mode: {{type: string}}
    text: {{type: string}}
    params:
      type: object
      properties: {{text: {{type: string}}}}
      additionalProperties: false
outputs:
  - {{path: text/answer.txt, mime: text/plain}}
  - {{path: meta.json, mime: application/json}}
"#,
        name = reference.name()
    )
}

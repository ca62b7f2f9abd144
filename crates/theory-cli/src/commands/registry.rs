//! `theory registry list|show|validate`.

use std::process::ExitCode;
use theory_core::Failure;

use serde_json::{Value, json};
use theory_core::ProcessorRef;
use theory_core::registry::{ProcessorEntry, Registry};

use super::{Context, registry_failure};
use crate::args::RegistryCommand;
use crate::print::{print_error, print_json};
use crate::usage::usage;

/// Runs a registry command.
pub(crate) fn run(command: RegistryCommand, context: Context) -> Result<ExitCode, Failure> {
    match command {
        RegistryCommand::Validate(flag) => Ok(validate(&context, flag.json)),
        RegistryCommand::List(flag) => {
            Ok(with_registry(context, flag.json, |registry| list(registry, flag.json)))
        }
        RegistryCommand::Show(args) if !shown(&args).contains('/') => {
            let id = shown(&args);
            Ok(with_registry(context, args.json, |registry| show_prompt(registry, &id, args.json)))
        }
        RegistryCommand::Show(args) => {
            let reference: ProcessorRef = shown(&args).parse().map_err(|error| {
                usage(
                    format!("{error}"),
                    "a ref looks like llm/litellm@1; list them with `theory registry list`",
                )
            })?;
            Ok(with_registry(context, args.json, |registry| show(registry, &reference, args.json)))
        }
    }
}

/// What `registry show` was asked for: the positional REF or `--ref REF` (clap requires one).
fn shown(args: &crate::args::ShowArgs) -> String {
    args.reference.clone().or_else(|| args.ref_flag.clone()).unwrap_or_default()
}

fn with_registry(
    context: Context,
    json: bool,
    command: impl FnOnce(&Registry) -> ExitCode,
) -> ExitCode {
    match context.registry {
        Ok(registry) => command(&registry),
        Err(errors) => registry_failure(&errors, json),
    }
}

fn list(registry: &Registry, json: bool) -> ExitCode {
    if json {
        print_json(&registry.processors().map(ProcessorEntry::summary).collect::<Vec<_>>());
        return ExitCode::SUCCESS;
    }
    let rows: Vec<[String; 4]> = registry
        .processors()
        .map(|entry| {
            let spec = &entry.spec;
            let pinned = if spec.image.platforms.is_empty() && spec.image.oci.is_none() {
                "local build"
            } else {
                "pinned"
            };
            let secrets: Vec<String> =
                spec.secrets.baseline().into_iter().map(ToString::to_string).collect();
            [
                spec.reference.to_string(),
                pinned.to_owned(),
                if secrets.is_empty() { "-".into() } else { secrets.join(",") },
                spec.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..3)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].len())
                .max()
                .unwrap_or(0)
                .max(["REF", "IMAGE", "SECRETS"][column].len())
        })
        .collect();
    crate::print::out(format!(
        "{:<w0$}  {:<w1$}  {:<w2$}  DESCRIPTION",
        "REF",
        "IMAGE",
        "SECRETS",
        w0 = widths[0],
        w1 = widths[1],
        w2 = widths[2]
    ));
    for row in rows {
        crate::print::out(format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        ));
    }
    list_prompts(registry);
    ExitCode::SUCCESS
}

/// The prompts' table, after the processors' (when there are any).
fn list_prompts(registry: &Registry) {
    let rows: Vec<[String; 3]> = registry
        .prompts()
        .map(|prompt| {
            let vars: Vec<&str> = prompt.document.vars.keys().map(String::as_str).collect();
            [
                prompt.document.id.clone(),
                vars.join(","),
                prompt.document.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let width = |column: usize, title: &str| {
        rows.iter().map(|row| row[column].len()).max().unwrap_or(0).max(title.len())
    };
    let (w0, w1) = (width(0, "PROMPT"), width(1, "VARIABLES"));
    crate::print::out(format!("\n{:<w0$}  {:<w1$}  DESCRIPTION", "PROMPT", "VARIABLES"));
    for [id, vars, description] in rows {
        crate::print::out(format!("{id:<w0$}  {vars:<w1$}  {description}"));
    }
}

/// `registry show name@N`: a prompt's template and variables.
fn show_prompt(registry: &Registry, id: &str, json: bool) -> ExitCode {
    if let Some(problem) = registry.broken(id) {
        print_error(
            &format!("the prompt {id} is defined in a file with a problem: {problem}"),
            Some("fix that file; `theory registry validate` lists every problem"),
        );
        return ExitCode::FAILURE;
    }
    let Some(prompt) = registry.prompt(id) else {
        let known: Vec<&str> =
            registry.prompts().map(|prompt| prompt.document.id.as_str()).collect();
        let hint = if known.is_empty() {
            "a processor ref looks like llm/litellm@1; prompts live in registry/prompts/".to_owned()
        } else {
            format!(
                "known prompts: {} (a processor ref looks like llm/litellm@1)",
                known.join(", ")
            )
        };
        print_error(&format!("unknown prompt {id}"), Some(&hint));
        return ExitCode::FAILURE;
    };
    let document = &prompt.document;
    let vars: serde_json::Map<String, Value> = document
        .vars
        .iter()
        .map(|(name, var)| {
            let var = var.clone().unwrap_or_default();
            (name.clone(), json!({"default": var.default, "description": var.description}))
        })
        .collect();
    if json {
        print_json(&json!({
            "id": document.id,
            "description": document.description,
            "template": document.template,
            "vars": vars,
            "hash": prompt.hash,
            "origin": prompt.origin,
        }));
        return ExitCode::SUCCESS;
    }
    crate::print::out(format!(
        "{} — {}",
        document.id,
        document.description.as_deref().unwrap_or("(no description)")
    ));
    crate::print::out(format!("origin: {}", prompt.origin));
    crate::print::out(format!("hash: {}", prompt.hash));
    crate::print::out("variables:");
    for (name, var) in &document.vars {
        let var = var.clone().unwrap_or_default();
        let default = match &var.default {
            Some(default) => format!("default {default:?}"),
            None => "required".to_owned(),
        };
        let description = var.description.map(|text| format!(" — {text}")).unwrap_or_default();
        crate::print::out(format!("  {name} ({default}){description}"));
    }
    crate::print::out(format!("template:\n{}", document.template));
    ExitCode::SUCCESS
}

fn show(registry: &Registry, reference: &ProcessorRef, json: bool) -> ExitCode {
    if let Some(problem) = registry.broken(reference.as_str()) {
        let failure = super::broken_processor(reference, problem);
        print_error(&failure.message, failure.hint.as_deref());
        return ExitCode::FAILURE;
    }
    let Some(entry) = registry.processor(reference) else {
        let near: Vec<String> =
            registry.near_matches(reference.as_str()).iter().map(ToString::to_string).collect();
        let hint = if near.is_empty() {
            "list them with `theory registry list`".to_owned()
        } else {
            format!("did you mean {}?", near.join(" or "))
        };
        print_error(&format!("unknown processor ref {reference}"), Some(&hint));
        return ExitCode::FAILURE;
    };
    let spec = &entry.spec;
    let document = entry.document();
    if json {
        print_json(&document);
    } else {
        crate::print::out(format!(
            "{} — {}",
            spec.reference,
            spec.name.as_deref().unwrap_or("(no name)")
        ));
        if let Some(description) = &spec.description {
            crate::print::out(description);
        }
        crate::print::out(format!("origin: {}", entry.origin));
        crate::print::out(format!(
            "runtime: cpu {} · memory {} GiB · timeout {} s · gpu {}",
            spec.runtime.cpu,
            spec.runtime.memory_gb,
            spec.runtime.timeout_s,
            spec.runtime.gpu.as_deref().unwrap_or("none")
        ));
        crate::print::out(format!(
            "outputs: {}",
            spec.outputs
                .files
                .iter()
                .map(|output| format!("{} ({})", output.path, output.mime))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        crate::print::out(format!(
            "inputs schema:\n{}",
            serde_json::to_string_pretty(&spec.inputs).unwrap_or_default()
        ));
    }
    ExitCode::SUCCESS
}

fn validate(context: &Context, json: bool) -> ExitCode {
    let loaded = match &context.registry {
        Ok(registry) if !registry.problems().is_empty() => Err(registry.problems()),
        Ok(registry) => Ok(registry),
        Err(errors) => Err(errors.as_slice()),
    };
    match loaded {
        Ok(registry) => {
            let counts = (
                registry.processors().count(),
                registry.schemas().count(),
                registry.policies().count(),
                registry.prompts().count(),
            );
            if json {
                print_json(
                    &json!({"valid": true, "errors": [], "processors": counts.0, "schemas": counts.1, "policies": counts.2, "prompts": counts.3}),
                );
            } else {
                crate::print::out(format!(
                    "registry is valid: {} processors, {} schemas, {} policies, {} prompts",
                    counts.0, counts.1, counts.2, counts.3
                ));
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            if json {
                let listed: Vec<Value> = errors.iter().map(|error| json!({"origin": error.origin, "key": error.key, "message": error.message})).collect();
                print_json(&json!({"valid": false, "errors": listed}));
            }
            for error in errors {
                eprintln!("error: {error}");
            }
            print_error(
                &format!("the registry has {} problem(s)", errors.len()),
                Some("fix the files and keys named above"),
            );
            ExitCode::FAILURE
        }
    }
}

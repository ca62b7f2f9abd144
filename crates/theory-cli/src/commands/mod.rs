//! One module per command.

pub(crate) mod artifacts;
pub(crate) mod ci;
pub(crate) mod executions;
pub(crate) mod keys;
pub(crate) mod ledger;
pub(crate) mod local;
pub(crate) mod modal;
pub(crate) mod plan;
pub(crate) mod processor;
pub(crate) mod registry;
pub(crate) mod remote;
pub(crate) mod run;
pub(crate) mod save;
pub(crate) mod scaffold;
pub(crate) mod serve;
pub(crate) mod token;
pub(crate) mod verify;

use std::process::ExitCode;
use theory_core::Failure;

use theory_core::ProcessorRef;
use theory_core::registry::{ProcessorEntry, Registry, RegistryError};
use theory_core::{EnvSnapshot, Redactor};
use theory_protocol::{Envelope, ErrorCode};

use crate::print::{print_error, print_json};
use crate::usage::usage;
use theory_engine::Project;

/// What every command gets: the project, the environment, the registry as loaded, the redactor.
pub(crate) struct Context {
    pub(crate) project: Project,
    pub(crate) env: EnvSnapshot,
    pub(crate) registry: Result<Registry, Vec<RegistryError>>,
    pub(crate) redactor: Redactor,
}

/// Reports an invalid registry: every problem on stderr, and with `--json` an `ERR_REGISTRY`
/// envelope on stdout.
pub(crate) fn registry_failure(errors: &[RegistryError], json: bool) -> ExitCode {
    for error in errors {
        eprintln!("error: {error}");
    }
    let summary = format!(
        "the registry has {} problem(s); the first: {}",
        errors.len(),
        errors.first().map(ToString::to_string).unwrap_or_default()
    );
    if json {
        let mut envelope =
            Envelope::error(theory_core::new_execution_id(), ErrorCode::Registry, summary);
        if let Envelope::Error(error) = &mut envelope {
            error.meta.env_fingerprint = Some(theory_core::Fingerprint::unknown("local"));
        }
        print_json(&envelope);
    }
    print_error(
        "the registry is invalid",
        Some("fix the files named above; `theory registry validate` checks them"),
    );
    ExitCode::FAILURE
}

/// Finds a processor by the text of `--ref`; a bad or unknown ref is a usage error naming near
/// matches.
pub(crate) fn processor_entry<'a>(
    registry: &'a Registry,
    text: &str,
) -> Result<&'a ProcessorEntry, Failure> {
    let reference: ProcessorRef = text.parse().map_err(|error| {
        usage(
            format!("--ref: {error}"),
            "a ref looks like llm/litellm@1; list them with `theory registry list`",
        )
    })?;
    if let Some(problem) = registry.broken(reference.as_str()) {
        return Err(broken_processor(&reference, problem));
    }
    registry.processor(&reference).ok_or_else(|| {
        let near: Vec<String> =
            registry.near_matches(text).iter().map(ToString::to_string).collect();
        let hint = if near.is_empty() {
            "list the known processors with `theory registry list`".to_owned()
        } else {
            format!("did you mean {}?", near.join(" or "))
        };
        usage(format!("unknown processor ref {reference}"), hint)
    })
}

/// The error for a processor whose spec file has a problem.
pub(crate) fn broken_processor(reference: &ProcessorRef, problem: &RegistryError) -> Failure {
    Failure::with_hint(
        ErrorCode::Registry,
        format!("{reference} is defined in a file with a problem: {problem}"),
        "fix that file; `theory registry validate` lists every problem",
    )
}

/// The secret names whose values the redactor hides (beside every name that looks secret):
/// `theory run` needs those of the processor it runs, and parses no other spec for them;
/// commands that print nothing of a processor need none; every other command takes every
/// processor's.
fn declared_secrets(command: &crate::args::Command, registry: &Registry) -> Vec<String> {
    use crate::args::Command;
    let secrets_of = |entry: &ProcessorEntry| -> Vec<String> {
        entry.spec.secrets.all().map(ToString::to_string).collect()
    };
    match command {
        Command::Run(args) => args
            .reference
            .parse::<ProcessorRef>()
            .ok()
            .and_then(|reference| registry.processor_spec(&reference))
            .map(secrets_of)
            .unwrap_or_default(),
        Command::Plan(_)
        | Command::Executions(_)
        | Command::Ledger(_)
        | Command::Verify(_)
        | Command::Artifacts(_)
        | Command::Keys(_) => Vec::new(),
        _ => registry.processors().flat_map(secrets_of).collect(),
    }
}

/// Builds the context (project, environment, registry, redactor, logging) and runs the command.
pub(crate) async fn dispatch(cli: crate::args::Cli) -> Result<ExitCode, theory_core::Failure> {
    let project = Project::locate(cli.project.as_deref())?;
    // theory.toml's settings, where the environment sets none.
    let env = theory_engine::with_project_defaults(project.root(), EnvSnapshot::capture())?;
    // A broken file leaves out only what it defines, unless its id cannot be read.
    let registry = project.registry_partial().and_then(|registry| {
        if registry.has_unidentified_problems() {
            Err(registry.problems().to_vec())
        } else {
            Ok(registry)
        }
    });
    let validating = matches!(
        cli.command,
        crate::args::Command::Registry(crate::args::RegistryCommand::Validate(_))
    );
    let declared: Vec<String> = registry
        .as_ref()
        .map(|registry| declared_secrets(&cli.command, registry))
        .unwrap_or_default();
    let redactor = Redactor::from_env(&env, declared.iter().map(String::as_str));
    let json_logs = env
        .get(theory_core::env::names::LOG_FORMAT)
        .is_some_and(|format| format.eq_ignore_ascii_case("json"));
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => crate::logging::Verbosity::Quiet,
        (false, 0) => crate::logging::Verbosity::Normal,
        (false, count) => crate::logging::Verbosity::Verbose(count),
    };
    crate::print::set_quiet(cli.quiet);
    crate::logging::init(&redactor, json_logs, verbosity);
    if let Ok(registry) = &registry
        && !validating
    {
        // Only what is known without parsing more than the command uses; `registry validate`
        // checks every file.
        for problem in registry.known_problems() {
            crate::print::print_warning(&format!(
                "{problem} (left out: `theory registry validate` lists every problem)"
            ));
        }
    }
    let context = Context { project, env, registry, redactor };
    match cli.command {
        crate::args::Command::Run(args) => run::run(*args, context).await,
        crate::args::Command::Registry(command) => registry::run(command, context),
        crate::args::Command::Processor(command) => processor::run(command, context).await,
        crate::args::Command::Local(command) => local::run(command, context).await,
        crate::args::Command::Scaffold(args) => scaffold::run(&args, &context),
        crate::args::Command::Plan(command) => plan::run(command, context).await,
        crate::args::Command::Executions(command) => executions::run(command, context).await,
        crate::args::Command::Ledger(command) => ledger::run(command, context).await,
        crate::args::Command::Verify(args) => verify::run(args, context).await,
        crate::args::Command::Artifacts(command) => artifacts::run(command, context).await,
        crate::args::Command::Ci(crate::args::CiCommand::Init(args)) => ci::init(&args, &context),
        crate::args::Command::Serve(args) => serve::run(args, context).await,
        crate::args::Command::Token(command) => token::run(command, context).await,
        crate::args::Command::Keys(command) => Ok(keys::run(&command, &context)),
        crate::args::Command::Modal(command) => modal::run(command, context).await,
        // Answered in `main` before any context is built.
        crate::args::Command::Completions(_) | crate::args::Command::Man => {
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

//! One module per command.

pub(crate) mod registry;
pub(crate) mod run;

use std::process::ExitCode;

use theory_core::registry::{Registry, RegistryError};
use theory_core::{EnvSnapshot, Redactor};
use theory_protocol::{Envelope, ErrorCode};

use crate::print::{print_error, print_json};
use crate::project::Project;

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

/// Builds the context (project, environment, registry, redactor, logging) and runs the command.
pub(crate) async fn dispatch(cli: crate::args::Cli) -> Result<ExitCode, crate::usage::UsageError> {
    let env = EnvSnapshot::capture();
    let project = Project::locate(cli.project.as_deref())?;
    let registry = project.registry();
    let declared: Vec<String> = registry
        .as_ref()
        .map(|registry| {
            registry
                .processors()
                .flat_map(|entry| entry.spec.secrets.all().map(ToString::to_string))
                .collect()
        })
        .unwrap_or_default();
    let redactor = Redactor::from_env(&env, declared.iter().map(String::as_str));
    let json_logs = env
        .get(theory_core::env::names::LOG_FORMAT)
        .is_some_and(|format| format.eq_ignore_ascii_case("json"));
    crate::logging::init(&redactor, json_logs);
    let context = Context { project, env, registry, redactor };
    match cli.command {
        crate::args::Command::Run(args) => run::run(*args, context).await,
        crate::args::Command::Registry(command) => registry::run(command, context),
    }
}

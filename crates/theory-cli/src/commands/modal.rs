//! `theory modal start|sync-secrets|run|stop|status|logs|verify-digest|deploy`, driving the
//! official `modal` CLI. Every command checks that `modal` is installed and that Modal's
//! credentials are here before it does anything; `run` needs neither (it speaks to the deployed
//! endpoint itself) but needs the deployment and its proxy auth token.

use std::process::ExitCode;

use theory_core::registry::{Platform, ProcessorSpec};
use theory_core::{Failure, ImagePin, ProcessorRef};
use theory_modal::{
    Deployment, DeploymentBook, ModalAdapter, ModalCli, ModalEnv, ModuleParams, app_name,
    check_credentials, write_module,
};
use theory_protocol::ErrorCode;

use super::{Context, processor_entry};
use crate::modal_args::{
    ModalCommand, ModalDeployArgs, ModalLogsArgs, ModalStartArgs, ModalSyncSecretsArgs,
    ModalTargetArgs, ModalVerifyArgs,
};
use crate::print::{fail, out, print_json};
use crate::usage::usage;
use theory_core::env::names;

/// Runs a `theory modal` command.
pub(crate) async fn run(command: ModalCommand, context: Context) -> Result<ExitCode, Failure> {
    match command {
        ModalCommand::Start(args) => start(args, &context).await,
        ModalCommand::SyncSecrets(args) => sync_secrets(args, &context).await,
        ModalCommand::Run(mut args) => {
            if args
                .adapter
                .as_deref()
                .is_some_and(|adapter| adapter != "local" && adapter != "modal")
            {
                return Err(usage(
                    "theory modal run always runs on the Modal deployment",
                    "drop --adapter; use `theory run --adapter …` to choose an adapter",
                ));
            }
            args.adapter = Some("modal".to_owned());
            super::run::run(*args, context).await
        }
        ModalCommand::Stop(args) => stop(args, &context).await,
        ModalCommand::Status(args) => status(args, &context).await,
        ModalCommand::Logs(args) => logs(args, &context).await,
        ModalCommand::VerifyDigest(args) => verify_digest(args, &context).await,
        ModalCommand::Deploy(args) => deploy(args, &context).await,
    }
}

fn failure(json: bool, error: &Failure) -> ExitCode {
    fail(json, error.code.clone(), &error.message, error.hint.as_deref())
}

fn parse_env(text: &str) -> Result<ModalEnv, Failure> {
    text.parse()
        .map_err(|error: String| usage(format!("--env: {error}"), "use --env dev, staging or main"))
}

fn parse_pin(text: &str, flag: &str) -> Result<ImagePin, Failure> {
    text.parse().map_err(|error: theory_core::DigestError| {
        usage(format!("{flag}: {error}"), "Modal runs digest-pinned images: repo@sha256:<64 hex>")
    })
}

/// The `modal` CLI, once it is known to be installed and logged in.
fn modal_cli(context: &Context) -> Result<ModalCli, Failure> {
    let cli = ModalCli::find(&context.env)?;
    check_credentials(&context.env)?;
    Ok(cli)
}

fn spec_of<'a>(
    context: &'a Context,
    reference: &str,
) -> Result<Result<&'a ProcessorSpec, ExitCode>, Failure> {
    match &context.registry {
        Ok(registry) => Ok(Ok(&processor_entry(registry, reference)?.spec)),
        Err(errors) => Ok(Err(super::registry_failure(errors, false))),
    }
}

/// The app name of a target: the recorded deployment's, else the naming rules'.
async fn target_app(
    context: &Context,
    env: ModalEnv,
    reference: &ProcessorRef,
) -> Result<(String, Option<Deployment>), Failure> {
    let book = DeploymentBook::new(&context.project.state(), &context.env);
    let recorded = book.get(env, reference.as_str()).await.map_err(|error| {
        Failure::with_hint(
            ErrorCode::Modal,
            format!("cannot read the Modal deployments in {}: {error}", book.place()),
            "check the ledger with `theory ledger verify`",
        )
    })?;
    if let Some(deployment) = recorded {
        return Ok((deployment.app_name.clone(), Some(deployment)));
    }
    let name = app_name(
        env,
        reference,
        context.env.get(names::GIT_BRANCH),
        context.env.get(names::GIT_USER),
    )?;
    Ok((name, None))
}

/// Deploys `params` to `env` and records it under `reference`.
async fn deploy_and_record(
    context: &Context,
    cli: &ModalCli,
    env: ModalEnv,
    params: &ModuleParams,
) -> Result<Deployment, Failure> {
    let folder = write_module(&context.project.state().join("modal")).map_err(|error| {
        Failure::with_hint(
            ErrorCode::Modal,
            format!("cannot write the app module: {error}"),
            "check that .theory/ is writable",
        )
    })?;
    eprintln!(
        "deploying {} as {} to Modal environment {env} …",
        params.processor_ref, params.app_name
    );
    let url = cli.deploy(env, &folder, &params.env()).await?;
    let deployment = Deployment {
        reference: params.processor_ref.clone(),
        env: env.to_string(),
        app_name: params.app_name.clone(),
        url,
        image_ref: params.image_ref.to_string(),
        proxy_auth: params.proxy_auth,
        deployed_at: theory_core::time::now_rfc3339(),
    };
    let book = DeploymentBook::new(&context.project.state(), &context.env);
    book.record(&deployment).await.map_err(|error| {
        Failure::with_hint(
            ErrorCode::Modal,
            format!("deployed, but cannot record it in {}: {error}", book.place()),
            "check the ledger (DATABASE_URL, or that .theory/ is writable), then `theory modal start` again",
        )
    })?;
    Ok(deployment)
}

fn report_deployment(json: bool, deployment: &Deployment, secrets: &[String]) -> ExitCode {
    eprintln!("deployed: {} → {}", deployment.app_name, deployment.url);
    if !secrets.is_empty() {
        eprintln!(
            "its secrets ({}) come from Modal: `theory modal sync-secrets --ref {} --env {}` puts them there",
            secrets.join(", "),
            deployment.reference,
            deployment.env
        );
    }
    if json {
        print_json(&serde_json::json!({"ok": true, "deployment": deployment}));
    } else {
        out(&deployment.url);
    }
    ExitCode::SUCCESS
}

/// The image `--oci` names, else the spec's amd64 pin (what Modal runs).
fn oci_or_pin(
    flag: Option<&str>,
    spec: &ProcessorSpec,
    purpose: &str,
) -> Result<ImagePin, Failure> {
    match flag {
        Some(text) => parse_pin(text, "--oci"),
        None => spec.image.pin_for(Platform::Amd64).cloned().ok_or_else(|| {
            usage(
                format!("{} has no amd64 pin {purpose}", spec.reference),
                format!(
                    "pin one (`theory processor push --ref {} --pin`), or pass --oci repo@sha256:…",
                    spec.reference
                ),
            )
        }),
    }
}

async fn start(args: ModalStartArgs, context: &Context) -> Result<ExitCode, Failure> {
    let json = args.target.json;
    let env = parse_env(&args.target.env)?;
    let spec = match spec_of(context, &args.target.reference)? {
        Ok(spec) => spec,
        Err(code) => return Ok(code),
    };
    let oci = oci_or_pin(args.oci.as_deref(), spec, "to deploy")?;
    let prepared = (|| {
        let name = app_name(
            env,
            &spec.reference,
            context.env.get(names::GIT_BRANCH),
            context.env.get(names::GIT_USER),
        )?;
        let mut params = ModuleParams::from_spec(spec, oci, name)?;
        params.registry_secret.clone_from(&args.registry_secret);
        params.proxy_auth = !args.public;
        Ok::<_, Failure>((modal_cli(context)?, params))
    })();
    let (cli, params) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => return Ok(failure(json, &error)),
    };
    match deploy_and_record(context, &cli, env, &params).await {
        Ok(deployment) => Ok(report_deployment(json, &deployment, &params.tool_secrets)),
        Err(error) => Ok(failure(json, &error)),
    }
}

async fn deploy(args: ModalDeployArgs, context: &Context) -> Result<ExitCode, Failure> {
    let env = parse_env(&args.env)?;
    let spec = context
        .env
        .get(names::PROCESSOR_REF)
        .and_then(|text| text.parse::<ProcessorRef>().ok())
        .and_then(|reference| {
            context
                .registry
                .as_ref()
                .ok()
                .and_then(|registry| registry.processor(&reference))
                .map(|entry| &entry.spec)
        });
    let prepared = ModuleParams::from_env(&context.env, spec)
        .and_then(|params| Ok((modal_cli(context)?, params)));
    let (cli, params) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => return Ok(failure(args.json, &error)),
    };
    match deploy_and_record(context, &cli, env, &params).await {
        Ok(deployment) => Ok(report_deployment(args.json, &deployment, &params.tool_secrets)),
        Err(error) => Ok(failure(args.json, &error)),
    }
}

async fn sync_secrets(args: ModalSyncSecretsArgs, context: &Context) -> Result<ExitCode, Failure> {
    let json = args.target.json;
    let env = parse_env(&args.target.env)?;
    let spec = match spec_of(context, &args.target.reference)? {
        Ok(spec) => spec,
        Err(code) => return Ok(code),
    };
    let cli = match modal_cli(context) {
        Ok(cli) => cli,
        Err(error) => return Ok(failure(json, &error)),
    };
    let required: Vec<String> =
        spec.secrets.baseline().into_iter().map(ToString::to_string).collect();
    let missing: Vec<String> = required
        .iter()
        .filter(|name| context.env.get(name).is_none_or(str::is_empty))
        .cloned()
        .collect();
    if args.fail_on_missing && !missing.is_empty() {
        return Ok(fail(
            json,
            ErrorCode::MissingSecret,
            &format!(
                "required secrets missing from the environment: {}; nothing was synced",
                missing.join(", ")
            ),
            Some("export them, then sync again"),
        ));
    }
    let existing = match cli.secret_names(env).await {
        Ok(existing) => existing,
        Err(error) => return Ok(failure(json, &error)),
    };
    let (mut created, mut updated) = (Vec::new(), Vec::new());
    for name in required.iter().filter(|name| !missing.contains(name)) {
        let value = context.env.get(name).unwrap_or_default();
        let replace = existing.contains(name);
        if let Err(error) = cli.put_secret(env, name, value, replace).await {
            let error = Failure { message: context.redactor.redact(&error.message), ..error };
            return Ok(failure(json, &error));
        }
        if replace { updated.push(name.clone()) } else { created.push(name.clone()) }
    }
    let report = |label: &str, names: &[String]| {
        if !names.is_empty() {
            eprintln!("{label}: {}", names.join(", "));
        }
    };
    report("created", &created);
    report("updated", &updated);
    report("missing", &missing);
    if json {
        print_json(
            &serde_json::json!({"ok": true, "env": env.as_str(), "created": created, "updated": updated, "missing": missing}),
        );
    } else {
        out(format!(
            "created {} updated {} missing {}",
            created.len(),
            updated.len(),
            missing.len()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_ref(text: &str) -> Result<ProcessorRef, Failure> {
    text.parse().map_err(|error| usage(format!("--ref: {error}"), "a ref looks like llm/litellm@1"))
}

async fn stop(args: ModalTargetArgs, context: &Context) -> Result<ExitCode, Failure> {
    let env = parse_env(&args.env)?;
    let reference = parse_ref(&args.reference)?;
    let done = async {
        let cli = modal_cli(context)?;
        let (app, _) = target_app(context, env, &reference).await?;
        cli.stop(env, &app).await?;
        let _ = DeploymentBook::new(&context.project.state(), &context.env)
            .forget(env, reference.as_str())
            .await;
        Ok::<_, Failure>(app)
    };
    match done.await {
        Ok(app) => {
            eprintln!("stopped {app} in Modal environment {env}");
            if args.json {
                print_json(&serde_json::json!({"ok": true, "app_name": app, "env": env.as_str()}));
            } else {
                out(format!("stopped {app}"));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Ok(failure(args.json, &error)),
    }
}

async fn status(args: ModalTargetArgs, context: &Context) -> Result<ExitCode, Failure> {
    let env = parse_env(&args.env)?;
    let reference = parse_ref(&args.reference)?;
    let found = async {
        let cli = modal_cli(context)?;
        let (app, deployment) = target_app(context, env, &reference).await?;
        let apps = cli.apps(env).await?;
        let row = apps.into_iter().find(|row| {
            ["Description", "description", "Name", "name"]
                .iter()
                .any(|key| row.get(*key).and_then(|value| value.as_str()) == Some(app.as_str()))
        });
        Ok::<_, Failure>((app, deployment, row))
    };
    let (app, deployment, row) = match found.await {
        Ok(found) => found,
        Err(error) => return Ok(failure(args.json, &error)),
    };
    let state = row
        .as_ref()
        .and_then(|row| {
            ["State", "state"].iter().find_map(|key| row.get(*key).and_then(|value| value.as_str()))
        })
        .unwrap_or("not deployed")
        .to_owned();
    if args.json {
        print_json(&serde_json::json!({
            "ok": true, "ref": reference.as_str(), "env": env.as_str(), "app_name": app,
            "state": state, "deployment": deployment, "modal": row,
        }));
    } else {
        out("REF\tENV\tAPP\tSTATE\tURL\tIMAGE");
        let (url, image) = deployment.as_ref().map_or(("-", "-"), |deployment| {
            (deployment.url.as_str(), deployment.image_ref.as_str())
        });
        out(format!("{reference}\t{env}\t{app}\t{state}\t{url}\t{image}"));
    }
    Ok(ExitCode::SUCCESS)
}

async fn logs(args: ModalLogsArgs, context: &Context) -> Result<ExitCode, Failure> {
    let json = args.target.json;
    let env = parse_env(&args.target.env)?;
    let reference = parse_ref(&args.target.reference)?;
    let printed = async {
        let cli = modal_cli(context)?;
        let (app, _) = target_app(context, env, &reference).await?;
        cli.logs(env, &app, args.follow, args.tail, |line| {
            let line = context.redactor.redact(line);
            if json {
                out(serde_json::json!({"line": line}));
            } else {
                out(line);
            }
        })
        .await
    };
    match printed.await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => Ok(failure(json, &error)),
    }
}

async fn verify_digest(args: ModalVerifyArgs, context: &Context) -> Result<ExitCode, Failure> {
    let json = args.target.json;
    let env = parse_env(&args.target.env)?;
    let spec = match spec_of(context, &args.target.reference)? {
        Ok(spec) => spec,
        Err(code) => return Ok(code),
    };
    let expected = oci_or_pin(args.oci.as_deref(), spec, "to compare with")?;
    let adapter = ModalAdapter::new(env, &context.project.state(), &context.env);
    let checked = async {
        let deployment = adapter.deployment(spec.reference.as_str()).await?;
        let deployed = adapter.deployed_digest(&deployment).await?;
        Ok::<_, Failure>((deployment, deployed))
    };
    let (deployment, deployed) = match checked.await {
        Ok(checked) => checked,
        Err(error) => return Ok(failure(json, &error)),
    };
    let expected_digest = expected.digest().to_string();
    let matches = deployed.as_deref() == Some(expected_digest.as_str());
    if !matches {
        return Ok(fail(
            json,
            ErrorCode::RegistryMismatch,
            &format!(
                "{} on Modal ({}) runs {} but {expected} is expected",
                spec.reference,
                deployment.app_name,
                deployed.as_deref().unwrap_or("an image it does not name")
            ),
            Some(&format!(
                "deploy the expected image: `theory modal start --ref {} --env {env} --oci {expected}`",
                spec.reference
            )),
        ));
    }
    eprintln!("{} on Modal runs {expected_digest}, as expected", deployment.app_name);
    if json {
        print_json(
            &serde_json::json!({"ok": true, "app_name": deployment.app_name, "expected": expected_digest, "deployed": deployed}),
        );
    } else {
        out(format!("ok {expected_digest}"));
    }
    Ok(ExitCode::SUCCESS)
}

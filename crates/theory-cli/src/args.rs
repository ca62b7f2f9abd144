//! The command line, as clap sees it. Values are checked further in each command, where a bad
//! one gets `error: …` and a `hint: …`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Run pinned processors the same way on a laptop, in CI and in the cloud; keep content-addressed
/// outputs and a receipt of what ran.
#[derive(Debug, Parser)]
#[command(
    name = "theory",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("THEORY_COMMIT"), ")"),
    propagate_version = true
)]
pub(crate) struct Cli {
    /// The project folder (holding registry/, .theory/ or theory.toml); default: found upward
    /// from here.
    #[arg(long, global = true, env = theory_core::env::names::PROJECT, value_name = "DIR")]
    pub(crate) project: Option<PathBuf>,
    /// Say more on stderr: -v shows Theory's debug lines, -vv every crate's, -vvv traces.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Say nothing on stderr but errors (no progress, info lines or warnings).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a processor and print its envelope (or its index path).
    #[command(visible_alias = "run-processor")]
    Run(Box<RunArgs>),
    /// Inspect and check the registry.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Build, push and pin processor images.
    #[command(subcommand)]
    Processor(ProcessorCommand),
    /// Long-lived processor containers on this machine.
    #[command(subcommand)]
    Local(LocalCommand),
    /// Create a new processor: crate, Dockerfile and registry spec.
    Scaffold(ScaffoldArgs),
    /// Plans: budgets that runs are charged to (`theory run --plan KEY`).
    #[command(subcommand)]
    Plan(PlanCommand),
    /// The history of runs, with their envelopes and receipts.
    #[command(subcommand)]
    Executions(ExecutionsCommand),
    /// Check the ledger.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Re-hash runs' outputs, indexes and receipts against the store and the ledger.
    Verify(VerifyArgs),
    /// Read the configured store by world path: list, print or save objects.
    #[command(subcommand)]
    Artifacts(ArtifactsCommand),
    /// Serve the HTTP API applications call (`/v1/runs`), with a durable queue in the ledger.
    Serve(ServeArgs),
    /// API tokens for `theory serve`: who may call it, and which plan their runs are charged to.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The Ed25519 key that signs runs' attestations: make one, or print its public half.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Deploy to Modal and run there, with Modal's own `modal` CLI.
    #[command(subcommand)]
    Modal(crate::modal_args::ModalCommand),
    /// Continuous integration: write GitHub Actions workflows that test, build, pin and deploy.
    #[command(subcommand)]
    Ci(CiCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell).
    Completions(CompletionsArgs),
    /// Print the manual page (roff; `theory man | man -l -`).
    Man,
}

/// `theory ci …`.
#[derive(Debug, Subcommand)]
pub(crate) enum CiCommand {
    /// Write `.github/workflows/theory-ci.yml` and `theory-deploy.yml`: the seeds' order of
    /// operations (tests → build and pin every platform → a pull request with the digests →
    /// Modal deploy to dev → a mock run → promotion by hand), with theory commands.
    Init(CiInitArgs),
}

/// `theory ci init`.
#[derive(Debug, Args)]
pub(crate) struct CiInitArgs {
    /// A processor the workflows test, build and deploy (repeatable); default: every processor
    /// in the project's registry/processors/.
    #[arg(long = "ref", value_name = "REF")]
    pub(crate) refs: Vec<String>,
    /// Where the images are pushed; default `ghcr.io/<owner>/<repository>` of the GitHub repository.
    #[arg(long, value_name = "REGISTRY")]
    pub(crate) registry: Option<String>,
    /// The platforms built, each on a runner of its own (default linux/amd64,linux/arm64).
    #[arg(long, value_name = "LIST")]
    pub(crate) platforms: Option<String>,
    /// The command that installs theory on a runner; default: `cargo install` of this version.
    #[arg(long, value_name = "COMMAND")]
    pub(crate) install: Option<String>,
    /// The folder written (default `.github/workflows` of the project).
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// Replace workflow files that exist.
    #[arg(long)]
    pub(crate) force: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `theory artifacts …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ArtifactsCommand {
    /// List the objects under a world path prefix, with their sizes.
    Ls(ArtifactsLsArgs),
    /// Print an object's bytes on stdout.
    Cat(ArtifactsCatArgs),
    /// Save an object to a file (by default its name, here).
    Get(ArtifactsGetArgs),
}

/// `theory artifacts ls`.
#[derive(Debug, Args)]
pub(crate) struct ArtifactsLsArgs {
    /// The prefix, such as `/artifacts/outputs/llm_litellm/`.
    #[arg(value_name = "PREFIX", default_value = "/artifacts/")]
    pub(crate) prefix: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `theory artifacts cat`.
#[derive(Debug, Args)]
pub(crate) struct ArtifactsCatArgs {
    /// The object's world path, as `theory run` prints it.
    #[arg(value_name = "WORLD_PATH")]
    pub(crate) path: String,
}

/// `theory artifacts get`.
#[derive(Debug, Args)]
pub(crate) struct ArtifactsGetArgs {
    /// The object's world path, as `theory run` prints it.
    #[arg(value_name = "WORLD_PATH")]
    pub(crate) path: String,
    /// Where to save it (default: its file name, in this folder).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Replace the file if it exists.
    #[arg(long)]
    pub(crate) force: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `theory completions SHELL`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_name = "SHELL")]
    pub(crate) shell: clap_complete::Shell,
}

/// `theory plan …`.
#[derive(Debug, Subcommand)]
pub(crate) enum PlanCommand {
    /// Create a plan with a budget.
    Create(PlanCreateArgs),
    /// Show a plan: budget, reserved, spent, available.
    Show(PlanShowArgs),
    /// List the plans.
    List(JsonArgs),
}

/// `theory keys …`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Make the project's signing key (`.theory/keys/signing.pem`, owner-only) and its public
    /// half beside it.
    Generate(KeysGenerateArgs),
    /// Print the signing key's public half (PEM) and its id, to give to whoever verifies.
    Show(JsonArgs),
    /// List the public keys whose attestations this project trusts, and where each is from
    /// (`registry/keys/*.pem`, `[trust] public_keys` in theory.toml, the signing key).
    Trusted(JsonArgs),
}

#[derive(Debug, Args)]
pub(crate) struct KeysGenerateArgs {
    /// Replace the project's key (runs it signed then verify only with its old public key).
    #[arg(long)]
    pub(crate) force: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `theory token …`.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Make a token; its secret is printed once and kept nowhere.
    Create(TokenCreateArgs),
    /// List the tokens (never their secrets).
    List(JsonArgs),
    /// Revoke a token: it never works again.
    Revoke(TokenRevokeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct TokenCreateArgs {
    /// The token's name, unique (who or what uses it).
    #[arg(long, value_name = "NAME")]
    pub(crate) name: String,
    /// The plan its runs are charged to (it sees the runs charged to that plan).
    #[arg(long, value_name = "KEY")]
    pub(crate) plan: Option<String>,
    /// What it may do, comma-separated: runs:write, runs:read, plans:admin.
    #[arg(long, value_name = "SCOPES", default_value = "runs:write,runs:read")]
    pub(crate) scope: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TokenRevokeArgs {
    /// The token's name.
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PlanCreateArgs {
    /// The plan's key, used with `theory run --plan KEY`.
    #[arg(long, value_name = "KEY")]
    pub(crate) key: String,
    /// The budget in micro-USD (1 USD = 1000000).
    #[arg(long, value_name = "N")]
    pub(crate) budget_usd_micro: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PlanShowArgs {
    /// The plan's key.
    #[arg(value_name = "KEY", required_unless_present = "key")]
    pub(crate) key_arg: Option<String>,
    /// The plan's key (as a flag).
    #[arg(long, value_name = "KEY", conflicts_with = "key_arg")]
    pub(crate) key: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Just `--json`.
#[derive(Debug, Args)]
pub(crate) struct JsonArgs {
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `theory executions …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ExecutionsCommand {
    /// List runs, newest first.
    List(ExecutionsListArgs),
    /// Show one run: its record, envelope, receipt and events.
    Show(ExecutionShowArgs),
}

/// `executions list --status`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum StatusFilter {
    /// Started, not finished.
    Running,
    /// Finished with outputs.
    Success,
    /// Failed, cancelled or abandoned.
    Error,
}

#[derive(Debug, Args)]
pub(crate) struct ExecutionsListArgs {
    /// How many to show.
    #[arg(long, default_value_t = 20)]
    pub(crate) limit: u32,
    /// Only runs with this status.
    #[arg(long, value_enum)]
    pub(crate) status: Option<StatusFilter>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ExecutionShowArgs {
    /// The execution id, or a prefix of it that only one run's id starts with.
    #[arg(value_name = "ID")]
    pub(crate) id: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `theory ledger …`.
#[derive(Debug, Subcommand)]
pub(crate) enum LedgerCommand {
    /// Walk the event chain, replay the plans and executions from it, check the database file
    /// and that the receipts in the store point into the ledger; name what does not hold.
    Verify(JsonArgs),
}

/// `theory serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Where to listen; port 0 picks a free one (the address is printed as
    /// `{"listening":"…"}` on stdout).
    #[arg(long, default_value = "127.0.0.1:8686", value_name = "ADDRESS")]
    pub(crate) listen: String,
    /// Runs at once on this server.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub(crate) max_concurrent_runs: usize,
    /// Seconds a shutdown (SIGTERM, Ctrl-C) lets runs under way finish before cancelling them.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub(crate) shutdown_grace_s: u64,
    /// Keep a processor's instance this long after its last run, for the next one (0: stop
    /// each instance when its run ends).
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub(crate) warm_idle_s: u64,
    /// The most idle instances kept per processor (default: --max-concurrent-runs, so a busy
    /// processor never waits for a start).
    #[arg(long, value_name = "N")]
    pub(crate) warm_max_per_processor: Option<usize>,
    /// The most runs waiting in the queue; more submissions are refused with 429 (`ERR_LIMIT`).
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub(crate) max_queued_runs: u64,
    /// Let webhooks reach loopback, private and link-local addresses (by default refused: a
    /// tenant must not reach the server's own network).
    #[arg(long)]
    pub(crate) allow_private_webhooks: bool,
    /// The largest upload `POST /v1/uploads` takes, in bytes.
    #[arg(long, default_value_t = 1 << 30, value_name = "BYTES")]
    pub(crate) max_upload_bytes: u64,
    /// Serve without API tokens (loopback addresses only), for development: every caller may
    /// run and see every run. Without it, every request needs `Authorization: Bearer TOKEN`
    /// (`theory token create`).
    #[arg(long)]
    pub(crate) no_auth: bool,
}

/// `theory verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The executions to verify.
    #[arg(value_name = "EXECUTION")]
    pub(crate) executions: Vec<String>,
    /// Every successful execution of the ledger, and every stored attachment.
    #[arg(long)]
    pub(crate) all: bool,
    /// A public key (PEM file) whose attestations are trusted, besides the project's own
    /// (`registry/keys/*.pem`, `[trust]` in theory.toml, the signing key's public half).
    #[arg(long = "key", value_name = "PEM_FILE")]
    pub(crate) keys: Vec<std::path::PathBuf>,
    /// Fail on a run without an attestation, rather than reporting it as unsigned.
    #[arg(long)]
    pub(crate) require_signed: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `theory processor …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ProcessorCommand {
    /// Compile the processor statically and load its FROM-scratch image into Docker.
    Build(BuildArgs),
    /// Push the built images and one image index of every platform; print each platform's pin.
    Push(PushArgs),
    /// Record a pinned digest for a platform in the processor's spec file.
    Pin(PinArgs),
}

#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// The processor, `namespace/name@version`.
    #[arg(long = "ref", value_name = "REF")]
    pub(crate) reference: String,
    /// Comma-separated platforms (linux/amd64, linux/arm64); default: this machine's.
    #[arg(long, value_name = "LIST")]
    pub(crate) platforms: Option<String>,
    /// What to build for: `docker` (the image), `process` (a Python processor's environment
    /// under .theory/python/); default: both for a Python processor, the image otherwise.
    #[arg(long, value_name = "RUNTIME", value_parser = ["process", "docker"])]
    pub(crate) runtime: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PushArgs {
    /// The processor, `namespace/name@version`.
    #[arg(long = "ref", value_name = "REF")]
    pub(crate) reference: String,
    /// The platforms of the image index, comma-separated (default linux/amd64,linux/arm64): those
    /// built here are pushed, the others must be in the registry already.
    #[arg(long, value_name = "LIST")]
    pub(crate) platforms: Option<String>,
    /// Where to push: a registry and path such as ghcr.io/org/repo or 127.0.0.1:5000/theory.
    #[arg(long, env = theory_core::env::names::IMAGE_REGISTRY, value_name = "REGISTRY")]
    pub(crate) registry: Option<String>,
    /// Also pin each pushed digest in the processor's spec file (`theory processor pin`).
    #[arg(long)]
    pub(crate) pin: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PinArgs {
    /// The processor, `namespace/name@version`.
    #[arg(long = "ref", value_name = "REF", required_unless_present = "pushed")]
    pub(crate) reference: Option<String>,
    /// The platform the digest is for: amd64 or arm64.
    #[arg(long, required_unless_present = "pushed")]
    pub(crate) platform: Option<String>,
    /// The pinned image, `repo@sha256:<64 hex>`.
    #[arg(long, value_name = "REPO@DIGEST", required_unless_present = "pushed")]
    pub(crate) oci: Option<String>,
    /// Pin every image a `theory processor push --json` report lists (a report carried from
    /// the machine that pushed).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["reference", "platform", "oci"])]
    pub(crate) pushed: Option<std::path::PathBuf>,
    /// Ask the registry first: the manifest must be there and be an image of that platform.
    #[arg(long)]
    pub(crate) verify_digest: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `theory local …`.
#[derive(Debug, Subcommand)]
pub(crate) enum LocalCommand {
    /// Start (or reuse) the processor's container, with its secrets from the environment.
    Start(LocalStartArgs),
    /// Run on the started container; never starts anything.
    Run(Box<RunArgs>),
    /// Stop and remove containers.
    Stop(LocalStopArgs),
    /// Show every Theory container with its ref, port, image and health.
    Status(JsonFlag),
    /// Print a container's logs.
    Logs(LocalLogsArgs),
}

#[derive(Debug, Args)]
pub(crate) struct LocalStartArgs {
    /// The processor, `namespace/name@version`.
    #[arg(long = "ref", value_name = "REF")]
    pub(crate) reference: String,
    /// Use this platform's pin (amd64 or arm64) instead of the host's.
    #[arg(long)]
    pub(crate) platform: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false, id = "which")]
pub(crate) struct LocalStopWhich {
    /// The processor whose container to stop.
    #[arg(long = "ref", value_name = "REF", group = "which")]
    pub(crate) reference: Option<String>,
    /// Stop every processor container of this project.
    #[arg(long, group = "which")]
    pub(crate) all: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LocalStopArgs {
    #[command(flatten)]
    pub(crate) which: LocalStopWhich,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LocalLogsArgs {
    /// The processor whose container's logs to print.
    #[arg(long = "ref", value_name = "REF")]
    pub(crate) reference: String,
    /// Keep printing new lines until interrupted.
    #[arg(long)]
    pub(crate) follow: bool,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    pub(crate) tail: Option<usize>,
    /// Print JSON lines (`{"line": …}`).
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ScaffoldArgs {
    /// The new processor, `namespace/name@version`.
    #[arg(long = "ref", value_name = "REF")]
    pub(crate) reference: String,
    /// The processor's language: `rust` (a crate on the Rust SDK) or `python` (a
    /// `make_runner(config)` provider on the Python SDK).
    #[arg(long, value_name = "LANG", default_value = "rust", value_parser = ["rust", "python"])]
    pub(crate) lang: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `--no-cache` and `--reuse-real`.
#[derive(Debug, Args)]
pub(crate) struct CacheFlags {
    /// Run even when an identical finished run could be reused.
    #[arg(long)]
    pub(crate) no_cache: bool,
    /// Reuse a finished identical real run even when the spec says its outputs vary from run to
    /// run (LLM sampling without a seed, say).
    #[arg(long, conflicts_with = "no_cache")]
    pub(crate) reuse_real: bool,
}

/// `theory run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The processor, `namespace/name@version` (e.g. llm/litellm@1).
    #[arg(long = "ref", value_name = "REF")]
    pub(crate) reference: String,
    /// Where it runs: local or modal (`mock` is the old name of `--adapter local --mode mock`);
    /// default `THEORY_ADAPTER` (theory.toml or the environment), else local.
    #[arg(long)]
    pub(crate) adapter: Option<String>,
    /// mock (no external calls; the default) or real (`smoke` and `default` are old aliases).
    #[arg(long)]
    pub(crate) mode: Option<String>,
    /// World-path prefix for outputs, ending with / (default `/artifacts/outputs/{ref_slug}/{execution_id}/`).
    #[arg(long, value_name = "PREFIX")]
    pub(crate) write_prefix: Option<String>,
    #[command(flatten)]
    pub(crate) inputs: InputsArgs,
    /// Adapter options as JSON: `{"timeout_s": N, "runtime": "process"|"docker", "platform": "amd64"|"arm64"}`.
    #[arg(long, value_name = "JSON")]
    pub(crate) adapter_opts_json: Option<String>,
    /// Attach a file: NAME=PATH; {"$attach":"NAME"} in the inputs refers to it (repeatable).
    #[arg(long, value_name = "NAME=PATH")]
    pub(crate) attach: Vec<String>,
    /// How bytes move: direct (presigned URLs, straight to an S3 store), stream (through
    /// theory's connection), or auto (direct when the store and the runtime allow it).
    #[arg(long, value_name = "auto|direct|stream", default_value = "auto")]
    pub(crate) transfer: String,
    /// Charge the run to this plan's budget.
    #[arg(long, value_name = "KEY")]
    pub(crate) plan: Option<String>,
    /// Print the envelope as JSON instead of the index path.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also copy every output under DIR, by world path.
    #[arg(long, value_name = "DIR")]
    pub(crate) save_dir: Option<PathBuf>,
    /// Also copy the first output the spec declares (else the first by path) to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) save_first: Option<PathBuf>,
    /// Stream tokens, events and logs to stderr as they arrive.
    #[arg(long)]
    pub(crate) stream: bool,
    /// Build the image for this machine first (`theory processor build`) and run that build,
    /// not the pin, in the docker runtime: the seeds' local fallback (and what CI tests).
    #[arg(long)]
    pub(crate) build: bool,
    /// Whether a finished identical run may answer.
    #[command(flatten)]
    pub(crate) cache: CacheFlags,
    /// Use this platform's pin (amd64 or arm64) instead of the host's.
    #[arg(long)]
    pub(crate) platform: Option<String>,
    /// The Modal environment of `--adapter modal` (dev, staging, main; else `MODAL_ENVIRONMENT`,
    /// else main).
    #[arg(long, value_name = "ENV")]
    pub(crate) env: Option<String>,
    /// Run through `theory serve` at URL instead of here (its API token from `THEORY_TOKEN`);
    /// the output and exit status are the same.
    #[arg(long, env = theory_core::env::names::SERVER, value_name = "URL")]
    pub(crate) server: Option<String>,
}

/// The inputs, from one place only.
#[derive(Debug, Args)]
#[group(multiple = false)]
#[expect(
    clippy::struct_field_names,
    reason = "the fields are the flags --inputs-json, --inputs-file and --inputs"
)]
pub(crate) struct InputsArgs {
    /// Inputs as a JSON string.
    #[arg(long, value_name = "JSON")]
    pub(crate) inputs_json: Option<String>,
    /// Inputs from a JSON file.
    #[arg(long, value_name = "PATH")]
    pub(crate) inputs_file: Option<PathBuf>,
    /// `-`: inputs as JSON on standard input.
    #[arg(long = "inputs", value_name = "-")]
    pub(crate) inputs_stdin: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RegistryCommand {
    /// List the processors (and, in the plain form, the prompts).
    List(JsonFlag),
    /// Show one processor's spec, or one prompt of `registry/prompts/`.
    Show(ShowArgs),
    /// Check every registry file and report every problem.
    Validate(JsonFlag),
}

#[derive(Debug, Args)]
pub(crate) struct JsonFlag {
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The processor, `namespace/name@version`, or a prompt, `name@version`.
    #[arg(value_name = "REF", required_unless_present = "ref_flag")]
    pub(crate) reference: Option<String>,
    /// The same, as the other commands take it: `--ref REF`.
    #[arg(long = "ref", value_name = "REF", conflicts_with = "reference")]
    pub(crate) ref_flag: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

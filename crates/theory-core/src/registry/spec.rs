//! The processor spec: one YAML file per processor version, every key of DESIGN §3, plus the
//! older shapes of the original system's docs (`secrets: [A]`, `runtime.memory` in MiB,
//! `runtime.timeout`, `image.dockerfile`, `outputs.writes`, `adapter.modal.stub_name`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use serde_json::Value;

use crate::{ImagePin, ProcessorRef};

/// A validated processor spec.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessorSpec {
    /// `ns/name@ver`.
    #[serde(rename = "ref")]
    pub reference: ProcessorRef,
    /// A short human name.
    #[serde(default)]
    pub name: Option<String>,
    /// What the processor does.
    #[serde(default)]
    pub description: Option<String>,
    /// Pins and build instructions.
    #[serde(default)]
    pub image: ImageSpec,
    /// Resources and timeout.
    #[serde(default)]
    pub runtime: RuntimeSpec,
    /// Secret names the processor reads in `real` mode.
    #[serde(default)]
    pub secrets: SecretsSpec,
    /// JSON Schema the inputs must satisfy before anything starts.
    #[serde(default = "any_inputs")]
    pub inputs: Value,
    /// The outputs the processor declares.
    #[serde(default)]
    pub outputs: OutputsSpec,
    /// Admission and success predicates.
    #[serde(default)]
    pub predicates: PredicatesSpec,
    /// Adapter-specific settings.
    #[serde(default)]
    pub adapter: AdapterSpec,
    /// What a real run costs, from the usage the processor reports.
    #[serde(default)]
    pub pricing: Option<PricingSpec>,
    /// Non-secret settings the processor reads from its environment (a provider's base URL,
    /// say): they reach an instance the run starts (process or container) and their values are
    /// part of its memo key; an instance that holds its own environment (a Modal deployment, a
    /// `theory local start` container) keeps the settings it was started with.
    #[serde(default)]
    pub config_env: Vec<SecretName>,
    /// When a finished identical run may answer for a new one.
    #[serde(default)]
    pub cache: CacheSpec,
}

impl ProcessorSpec {
    /// The `config_env` settings in `env`, by name, with `None` for one that is not set.
    pub fn config_settings(&self, env: &crate::EnvSnapshot) -> Vec<(String, Option<String>)> {
        self.config_env
            .iter()
            .map(|name| (name.to_string(), env.get(name.as_str()).map(str::to_owned)))
            .collect()
    }

    /// The `config_env` settings that `env` sets, by name: what reaches the processor.
    pub fn config_values(&self, env: &crate::EnvSnapshot) -> Vec<(String, String)> {
        self.config_settings(env)
            .into_iter()
            .filter_map(|(name, value)| Some((name, value?)))
            .collect()
    }
}

fn any_inputs() -> Value {
    serde_json::json!({"type": "object"})
}

/// `cache`: whether a real run's outputs are a function of its inputs, so a finished identical
/// run may answer for it (mock runs always may).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSpec {
    /// `always` (the default: the outputs are a function of the inputs) or `never` (they vary
    /// from run to run, as LLM sampling does).
    #[serde(default)]
    pub real: RealReuse,
    /// With `real: never`, the inputs that make a run reproducible after all: any one of these
    /// holding (`temperature` 0, a `seed` given) lets a finished identical run answer.
    #[serde(default)]
    pub real_when: Vec<InputCondition>,
}

/// `cache.real`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RealReuse {
    /// A finished identical real run may answer.
    #[default]
    Always,
    /// Only when `real_when` says so (or the caller asks for reuse).
    Never,
}

/// One condition on the normalized inputs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputCondition {
    /// A JSON pointer, such as `/params/temperature`.
    pub pointer: String,
    /// The value it must equal; without one, it must be present and not null.
    #[serde(default)]
    pub equals: Option<Value>,
}

impl CacheSpec {
    /// Whether a finished identical real run with these (normalized) inputs may answer.
    pub fn reuses_real(&self, inputs: &Value) -> bool {
        match self.real {
            RealReuse::Always => true,
            RealReuse::Never => self.real_when.iter().any(|condition| {
                match (inputs.pointer(&condition.pointer), &condition.equals) {
                    (None | Some(Value::Null), _) => false,
                    (Some(_), None) => true,
                    (Some(found), Some(wanted)) => numbers_equal(found, wanted) || found == wanted,
                }
            }),
        }
    }
}

/// `0` equals `0.0`: JSON numbers compare by value.
fn numbers_equal(left: &Value, right: &Value) -> bool {
    #[expect(clippy::float_cmp, reason = "JSON numbers written the same compare exactly")]
    let equal =
        matches!((left.as_f64(), right.as_f64()), (Some(left), Some(right)) if left == right);
    equal
}

/// A CPU architecture images are pinned for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Platform {
    /// `linux/amd64`.
    Amd64,
    /// `linux/arm64`.
    Arm64,
}

impl Platform {
    /// Returns the platform of this machine, when it is one images are built for.
    pub fn host() -> Option<Platform> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Platform::Amd64),
            "aarch64" => Some(Platform::Arm64),
            _ => None,
        }
    }

    /// Returns `amd64` or `arm64`.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Amd64 => "amd64",
            Platform::Arm64 => "arm64",
        }
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(value: &str) -> Result<Platform, String> {
        match value.trim_start_matches("linux/") {
            "amd64" => Ok(Platform::Amd64),
            "arm64" => Ok(Platform::Arm64),
            _ => Err(format!("unknown platform {value:?}: expected amd64 or arm64")),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

theory_protocol::serde_via_str!(Platform);

/// `image`: pins per platform, the older single pin, and how to build locally.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// Pins by platform; wins over `oci`.
    #[serde(default)]
    pub platforms: BTreeMap<Platform, ImagePin>,
    /// The older single pin.
    #[serde(default)]
    pub oci: Option<ImagePin>,
    /// How to build the image (and, for the `process` runtime, which binary to run).
    #[serde(default)]
    pub build: Option<BuildSpec>,
    /// The original docs' shorthand for `build.dockerfile`, relative to the project.
    #[serde(default)]
    pub dockerfile: Option<String>,
}

impl ImageSpec {
    /// Returns the pin for `platform`: `platforms` first, then `oci`.
    pub fn pin_for(&self, platform: Platform) -> Option<&ImagePin> {
        self.platforms.get(&platform).or(self.oci.as_ref())
    }

    /// Returns the build instructions, from `build` or the `dockerfile` shorthand.
    pub fn build_spec(&self) -> Option<BuildSpec> {
        self.build.clone().or_else(|| {
            let dockerfile = self.dockerfile.as_deref()?;
            let (context, file) = dockerfile.rsplit_once('/').unwrap_or((".", dockerfile));
            Some(BuildSpec {
                context: context.to_owned(),
                dockerfile: file.to_owned(),
                binary: None,
                python: None,
            })
        })
    }
}

/// `image.build`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    /// The build context, relative to the project root.
    pub context: String,
    /// The Dockerfile, relative to the context.
    #[serde(default = "default_dockerfile")]
    pub dockerfile: String,
    /// The Cargo binary the image runs; the `process` runtime runs it on the host. Defaults to the
    /// context's last folder name.
    #[serde(default)]
    pub binary: Option<String>,
    /// A Python processor: its provider file (with `make_runner(config)`), relative to the
    /// context, served by the `theory-processor` SDK. The `process` runtime runs it in the
    /// virtual environment `theory processor build` prepares under `.theory/python/`; the context's
    /// `requirements.txt`, when there is one, lists its dependencies.
    #[serde(default)]
    pub python: Option<String>,
}

fn default_dockerfile() -> String {
    "Dockerfile".into()
}

impl BuildSpec {
    /// Returns the binary name: `binary`, or the context's last folder name.
    pub fn binary_name(&self) -> &str {
        self.binary.as_deref().unwrap_or_else(|| {
            self.context.trim_end_matches('/').rsplit('/').next().unwrap_or_default()
        })
    }
}

/// `runtime`: resources and the run's timeout.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawRuntime")]
pub struct RuntimeSpec {
    /// CPUs.
    pub cpu: f64,
    /// Memory, in GiB.
    pub memory_gb: f64,
    /// The longest a run may take, in seconds.
    pub timeout_s: u64,
    /// A GPU kind (`T4`, `A10G`, `any`), or none.
    pub gpu: Option<String>,
    /// The most runs of this processor `theory serve` runs at once, across its front ends;
    /// `None` leaves only the server's own limit.
    pub max_concurrency: Option<u32>,
}

impl Default for RuntimeSpec {
    fn default() -> RuntimeSpec {
        RuntimeSpec { cpu: 1.0, memory_gb: 1.0, timeout_s: 300, gpu: None, max_concurrency: None }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntime {
    #[serde(default)]
    cpu: Option<f64>,
    #[serde(default)]
    memory_gb: Option<f64>,
    /// The original docs' form: MiB.
    #[serde(default)]
    memory: Option<f64>,
    #[serde(default)]
    timeout_s: Option<u64>,
    /// The original docs' form.
    #[serde(default)]
    timeout: Option<u64>,
    #[serde(default)]
    gpu: Option<Value>,
    #[serde(default)]
    max_concurrency: Option<u32>,
}

impl TryFrom<RawRuntime> for RuntimeSpec {
    type Error = String;

    fn try_from(raw: RawRuntime) -> Result<RuntimeSpec, String> {
        let defaults = RuntimeSpec::default();
        let memory_gb = match (raw.memory_gb, raw.memory) {
            (Some(_), Some(_)) => return Err("give memory_gb or memory (MiB), not both".into()),
            (Some(gb), None) => gb,
            (None, Some(mib)) => mib / 1024.0,
            (None, None) => defaults.memory_gb,
        };
        let timeout_s = match (raw.timeout_s, raw.timeout) {
            (Some(_), Some(_)) => return Err("give timeout_s or timeout, not both".into()),
            (Some(seconds), None) | (None, Some(seconds)) => seconds,
            (None, None) => defaults.timeout_s,
        };
        let cpu = raw.cpu.unwrap_or(defaults.cpu);
        if !(cpu > 0.0 && memory_gb > 0.0) {
            return Err("cpu and memory must be positive".into());
        }
        if timeout_s == 0 {
            return Err("timeout_s must be at least 1".into());
        }
        let gpu = match raw.gpu {
            None | Some(Value::Null | Value::Bool(false)) => None,
            Some(Value::Bool(true)) => Some("any".to_owned()),
            Some(Value::String(kind)) if !kind.is_empty() => Some(kind),
            Some(other) => {
                return Err(format!("gpu must be null, a boolean or a GPU kind, found {other}"));
            }
        };
        if raw.max_concurrency == Some(0) {
            return Err("max_concurrency must be at least 1 (leave it out for no limit)".into());
        }
        Ok(RuntimeSpec { cpu, memory_gb, timeout_s, gpu, max_concurrency: raw.max_concurrency })
    }
}

/// The name of an environment variable that holds a secret: `[A-Z_][A-Z0-9_]*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretName(String);

impl SecretName {
    /// Returns the variable name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SecretName {
    type Err = String;

    fn from_str(value: &str) -> Result<SecretName, String> {
        let valid =
            value.bytes().next().is_some_and(|byte| byte.is_ascii_uppercase() || byte == b'_')
                && value
                    .bytes()
                    .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit() || byte == b'_');
        if valid {
            Ok(SecretName(value.to_owned()))
        } else {
            Err(format!("{value:?} is not an environment variable name (A-Z, 0-9, _)"))
        }
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

theory_protocol::serde_via_str!(SecretName);

/// `secrets`: required and optional names (a plain list means all required), and the one key a
/// run needs chosen by one of its inputs (`by_input`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawSecrets")]
pub struct SecretsSpec {
    /// Names a `real` run cannot start without.
    pub required: Vec<SecretName>,
    /// Names passed on when present.
    pub optional: Vec<SecretName>,
    /// The key a `real` run needs besides `required`, chosen by one of its inputs.
    pub by_input: Option<SecretsByInput>,
}

/// `secrets.by_input`: a key chosen by the `provider/…` prefix of one input, such as the model
/// of an LLM call (`anthropic/claude-…` needs `ANTHROPIC_API_KEY`, not `OPENAI_API_KEY`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsByInput {
    /// A JSON pointer into the normalized inputs, such as `/params/model`.
    pub pointer: String,
    /// The key when that input is absent or has no `provider/` prefix.
    pub default: SecretName,
    /// The key of each provider prefix; a prefix not listed needs no key here (the processor
    /// refuses a provider it does not know).
    pub keys: BTreeMap<String, SecretName>,
}

impl SecretsSpec {
    /// Returns every name, required first.
    pub fn all(&self) -> impl Iterator<Item = &SecretName> {
        self.required.iter().chain(&self.optional)
    }

    /// The names a `real` run with these (normalized) inputs cannot start without.
    pub fn required_for<'a>(&'a self, inputs: &Value) -> Vec<&'a SecretName> {
        let mut names: Vec<&SecretName> = self.required.iter().collect();
        if let Some(chosen) = self.by_input.as_ref().and_then(|by_input| by_input.chosen(inputs)) {
            names.push(chosen);
        }
        names
    }

    /// The names a run with no inputs choosing otherwise needs: `required` and the default of
    /// `by_input` (what a deployment mounts, what `registry list` shows).
    pub fn baseline(&self) -> Vec<&SecretName> {
        let mut names: Vec<&SecretName> = self.required.iter().collect();
        names.extend(self.by_input.as_ref().map(|by_input| &by_input.default));
        names
    }
}

impl SecretsByInput {
    /// The key these inputs need, if any.
    pub fn chosen(&self, inputs: &Value) -> Option<&SecretName> {
        let value = inputs.pointer(&self.pointer).and_then(Value::as_str);
        match value.and_then(|value| value.split_once('/')) {
            None => Some(&self.default),
            Some((provider, _)) => self.keys.get(provider),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSecrets {
    List(Vec<SecretName>),
    Split {
        #[serde(default)]
        required: Vec<SecretName>,
        #[serde(default)]
        optional: Vec<SecretName>,
        #[serde(default)]
        by_input: Option<SecretsByInput>,
    },
}

impl TryFrom<RawSecrets> for SecretsSpec {
    type Error = String;

    fn try_from(raw: RawSecrets) -> Result<SecretsSpec, String> {
        let spec = match raw {
            RawSecrets::List(required) => {
                SecretsSpec { required, optional: Vec::new(), by_input: None }
            }
            RawSecrets::Split { required, optional, by_input } => {
                SecretsSpec { required, optional, by_input }
            }
        };
        if let Some(twice) = spec.required.iter().find(|name| spec.optional.contains(name)) {
            return Err(format!("{twice} is both required and optional"));
        }
        if let Some(by_input) = &spec.by_input {
            if !by_input.pointer.starts_with('/') {
                return Err(format!(
                    "by_input.pointer {:?} is not a JSON pointer (such as /params/model)",
                    by_input.pointer
                ));
            }
            let named = std::iter::once(&by_input.default).chain(by_input.keys.values());
            if let Some(unlisted) =
                named.into_iter().find(|name| !spec.all().any(|listed| listed == *name))
            {
                return Err(format!(
                    "by_input names {unlisted}, which is neither required nor optional (list it under optional so runs receive it)"
                ));
            }
        }
        Ok(spec)
    }
}

/// One declared output.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// The path relative to the write prefix.
    pub path: String,
    /// Its media type.
    pub mime: String,
}

/// `outputs`: a list of `{path, mime}`, or the original docs' `{writes: [{prefix}]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawOutputs")]
pub struct OutputsSpec {
    /// Declared outputs.
    pub files: Vec<OutputSpec>,
    /// Declared write prefixes of the older form, kept for display.
    pub writes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawOutputs {
    Files(Vec<OutputSpec>),
    Writes { writes: Vec<WriteDeclaration> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteDeclaration {
    prefix: String,
}

impl TryFrom<RawOutputs> for OutputsSpec {
    type Error = String;

    fn try_from(raw: RawOutputs) -> Result<OutputsSpec, String> {
        match raw {
            RawOutputs::Files(files) => {
                for file in &files {
                    theory_protocol::validate_relpath(&file.path)
                        .map_err(|error| error.to_string())?;
                }
                Ok(OutputsSpec { files, writes: Vec::new() })
            }
            RawOutputs::Writes { writes } => Ok(OutputsSpec {
                files: Vec::new(),
                writes: writes.into_iter().map(|write| write.prefix).collect(),
            }),
        }
    }
}

/// One predicate use: `{id: "artifact.exists@1", args: {…}}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredicateUse {
    /// The predicate's id.
    pub id: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Value,
}

/// `predicates`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredicatesSpec {
    /// Checked before a run starts.
    #[serde(default)]
    pub admission: Vec<PredicateUse>,
    /// Checked after a run succeeded.
    #[serde(default)]
    pub success: Vec<PredicateUse>,
}

/// `pricing`: what a real run costs, from the `usage` its processor reports.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingSpec {
    /// Micro-USD per unit of each `usage` key (`tokens_in: 0.15` is $0.15 per million tokens),
    /// for a run whose `usage.model` has no row in `models`.
    #[serde(default)]
    pub usd_micro_per: BTreeMap<String, f64>,
    /// Prices per model: the row of the `model` a run's usage names (such as
    /// `openai/gpt-4o-mini`) replaces `usd_micro_per` for that run.
    #[serde(default)]
    pub models: BTreeMap<String, BTreeMap<String, f64>>,
    /// The usage admission assumes when no `budget.available@1` names `required_usd_micro`.
    #[serde(default)]
    pub estimate_usage: BTreeMap<String, u64>,
}

impl PricingSpec {
    /// The prices of a run of `model` (its row in `models`, else `usd_micro_per`).
    pub fn prices_for(&self, model: Option<&str>) -> &BTreeMap<String, f64> {
        model.and_then(|model| self.models.get(model)).unwrap_or(&self.usd_micro_per)
    }

    /// What `usage` costs at the prices of `usd_micro_per`: see [`PricingSpec::cost_at`].
    pub fn cost_usd_micro<'a>(
        &self,
        usage: impl IntoIterator<Item = (&'a String, u64)>,
    ) -> Option<u64> {
        PricingSpec::cost_at(&self.usd_micro_per, usage)
    }

    /// What `usage` costs at `prices`: the sum of each priced key's units times its price,
    /// rounded up; `None` when the usage holds no priced key.
    pub fn cost_at<'a>(
        prices: &BTreeMap<String, f64>,
        usage: impl IntoIterator<Item = (&'a String, u64)>,
    ) -> Option<u64> {
        let mut any_priced = false;
        let mut total = 0.0_f64;
        for (key, units) in usage {
            if let Some(price) = prices.get(key) {
                any_priced = true;
                #[expect(clippy::cast_precision_loss, reason = "usage counts stay far below 2^52")]
                let units = units as f64;
                total += units * price;
            }
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "prices are checked finite and non-negative; the total is rounded up"
        )]
        any_priced.then(|| total.ceil().min(u64::MAX as f64) as u64)
    }

    /// What admission reserves from `estimate_usage`, if it names any priced key.
    pub fn estimate_usd_micro(&self) -> Option<u64> {
        self.cost_usd_micro(self.estimate_usage.iter().map(|(key, units)| (key, *units)))
    }
}

/// `adapter`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterSpec {
    /// Settings for Modal.
    #[serde(default)]
    pub modal: Option<ModalSpec>,
}

/// `adapter.modal`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModalSpec {
    /// The Modal app name.
    #[serde(default)]
    pub app_name: Option<String>,
    /// The original docs' name for the deployed function.
    #[serde(default)]
    pub stub_name: Option<String>,
    /// The processor binary's path in the image (its `ENTRYPOINT`), started by the Modal app;
    /// by default `/{image.build.binary}`.
    #[serde(default)]
    pub entrypoint: Option<String>,
}

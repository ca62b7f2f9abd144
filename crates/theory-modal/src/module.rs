//! The generated app module (`python/modal_app.py`, written as `modal_app.py` into the project's
//! `.theory/modal/`) and the environment variables that parameterize it: the seeds' `sync_modal`
//! contract (`PROCESSOR_REF`, `IMAGE_REF`, `TIMEOUT_S`, `CPU`, `MEMORY_MIB`, `GPU`,
//! `TOOL_SECRETS`, `MODAL_APP_NAME`) plus what a `FROM scratch` image needs said
//! (`PROCESSOR_ENTRYPOINT`, `PROCESSOR_PORT`, `REGISTRY_SECRET`, `PROXY_AUTH`).

use std::path::{Path, PathBuf};

use theory_core::env::names;
use theory_core::registry::ProcessorSpec;
use theory_core::{EnvSnapshot, Failure, ImagePin};
use theory_protocol::ErrorCode;

/// The module's source.
pub const APP_MODULE: &str = include_str!("../python/modal_app.py");
/// The module's name, for `modal deploy -m`.
pub const MODULE_NAME: &str = "modal_app";
/// The port processors listen on in their images.
pub const PROCESSOR_PORT: u16 = 8000;
/// The app name the seeds default to.
pub const DEFAULT_APP_NAME: &str = "theory-rt";

/// Every variable the module reads, in the order `theory modal deploy` documents them.
pub const VARIABLES: [&str; 12] = [
    names::PROCESSOR_REF,
    names::IMAGE_REF,
    names::TIMEOUT_S,
    names::CPU,
    names::MEMORY_MIB,
    names::GPU,
    names::TOOL_SECRETS,
    names::MODAL_APP_NAME,
    names::PROCESSOR_ENTRYPOINT,
    names::PROCESSOR_PORT,
    names::REGISTRY_SECRET,
    names::PROXY_AUTH,
];

/// What one deployment runs and with what.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleParams {
    /// `ns/name@ver`.
    pub processor_ref: String,
    /// `repo@sha256:…`.
    pub image_ref: ImagePin,
    /// The function's timeout.
    pub timeout_s: u64,
    /// CPUs.
    pub cpu: f64,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// A Modal GPU type, if any.
    pub gpu: Option<String>,
    /// Modal secret names mounted into the container.
    pub tool_secrets: Vec<String>,
    /// The app name.
    pub app_name: String,
    /// The processor binary in the image.
    pub entrypoint: String,
    /// A Modal secret holding the registry's credentials, for a private image.
    pub registry_secret: Option<String>,
    /// Whether callers must send a proxy auth token.
    pub proxy_auth: bool,
}

impl ModuleParams {
    /// The parameters of `spec` deployed from `image_ref` as `app_name`: resources from
    /// `runtime`, one Modal secret per required secret name (what `sync-secrets` creates), the
    /// entrypoint from `adapter.modal.entrypoint` or `/{image.build.binary}`.
    pub fn from_spec(
        spec: &ProcessorSpec,
        image_ref: ImagePin,
        app_name: String,
    ) -> Result<ModuleParams, Failure> {
        let entrypoint = entrypoint(spec)?;
        let runtime = &spec.runtime;
        let tool_secrets = spec.secrets.baseline().into_iter().map(ToString::to_string).collect();
        Ok(ModuleParams {
            processor_ref: spec.reference.to_string(),
            image_ref,
            timeout_s: runtime.timeout_s,
            cpu: runtime.cpu,
            memory_mib: memory_mib(runtime.memory_gb),
            gpu: runtime.gpu.clone(),
            tool_secrets,
            app_name,
            entrypoint,
            registry_secret: None,
            proxy_auth: true,
        })
    }

    /// Reads the parameters from the environment, as the seeds' `sync_modal` does;
    /// `PROCESSOR_REF` and `IMAGE_REF` are required, and what is unset comes from `spec`
    /// when the registry knows the ref.
    pub fn from_env(
        env: &EnvSnapshot,
        spec: Option<&ProcessorSpec>,
    ) -> Result<ModuleParams, Failure> {
        let get = |name: &str| env.get(name).filter(|value| !value.is_empty());
        let missing = |name: &str| {
            Failure::with_hint(
                ErrorCode::Modal,
                format!(
                    "{name} is not set; `theory modal deploy` reads the module's parameters from the environment"
                ),
                format!(
                    "set {name}, or use `theory modal start --ref … --env … --oci …`, which sets them all"
                ),
            )
        };
        let processor_ref =
            get(names::PROCESSOR_REF).ok_or_else(|| missing(names::PROCESSOR_REF))?;
        let image_ref: ImagePin = get(names::IMAGE_REF)
            .ok_or_else(|| missing(names::IMAGE_REF))?
            .parse()
            .map_err(|error: theory_core::DigestError| {
                Failure::with_hint(
                    ErrorCode::Modal,
                    format!("IMAGE_REF: {error}"),
                    "Modal runs digest-pinned images: IMAGE_REF=repo@sha256:…",
                )
            })?;
        let app_name = get(names::MODAL_APP_NAME).unwrap_or(DEFAULT_APP_NAME).to_owned();
        let mut params = match spec {
            Some(spec) => ModuleParams::from_spec(spec, image_ref, app_name)?,
            None => ModuleParams {
                processor_ref: processor_ref.to_owned(),
                image_ref,
                timeout_s: 300,
                cpu: 1.0,
                memory_mib: 2048,
                gpu: None,
                tool_secrets: Vec::new(),
                app_name,
                entrypoint: get(names::PROCESSOR_ENTRYPOINT)
                    .ok_or_else(|| missing(names::PROCESSOR_ENTRYPOINT))?
                    .to_owned(),
                registry_secret: None,
                proxy_auth: true,
            },
        };
        let number = |name: &str| -> Result<Option<f64>, Failure> {
            get(name)
                .map(|text| {
                    text.parse::<f64>()
                        .ok()
                        .filter(|value| value.is_finite() && *value > 0.0)
                        .ok_or_else(|| {
                            Failure::with_hint(
                                ErrorCode::Modal,
                                format!("{name} must be a positive number, found {text:?}"),
                                format!("unset {name} to use the spec's value"),
                            )
                        })
                })
                .transpose()
        };
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked positive; whole units"
        )]
        {
            if let Some(timeout) = number(names::TIMEOUT_S)? {
                params.timeout_s = timeout.ceil() as u64;
            }
            if let Some(memory) = number(names::MEMORY_MIB)? {
                params.memory_mib = memory.ceil() as u64;
            }
        }
        if let Some(cpu) = number(names::CPU)? {
            params.cpu = cpu;
        }
        if let Some(gpu) = env.get(names::GPU) {
            params.gpu = Some(gpu.to_owned()).filter(|gpu| !gpu.is_empty());
        }
        if let Some(secrets) = env.get(names::TOOL_SECRETS) {
            params.tool_secrets = secrets
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(entrypoint) = get(names::PROCESSOR_ENTRYPOINT) {
            entrypoint.clone_into(&mut params.entrypoint);
        }
        processor_ref.clone_into(&mut params.processor_ref);
        params.registry_secret = get(names::REGISTRY_SECRET).map(str::to_owned);
        params.proxy_auth = env.get(names::PROXY_AUTH) != Some("0");
        Ok(params)
    }

    /// The module's environment: every variable of [`VARIABLES`].
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (names::PROCESSOR_REF, self.processor_ref.clone()),
            (names::IMAGE_REF, self.image_ref.to_string()),
            (names::TIMEOUT_S, self.timeout_s.to_string()),
            (names::CPU, self.cpu.to_string()),
            (names::MEMORY_MIB, self.memory_mib.to_string()),
            (names::GPU, self.gpu.clone().unwrap_or_default()),
            (names::TOOL_SECRETS, self.tool_secrets.join(",")),
            (names::MODAL_APP_NAME, self.app_name.clone()),
            (names::PROCESSOR_ENTRYPOINT, self.entrypoint.clone()),
            (names::PROCESSOR_PORT, PROCESSOR_PORT.to_string()),
            (names::REGISTRY_SECRET, self.registry_secret.clone().unwrap_or_default()),
            (names::PROXY_AUTH, if self.proxy_auth { "1" } else { "0" }.to_owned()),
        ]
    }
}

/// `runtime.memory_gb` in MiB, rounded up.
fn memory_mib(memory_gb: f64) -> u64 {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "the registry checks memory_gb is positive and finite"
    )]
    let mib = (memory_gb * 1024.0).ceil() as u64;
    mib
}

/// The processor binary in the image: `adapter.modal.entrypoint`, else `/{image.build.binary}`.
fn entrypoint(spec: &ProcessorSpec) -> Result<String, Failure> {
    let modal = spec.adapter.modal.as_ref();
    if let Some(entrypoint) = modal.and_then(|modal| modal.entrypoint.clone()) {
        return Ok(entrypoint);
    }
    spec.image
        .build_spec()
        .and_then(|build| build.binary)
        .map(|binary| format!("/{binary}"))
        .ok_or_else(|| {
            Failure::with_hint(
                ErrorCode::Modal,
                format!("the spec of {} names no processor binary to start on Modal", spec.reference),
                "set adapter.modal.entrypoint (the binary's path in the image, as its ENTRYPOINT has it)",
            )
        })
}

/// Writes the module into `folder` (created if needed) and returns the folder.
pub fn write_module(folder: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(folder)?;
    let file = folder.join(format!("{MODULE_NAME}.py"));
    let temporary = folder.join(format!(".{MODULE_NAME}.py.tmp"));
    std::fs::write(&temporary, APP_MODULE)?;
    std::fs::rename(&temporary, &file)?;
    Ok(folder.to_owned())
}

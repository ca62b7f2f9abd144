//! The generated app module is valid: real Python imports it with the real `modal` package
//! (`THEORY_TEST_PYTHON`, else `python3`; `scripts/test` installs `modal` into its own
//! environment) and defines what `theory modal start` asked for — without contacting Modal.

use std::process::Command;

use theory_modal::{ModuleParams, write_module};

fn python() -> String {
    std::env::var("THEORY_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn params() -> ModuleParams {
    ModuleParams {
        processor_ref: "llm/litellm@1".into(),
        image_ref: format!("ghcr.io/theory/llm-litellm@sha256:{}", "ab".repeat(32))
            .parse()
            .unwrap(),
        timeout_s: 120,
        cpu: 2.0,
        memory_mib: 3072,
        gpu: Some("T4".into()),
        tool_secrets: vec!["OPENAI_API_KEY".into()],
        app_name: "feat-x-me-llm-litellm".into(),
        entrypoint: "/llm-litellm".into(),
        registry_secret: Some("REGISTRY_AUTH".into()),
        proxy_auth: true,
    }
}

/// Imports the module with `params`' variables (and `extra`) and runs `probe` after it.
fn import(params: &ModuleParams, extra: &[(&str, &str)], probe: &str) -> std::process::Output {
    let folder = tempfile::tempdir().unwrap();
    write_module(folder.path()).unwrap();
    let mut command = Command::new(python());
    command
        .arg("-c")
        .arg(format!("import modal\n{probe}"))
        .env("PYTHONPATH", folder.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(params.env())
        .envs(extra.iter().copied());
    command.output().unwrap_or_else(|error| panic!("cannot run {}: {error}", python()))
}

/// Imports the module, recording how it asks for the registry image, and describes what it defined.
const DESCRIBE: &str = r#"
import json
registry_calls = []
from_registry = modal.Image.from_registry
def recording(tag, secret=None, **options):
    registry_calls.append({"tag": tag, "secret": repr(secret), **options})
    return from_registry(tag, secret, **options)
modal.Image.from_registry = recording
import modal_app
spec = modal_app.serve._spec_
print(json.dumps({
    "modal": modal.__version__,
    "app": modal_app.app.name,
    "web": modal_app.serve._is_web_endpoint(),
    "cpu": spec.cpu, "memory": spec.memory, "gpu": str(spec.gpus),
    "secrets": [repr(secret) for secret in spec.secrets],
    "entrypoint": modal_app.PROCESSOR_ENTRYPOINT, "port": modal_app.PROCESSOR_PORT,
    "proxy_auth": modal_app.PROXY_AUTH, "timeout": modal_app.TIMEOUT_S,
    "registry": registry_calls,
}))
"#;

#[test]
fn the_module_imports_with_the_real_modal_package_and_defines_the_deployment() {
    let output = import(&params(), &[], DESCRIBE);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} could not import the module (is `modal` installed? scripts/test installs it): {stderr}",
        python()
    );
    let described: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the probe prints JSON");
    assert_eq!(described["app"], "feat-x-me-llm-litellm", "{described}");
    assert_eq!(described["web"], true, "{described}");
    assert_eq!((described["cpu"].as_f64(), described["memory"].as_u64()), (Some(2.0), Some(3072)));
    assert!(described["gpu"].as_str().unwrap().contains("T4"), "{described}");
    assert_eq!(described["secrets"][0], "modal.Secret.from_name('OPENAI_API_KEY')", "{described}");
    assert_eq!(described["entrypoint"], "/llm-litellm");
    assert_eq!(
        (described["port"].as_u64(), described["timeout"].as_u64()),
        (Some(8000), Some(120))
    );
    assert_eq!(described["proxy_auth"], true);
    // The pinned image itself, with Python added for Modal's runtime and the processor's own
    // ENTRYPOINT cleared (the function starts it), pulled with the registry secret.
    let registry = &described["registry"];
    assert_eq!(registry.as_array().map(Vec::len), Some(1), "{described}");
    assert_eq!(registry[0]["tag"], params().image_ref.to_string());
    assert_eq!(registry[0]["add_python"], "3.12");
    assert_eq!(registry[0]["setup_dockerfile_commands"], serde_json::json!(["ENTRYPOINT []"]));
    assert_eq!(registry[0]["secret"], "modal.Secret.from_name('REGISTRY_AUTH')");
}

#[test]
fn the_module_refuses_an_unpinned_image_or_a_missing_variable() {
    let output = import(
        &params(),
        &[("IMAGE_REF", "ghcr.io/theory/llm-litellm:latest")],
        "import modal_app",
    );
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("IMAGE_REF must be pinned by digest"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = import(&params(), &[("PROCESSOR_ENTRYPOINT", "")], "import modal_app");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("PROCESSOR_ENTRYPOINT is not set"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

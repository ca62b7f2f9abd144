//! Each kind of registry document parsed and checked on its own: the rules of a processor spec,
//! a schema, a policy and a prompt, with errors that name the file and the key.

use super::catalog::{KNOWN_PREDICATES, ProcessorEntry, SchemaEntry};
use super::documents::{PolicyDocument, PromptDocument, SchemaDocument};
use super::load::{RegistryError, Source, parse};
use super::prompt::PromptEntry;
use super::spec::ProcessorSpec;

/// The most attempts a retry policy may allow: a run never loops for long on a typo.
pub const MAX_RETRY_ATTEMPTS: u32 = 100;
/// The longest pause a retry policy may ask for between attempts (10 minutes).
pub const MAX_BACKOFF_MS: u64 = 10 * 60 * 1000;
/// The longest a path lease may live without its run closing (7 days).
pub const MAX_LEASE_TTL_S: u64 = 7 * 24 * 3600;

/// Checks a policy's numbers against their bounds; the error names the key.
fn check_policy(document: &PolicyDocument) -> Result<(), (&'static str, String)> {
    let attempts = document.retry.max_attempts;
    if !(1..=MAX_RETRY_ATTEMPTS).contains(&attempts) {
        return Err((
            "retry.max_attempts",
            format!("must be between 1 and {MAX_RETRY_ATTEMPTS}, found {attempts}"),
        ));
    }
    if document.retry.backoff_ms.len() > MAX_RETRY_ATTEMPTS as usize {
        return Err((
            "retry.backoff_ms",
            format!(
                "lists at most {MAX_RETRY_ATTEMPTS} pauses, found {}",
                document.retry.backoff_ms.len()
            ),
        ));
    }
    if let Some(long) = document.retry.backoff_ms.iter().find(|pause| **pause > MAX_BACKOFF_MS) {
        return Err((
            "retry.backoff_ms",
            format!("a pause is at most {MAX_BACKOFF_MS} ms (10 minutes), found {long}"),
        ));
    }
    let ttl = document.leases.default_ttl_s;
    if !(1..=MAX_LEASE_TTL_S).contains(&ttl) {
        return Err((
            "leases.default_ttl_s",
            format!("must be between 1 and {MAX_LEASE_TTL_S} s (7 days), found {ttl}"),
        ));
    }
    Ok(())
}

/// A provider file: a relative path inside the context, ending in `.py`.
fn check_python_file(path: &str) -> Result<(), String> {
    let inside = !path.starts_with('/')
        && path.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
        && !path.chars().any(theory_protocol::is_refused_path_char);
    let python = std::path::Path::new(path).extension().is_some_and(|extension| extension == "py");
    if inside && python {
        Ok(())
    } else {
        Err(format!(
            "{path:?} is not a provider file inside the build context (a relative path ending in .py, no . or .. parts)"
        ))
    }
}

/// Checks that the binary a spec names is a plain file name: the process runtime looks it up
/// beside `theory` and must never follow a path out of there.
fn check_binary_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.chars().any(theory_protocol::is_refused_path_char);
    if plain {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a plain file name (no /, no . or .., no control characters): the binary is looked up beside theory"
        ))
    }
}

/// Parses and checks a processor spec; its inputs schema is compiled by [`compile_inputs`].
pub(super) fn build_processor(source: &Source) -> Result<ProcessorEntry, RegistryError> {
    let spec: ProcessorSpec = parse(source)?;
    check_processor(&spec)
        .map_err(|(key, message)| RegistryError::new(&source.origin, Some(&key), message))?;
    Ok(ProcessorEntry {
        spec,
        origin: source.origin.clone(),
        builtin: source.builtin,
        validator: std::sync::OnceLock::new(),
    })
}

/// Compiles a processor's inputs schema (the first compile of a process also prepares the
/// JSON Schema engine: about 2 ms).
pub(super) fn compile_inputs(entry: &ProcessorEntry) -> Result<(), RegistryError> {
    let validator = jsonschema::validator_for(&entry.spec.inputs).map_err(|error| {
        RegistryError::new(
            &entry.origin,
            Some("inputs"),
            format!("not a valid JSON Schema: {error}"),
        )
    })?;
    let _ = entry.validator.set(validator);
    Ok(())
}

pub(super) fn build_schema(source: &Source) -> Result<SchemaEntry, RegistryError> {
    let document: SchemaDocument = parse(source)?;
    let validator = jsonschema::validator_for(&document.schema).map_err(|error| {
        RegistryError::new(
            &source.origin,
            Some("schema"),
            format!("not a valid JSON Schema: {error}"),
        )
    })?;
    Ok(SchemaEntry { origin: source.origin.clone(), builtin: source.builtin, document, validator })
}

pub(super) fn build_policy(source: &Source) -> Result<PolicyDocument, RegistryError> {
    let document: PolicyDocument = parse(source)?;
    check_policy(&document)
        .map_err(|(key, message)| RegistryError::new(&source.origin, Some(key), message))?;
    Ok(document)
}

pub(super) fn build_prompt(source: &Source) -> Result<PromptEntry, RegistryError> {
    let document: PromptDocument = parse(source)?;
    PromptEntry::new(document, &source.origin, source.builtin)
        .map_err(|(key, message)| RegistryError::new(&source.origin, Some(&key), message))
}

/// A processor spec's own rules (predicates known, binary and provider file names, `config_env`,
/// `cache.real_when`, prices); the error is `(key, message)`.
fn check_processor(spec: &ProcessorSpec) -> Result<(), (String, String)> {
    for (stage, uses) in
        [("admission", &spec.predicates.admission), ("success", &spec.predicates.success)]
    {
        if let Some(unknown) =
            uses.iter().find(|used| !KNOWN_PREDICATES.contains(&used.id.as_str()))
        {
            let message = format!(
                "unknown predicate {:?}; known: {}",
                unknown.id,
                KNOWN_PREDICATES.join(", ")
            );
            return Err((format!("predicates.{stage}"), message));
        }
    }
    if let Some(build) = &spec.image.build
        && let Err(message) = check_binary_name(build.binary_name())
    {
        return Err(("image.build.binary".into(), message));
    }
    if let Some(Err(message)) =
        spec.image.build.as_ref().and_then(|build| build.python.as_deref()).map(check_python_file)
    {
        return Err(("image.build.python".into(), message));
    }
    check_config_env(spec).map_err(|message| ("config_env".to_owned(), message))?;
    if let Some(condition) =
        spec.cache.real_when.iter().find(|condition| !condition.pointer.starts_with('/'))
    {
        return Err((
            "cache.real_when".into(),
            format!("{:?} is not a JSON pointer (such as /params/seed)", condition.pointer),
        ));
    }
    if let Some(pricing) = &spec.pricing {
        check_pricing(pricing)?;
    }
    Ok(())
}

/// `config_env` names settings, never secrets: a name the spec lists as a secret, or one that
/// looks like a secret, would put a secret's value in the memo key.
fn check_config_env(spec: &ProcessorSpec) -> Result<(), String> {
    for name in &spec.config_env {
        if spec.secrets.all().any(|secret| secret == name) {
            return Err(format!(
                "{name} is a secret of this spec; config_env is for settings that are not"
            ));
        }
        if crate::env::looks_secret(name.as_str()) {
            return Err(format!(
                "{name} looks like a secret; config_env is for settings that are not (list it under secrets)"
            ));
        }
    }
    Ok(())
}

/// Prices must be finite and non-negative, and every estimated key priced.
fn check_pricing(pricing: &crate::registry::PricingSpec) -> Result<(), (String, String)> {
    if let Some((key, price)) =
        pricing.usd_micro_per.iter().find(|(_, price)| !price.is_finite() || **price < 0.0)
    {
        return Err((
            format!("pricing.usd_micro_per.{key}"),
            format!("must be a finite number of micro-USD ≥ 0, found {price}"),
        ));
    }
    for (model, prices) in &pricing.models {
        if let Some((key, price)) =
            prices.iter().find(|(_, price)| !price.is_finite() || **price < 0.0)
        {
            return Err((
                format!("pricing.models.{model}.{key}"),
                format!("must be a finite number of micro-USD ≥ 0, found {price}"),
            ));
        }
    }
    if let Some(key) =
        pricing.estimate_usage.keys().find(|key| !pricing.usd_micro_per.contains_key(*key))
    {
        return Err((
            format!("pricing.estimate_usage.{key}"),
            format!("{key} has no price in pricing.usd_micro_per"),
        ));
    }
    Ok(())
}

//! The loaded registry: processors by ref, schemas, policies and prompts by id, inputs validators compiled.

use std::collections::BTreeMap;

use serde_json::Value;

use super::documents::{PolicyDocument, PromptDocument, SchemaDocument};
use super::load::{DocumentKind, RegistryError, Source, parse};
use super::prompt::PromptEntry;
use super::spec::ProcessorSpec;
use crate::ProcessorRef;

/// The policy every run follows (`orchestrator` reads its retry and lease rules).
const DEFAULT_POLICY: &str = "default@1";

/// Predicate ids a spec may use.
pub const KNOWN_PREDICATES: &[&str] =
    &["artifact.exists@1", "json.schema_ok@1", "budget.available@1"];

/// A processor spec with where it came from and its compiled inputs schema.
#[derive(Debug)]
pub struct ProcessorEntry {
    /// The spec.
    pub spec: ProcessorSpec,
    /// Its file.
    pub origin: String,
    /// Whether it is built into the binary.
    pub builtin: bool,
    validator: jsonschema::Validator,
}

/// The first way inputs break a processor's schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("inputs do not match the schema of {reference} at {}: {message}", if pointer.is_empty() { "the top level" } else { pointer })]
pub struct InputsViolation {
    /// The processor.
    pub reference: String,
    /// The JSON pointer of the failing value (empty for the whole document).
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

impl ProcessorEntry {
    /// Checks inputs (as the user wrote them) against the spec's schema.
    pub fn check_inputs(&self, inputs: &Value) -> Result<(), InputsViolation> {
        match self.validator.iter_errors(inputs).next() {
            None => Ok(()),
            Some(error) => Err(InputsViolation {
                reference: self.spec.reference.to_string(),
                pointer: error.instance_path().to_string(),
                message: error.to_string(),
            }),
        }
    }
}

/// A named schema, compiled.
#[derive(Debug)]
pub struct SchemaEntry {
    /// The document.
    pub document: SchemaDocument,
    /// Its compiled validator.
    pub validator: jsonschema::Validator,
    /// Its file.
    pub origin: String,
    /// Whether it is built into the binary.
    pub builtin: bool,
}

/// A policy with where it came from.
#[derive(Debug)]
struct PolicyEntry {
    document: PolicyDocument,
    origin: String,
    builtin: bool,
}

/// Where a loaded document came from, for the rule that decides between two with one id.
trait Placed {
    fn placed(&self) -> (&str, bool);
}

impl Placed for ProcessorEntry {
    fn placed(&self) -> (&str, bool) {
        (&self.origin, self.builtin)
    }
}

impl Placed for SchemaEntry {
    fn placed(&self) -> (&str, bool) {
        (&self.origin, self.builtin)
    }
}

impl Placed for PromptEntry {
    fn placed(&self) -> (&str, bool) {
        (&self.origin, self.builtin)
    }
}

impl Placed for PolicyEntry {
    fn placed(&self) -> (&str, bool) {
        (&self.origin, self.builtin)
    }
}

/// Adds a document under its id: a project file replaces a built-in one with the same id, a
/// built-in one never replaces a project file, and two files of the same side are refused.
fn place<K: Ord + std::fmt::Display, V: Placed>(
    map: &mut BTreeMap<K, V>,
    id: K,
    entry: V,
) -> Result<(), RegistryError> {
    if let Some(existing) = map.get(&id) {
        let ((origin, builtin), (existing_origin, existing_builtin)) =
            (entry.placed(), existing.placed());
        match (existing_builtin, builtin) {
            (true, false) => {}
            (false, true) => return Ok(()),
            _ => {
                return Err(RegistryError::new(
                    origin,
                    None,
                    format!("{id} is also defined in {existing_origin}"),
                ));
            }
        }
    }
    map.insert(id, entry);
    Ok(())
}

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

/// Everything in `registry/` (and built in), validated.
#[derive(Debug, Default)]
pub struct Registry {
    processors: BTreeMap<ProcessorRef, ProcessorEntry>,
    schemas: BTreeMap<String, SchemaEntry>,
    policies: BTreeMap<String, PolicyEntry>,
    prompts: BTreeMap<String, PromptEntry>,
    /// Every problem found while loading; a partial load keeps every other document.
    problems: Vec<RegistryError>,
    /// The ids (refs and `name@N`) a file with a problem defines, with its first problem: no
    /// other file answers for them (a built-in document, say).
    broken: BTreeMap<String, RegistryError>,
    /// Whether a file with a problem has no id that could be read: then nothing is safe to use.
    unidentified: bool,
}

/// The id a registry file declares (`ref:` of a processor, `id:` of the rest) on a top-level
/// line, read from a file that does not load.
fn declared_id(source: &Source) -> Option<String> {
    let key = match source.kind {
        DocumentKind::Processor => "ref",
        _ => "id",
    };
    // Read from the top-level `key:` line, never by parsing the text again: a hostile file (a
    // billion laughs) must cost one parse, not two.
    let prefix = format!("{key}:");
    let id =
        source.text.lines().find_map(|line| line.strip_prefix(prefix.as_str())).map(|rest| {
            rest.split(" #").next().unwrap_or(rest).trim().trim_matches(['"', '\'']).to_owned()
        })?;
    // Only an id that could name a document counts; anything else leaves the file unidentified.
    let plausible = match source.kind {
        DocumentKind::Processor => id.parse::<ProcessorRef>().is_ok(),
        _ => {
            !id.is_empty() && id.contains('@') && !id.chars().any(|c| c.is_whitespace() || c == '#')
        }
    };
    plausible.then_some(id)
}

impl Registry {
    /// Loads and checks every source; reports every problem found, not only the first.
    pub fn load(sources: Vec<Source>) -> Result<Registry, Vec<RegistryError>> {
        let registry = Registry::load_partial(sources);
        if registry.problems.is_empty() { Ok(registry) } else { Err(registry.problems) }
    }

    /// Loads every source that is valid and keeps the problems of the rest
    /// ([`Registry::problems`]): a broken file leaves out the documents it defines — and their
    /// ids answer [`Registry::broken`] with its problem, never another file's document — and
    /// nothing else.
    pub fn load_partial(sources: Vec<Source>) -> Registry {
        let mut registry = Registry::default();
        for source in sources {
            let id = declared_id(&source);
            let loaded = match id.as_deref().and_then(|id| registry.broken.get(id)) {
                Some(earlier) => Err(RegistryError::new(
                    &source.origin,
                    None,
                    format!(
                        "{} is also defined in {}, which has a problem",
                        id.as_deref().unwrap_or_default(),
                        earlier.origin
                    ),
                )),
                None => match source.kind {
                    DocumentKind::Processor => registry.add_processor(&source),
                    DocumentKind::Schema => registry.add_schema(&source),
                    DocumentKind::Policy => registry.add_policy(&source),
                    DocumentKind::Prompt => registry.add_prompt(&source),
                },
            };
            if let Err(error) = loaded {
                match id {
                    Some(id) => registry.mark_broken(id, &error),
                    None => registry.unidentified = true,
                }
                registry.problems.push(error);
            }
        }
        for (id, error) in registry.cross_check() {
            registry.mark_broken(id, &error);
            registry.problems.push(error);
        }
        // Every run follows the default policy (retries, leases): without it nothing is safe.
        if registry.broken.contains_key(DEFAULT_POLICY) {
            registry.unidentified = true;
        }
        registry
    }

    /// Leaves out every document with `id`: a file that defines it has a problem.
    fn mark_broken(&mut self, id: String, error: &RegistryError) {
        self.processors.retain(|reference, _| reference.as_str() != id);
        self.schemas.remove(&id);
        self.policies.remove(&id);
        self.prompts.remove(&id);
        self.broken.entry(id).or_insert_with(|| error.clone());
    }

    /// Every problem found while loading, in file order.
    pub fn problems(&self) -> &[RegistryError] {
        &self.problems
    }

    /// The problem of the file that defines `id` (a ref or `name@N`), when it has one.
    pub fn broken(&self, id: &str) -> Option<&RegistryError> {
        self.broken.get(id)
    }

    /// Whether a file with a problem declares no id that could be read: nothing can be known
    /// to be unaffected by it.
    pub fn has_unidentified_problems(&self) -> bool {
        self.unidentified
    }

    fn add_processor(&mut self, source: &Source) -> Result<(), RegistryError> {
        let spec: ProcessorSpec = parse(source)?;
        let validator = jsonschema::validator_for(&spec.inputs).map_err(|error| {
            RegistryError::new(
                &source.origin,
                Some("inputs"),
                format!("not a valid JSON Schema: {error}"),
            )
        })?;
        for (stage, uses) in
            [("admission", &spec.predicates.admission), ("success", &spec.predicates.success)]
        {
            if let Some(unknown) =
                uses.iter().find(|used| !KNOWN_PREDICATES.contains(&used.id.as_str()))
            {
                let key = format!("predicates.{stage}");
                let message = format!(
                    "unknown predicate {:?}; known: {}",
                    unknown.id,
                    KNOWN_PREDICATES.join(", ")
                );
                return Err(RegistryError::new(&source.origin, Some(&key), message));
            }
        }
        if let Some(build) = &spec.image.build
            && let Err(message) = check_binary_name(build.binary_name())
        {
            return Err(RegistryError::new(&source.origin, Some("image.build.binary"), message));
        }
        if let Some(Err(message)) = spec
            .image
            .build
            .as_ref()
            .and_then(|build| build.python.as_deref())
            .map(check_python_file)
        {
            return Err(RegistryError::new(&source.origin, Some("image.build.python"), message));
        }
        check_config_env(&spec)
            .map_err(|message| RegistryError::new(&source.origin, Some("config_env"), message))?;
        if let Some(condition) =
            spec.cache.real_when.iter().find(|condition| !condition.pointer.starts_with('/'))
        {
            return Err(RegistryError::new(
                &source.origin,
                Some("cache.real_when"),
                format!("{:?} is not a JSON pointer (such as /params/seed)", condition.pointer),
            ));
        }
        if let Some(pricing) = &spec.pricing {
            check_pricing(pricing).map_err(|(key, message)| {
                RegistryError::new(&source.origin, Some(&key), message)
            })?;
        }
        let entry = ProcessorEntry {
            spec,
            origin: source.origin.clone(),
            builtin: source.builtin,
            validator,
        };
        place(&mut self.processors, entry.spec.reference.clone(), entry)
    }

    fn add_schema(&mut self, source: &Source) -> Result<(), RegistryError> {
        let document: SchemaDocument = parse(source)?;
        let validator = jsonschema::validator_for(&document.schema).map_err(|error| {
            RegistryError::new(
                &source.origin,
                Some("schema"),
                format!("not a valid JSON Schema: {error}"),
            )
        })?;
        let entry = SchemaEntry {
            origin: source.origin.clone(),
            builtin: source.builtin,
            document,
            validator,
        };
        place(&mut self.schemas, entry.document.id.clone(), entry)
    }

    fn add_policy(&mut self, source: &Source) -> Result<(), RegistryError> {
        let document: PolicyDocument = parse(source)?;
        check_policy(&document)
            .map_err(|(key, message)| RegistryError::new(&source.origin, Some(key), message))?;
        let entry =
            PolicyEntry { origin: source.origin.clone(), builtin: source.builtin, document };
        place(&mut self.policies, entry.document.id.clone(), entry)
    }

    fn add_prompt(&mut self, source: &Source) -> Result<(), RegistryError> {
        let document: PromptDocument = parse(source)?;
        let entry = PromptEntry::new(document, &source.origin, source.builtin)
            .map_err(|(key, message)| RegistryError::new(&source.origin, Some(&key), message))?;
        place(&mut self.prompts, entry.document.id.clone(), entry)
    }

    /// Checks references between documents: `json.schema_ok@1` must name a known schema.
    /// Returns each problem with the ref of the processor it breaks.
    fn cross_check(&self) -> Vec<(String, RegistryError)> {
        let mut errors = Vec::new();
        for entry in self.processors.values() {
            for used in
                entry.spec.predicates.success.iter().filter(|used| used.id == "json.schema_ok@1")
            {
                match used.args.get("schema").and_then(Value::as_str) {
                    Some(id) if self.schemas.contains_key(id) => {}
                    other => errors.push((entry.spec.reference.to_string(), RegistryError::new(
                        &entry.origin,
                        Some("predicates.success"),
                        format!("json.schema_ok@1 needs args.schema naming a schema of registry/schemas, found {other:?}"),
                    ))),
                }
            }
        }
        errors
    }

    /// Returns a processor by ref.
    pub fn processor(&self, reference: &ProcessorRef) -> Option<&ProcessorEntry> {
        self.processors.get(reference)
    }

    /// Returns every processor, sorted by ref.
    pub fn processors(&self) -> impl Iterator<Item = &ProcessorEntry> {
        self.processors.values()
    }

    /// Returns a schema by id.
    pub fn schema(&self, id: &str) -> Option<&SchemaEntry> {
        self.schemas.get(id)
    }

    /// Returns every schema, sorted by id.
    pub fn schemas(&self) -> impl Iterator<Item = &SchemaEntry> {
        self.schemas.values()
    }

    /// Returns a policy by id.
    pub fn policy(&self, id: &str) -> Option<&PolicyDocument> {
        self.policies.get(id).map(|entry| &entry.document)
    }

    /// Returns every policy, sorted by id.
    pub fn policies(&self) -> impl Iterator<Item = &PolicyDocument> {
        self.policies.values().map(|entry| &entry.document)
    }

    /// Returns a prompt by id (`name@N`).
    pub fn prompt(&self, id: &str) -> Option<&PromptEntry> {
        self.prompts.get(id)
    }

    /// Returns every prompt, sorted by id.
    pub fn prompts(&self) -> impl Iterator<Item = &PromptEntry> {
        self.prompts.values()
    }

    /// Returns the refs closest to `wanted` (edit distance ≤ 3, or a shared name), best first.
    pub fn near_matches(&self, wanted: &str) -> Vec<&ProcessorRef> {
        let mut scored: Vec<(usize, &ProcessorRef)> = self
            .processors
            .keys()
            .filter_map(|reference| {
                let distance = edit_distance(wanted, reference.as_str());
                let shares_name =
                    wanted.contains(reference.name()) || reference.as_str().starts_with(wanted);
                (distance <= 3 || shares_name).then_some((distance, reference))
            })
            .collect();
        scored.sort();
        scored.into_iter().map(|(_, reference)| reference).take(3).collect()
    }
}

/// Levenshtein distance between two short strings.
fn edit_distance(left: &str, right: &str) -> usize {
    let right: Vec<char> = right.chars().collect();
    let mut previous: Vec<usize> = (0..=right.len()).collect();
    for (row, left_char) in left.chars().enumerate() {
        let mut current = vec![row + 1];
        for (column, right_char) in right.iter().enumerate() {
            let substitution = previous[column] + usize::from(left_char != *right_char);
            current.push(substitution.min(previous[column + 1] + 1).min(current[column] + 1));
        }
        previous = current;
    }
    previous[right.len()]
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

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("llm/litellm@1", "llm/litellm@1"), 0);
        assert_eq!(edit_distance("llm/litelm@1", "llm/litellm@1"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}

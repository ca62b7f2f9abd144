//! The loaded registry: processors by ref, schemas and policies by id, inputs validators compiled.

use std::collections::BTreeMap;

use serde_json::Value;

use super::documents::{PolicyDocument, SchemaDocument};
use super::load::{DocumentKind, RegistryError, Source, parse};
use super::spec::ProcessorSpec;
use crate::ProcessorRef;

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
}

/// Everything in `registry/` (and built in), validated.
#[derive(Debug, Default)]
pub struct Registry {
    processors: BTreeMap<ProcessorRef, ProcessorEntry>,
    schemas: BTreeMap<String, SchemaEntry>,
    policies: BTreeMap<String, PolicyDocument>,
}

fn replaces(
    existing_builtin: bool,
    new_builtin: bool,
    origin: &str,
    existing_origin: &str,
    id: &str,
) -> Result<bool, RegistryError> {
    match (existing_builtin, new_builtin) {
        // A project file takes the place of a built-in one.
        (true, false) => Ok(true),
        (false, true) => Ok(false),
        _ => Err(RegistryError::new(
            origin,
            None,
            format!("{id} is also defined in {existing_origin}"),
        )),
    }
}

impl Registry {
    /// Loads and checks every source; reports every problem found, not only the first.
    pub fn load(sources: Vec<Source>) -> Result<Registry, Vec<RegistryError>> {
        let mut registry = Registry::default();
        let mut errors = Vec::new();
        for source in sources {
            let loaded = match source.kind {
                DocumentKind::Processor => registry.add_processor(&source),
                DocumentKind::Schema => registry.add_schema(&source),
                DocumentKind::Policy => registry.add_policy(&source),
            };
            if let Err(error) = loaded {
                errors.push(error);
            }
        }
        errors.extend(registry.cross_check());
        if errors.is_empty() { Ok(registry) } else { Err(errors) }
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
        if let Some(existing) = self.processors.get(&spec.reference)
            && !replaces(
                existing.builtin,
                source.builtin,
                &source.origin,
                &existing.origin,
                spec.reference.as_str(),
            )?
        {
            return Ok(());
        }
        let entry = ProcessorEntry {
            spec,
            origin: source.origin.clone(),
            builtin: source.builtin,
            validator,
        };
        self.processors.insert(entry.spec.reference.clone(), entry);
        Ok(())
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
        if self.schemas.contains_key(&document.id) {
            return Err(RegistryError::new(
                &source.origin,
                Some("id"),
                format!("{} is defined twice", document.id),
            ));
        }
        self.schemas.insert(document.id.clone(), SchemaEntry { document, validator });
        Ok(())
    }

    fn add_policy(&mut self, source: &Source) -> Result<(), RegistryError> {
        let document: PolicyDocument = parse(source)?;
        if document.retry.max_attempts == 0 {
            return Err(RegistryError::new(
                &source.origin,
                Some("retry.max_attempts"),
                "must be at least 1",
            ));
        }
        if self.policies.contains_key(&document.id) && !source.builtin {
            return Err(RegistryError::new(
                &source.origin,
                Some("id"),
                format!("{} is defined twice", document.id),
            ));
        }
        self.policies.insert(document.id.clone(), document);
        Ok(())
    }

    /// Checks references between documents: `json.schema_ok@1` must name a known schema.
    fn cross_check(&self) -> Vec<RegistryError> {
        let mut errors = Vec::new();
        for entry in self.processors.values() {
            for used in
                entry.spec.predicates.success.iter().filter(|used| used.id == "json.schema_ok@1")
            {
                match used.args.get("schema").and_then(Value::as_str) {
                    Some(id) if self.schemas.contains_key(id) => {}
                    other => errors.push(RegistryError::new(
                        &entry.origin,
                        Some("predicates.success"),
                        format!("json.schema_ok@1 needs args.schema naming a schema of registry/schemas, found {other:?}"),
                    )),
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
        self.policies.get(id)
    }

    /// Returns every policy, sorted by id.
    pub fn policies(&self) -> impl Iterator<Item = &PolicyDocument> {
        self.policies.values()
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

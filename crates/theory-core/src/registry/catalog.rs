//! The loaded registry: processors by ref, schemas, policies and prompts by id, inputs validators compiled.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use super::checks::{build_policy, build_processor, build_prompt, build_schema};
use super::documents::{PolicyDocument, PromptDocument, SchemaDocument};
use super::load::{Document, DocumentKind, RegistryError, Source, parse};
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
    /// Compiled when the processor is first asked for whole ([`Registry::processor`]).
    pub(super) validator: OnceLock<jsonschema::Validator>,
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
        let violation = |pointer: String, message: String| InputsViolation {
            reference: self.spec.reference.to_string(),
            pointer,
            message,
        };
        // Compiled already for an entry [`Registry::processor`] returned.
        if self.validator.get().is_none() {
            super::checks::compile_inputs(self)
                .map_err(|problem| violation(String::new(), problem.message))?;
        }
        let Some(validator) = self.validator.get() else {
            return Err(violation(String::new(), "its inputs schema did not compile".into()));
        };
        match validator.iter_errors(inputs).next() {
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

/// One registry file, parsed and checked the first time something asks for a document it
/// defines: a command pays for the documents it uses, not for every file of the registry.
#[derive(Debug)]
struct Slot<T> {
    /// Where it came from; its text is empty until read when it is on disk (`file`).
    source: Source,
    /// The file to read its text from when it is parsed, when its id came from an index.
    file: Option<std::path::PathBuf>,
    /// Its place in the load order, for reporting problems in file order.
    order: usize,
    /// The id its top-level `ref:`/`id:` line declares; the parsed document must agree.
    id: String,
    /// Boxed: a slot is in a map with one per registry file, most of them never loaded.
    loaded: OnceLock<Result<Box<T>, RegistryError>>,
    /// For processors: its references to other documents, checked after it loads.
    references: OnceLock<Result<(), RegistryError>>,
    /// For processors: its inputs schema, compiled after it loads.
    compiled: OnceLock<Result<(), RegistryError>>,
}

impl<T> Slot<T> {
    fn on_disk(
        source: Source,
        file: Option<std::path::PathBuf>,
        order: usize,
        id: String,
    ) -> Slot<T> {
        Slot {
            source,
            file,
            order,
            id,
            loaded: OnceLock::new(),
            references: OnceLock::new(),
            compiled: OnceLock::new(),
        }
    }

    /// The document with its text: read from its file now when it has one.
    fn text(&self) -> Result<std::borrow::Cow<'_, Source>, RegistryError> {
        let Some(file) = &self.file else { return Ok(std::borrow::Cow::Borrowed(&self.source)) };
        let text = super::load::read_spec(file)
            .map_err(|error| RegistryError::new(&self.source.origin, None, error.to_string()))?;
        Ok(std::borrow::Cow::Owned(Source { text, ..self.source.clone() }))
    }
}

/// Everything in `registry/` (and built in), validated as it is used.
///
/// Loading reads every file and indexes it by the id its top-level `ref:`/`id:` line declares;
/// a document is parsed and checked (schema compiled, references resolved) the first time it is
/// asked for, once. [`Registry::problems`], [`Registry::processors`] and the other listings
/// check every file.
#[derive(Debug, Default)]
pub struct Registry {
    processors: BTreeMap<ProcessorRef, Slot<ProcessorEntry>>,
    schemas: BTreeMap<String, Slot<SchemaEntry>>,
    policies: BTreeMap<String, Slot<PolicyDocument>>,
    prompts: BTreeMap<String, Slot<PromptEntry>>,
    /// Problems found while indexing (a file whose id cannot be read, two files with one id),
    /// with their place in the load order.
    indexing_problems: Vec<(usize, RegistryError)>,
    /// The ids two files of one side define, with the problem: no file answers for them.
    broken: BTreeMap<String, RegistryError>,
    /// Whether a file with a problem has no id that could be read: then nothing is safe to use.
    unidentified: bool,
    /// Every problem, once every file has been checked.
    all_problems: OnceLock<Vec<RegistryError>>,
    /// How many files have been parsed.
    parsed: AtomicUsize,
    /// How many files were indexed.
    files: usize,
}

/// The id a registry file declares (`ref:` of a processor, `id:` of the rest) on a top-level
/// line, read without parsing the file; `None` when no such line names a plausible id.
pub fn declared_id(source: &Source) -> Option<String> {
    let key = match source.kind {
        DocumentKind::Processor => "ref",
        _ => "id",
    };
    // Read from the top-level `key:` line, never by parsing the text: a hostile file (a billion
    // laughs) must cost one parse at most, and only when it is used.
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

/// Adds a file under its id: a project file replaces a built-in one with the same id, a
/// built-in one never replaces a project file, and two files of the same side are a problem
/// (returned) that leaves the id to neither.
fn place<K: Ord + Clone, T>(
    map: &mut BTreeMap<K, Slot<T>>,
    key: K,
    slot: Slot<T>,
) -> Result<(), RegistryError> {
    if let Some(existing) = map.get(&key) {
        match (existing.source.builtin, slot.source.builtin) {
            (true, false) => {}
            (false, true) => return Ok(()),
            _ => {
                let problem = RegistryError::new(
                    &slot.source.origin,
                    None,
                    format!("{} is also defined in {}", slot.id, existing.source.origin),
                );
                map.remove(&key);
                return Err(problem);
            }
        }
    }
    map.insert(key, slot);
    Ok(())
}

/// A parsed document's id against the one its file's top-level line declares.
fn check_declared(source: &Source, declared: &str, parsed: &str) -> Result<(), RegistryError> {
    if declared == parsed {
        Ok(())
    } else {
        Err(RegistryError::new(
            &source.origin,
            None,
            format!("its top-level line declares {declared} but the document defines {parsed}"),
        ))
    }
}

impl Registry {
    /// Loads and checks every source; reports every problem found, not only the first.
    pub fn load(sources: Vec<Source>) -> Result<Registry, Vec<RegistryError>> {
        let registry = Registry::load_partial(sources);
        if registry.problems().is_empty() {
            Ok(registry)
        } else {
            Err(registry.problems().to_vec())
        }
    }

    /// Indexes every source by the id it declares, to be parsed when used: a broken file leaves
    /// out the documents it defines — and their ids answer [`Registry::broken`] with its
    /// problem, never another file's document — and nothing else. A file whose id cannot be
    /// read without parsing is parsed now (to learn it); when even that fails, nothing is safe
    /// ([`Registry::has_unidentified_problems`]).
    pub fn load_partial(sources: Vec<Source>) -> Registry {
        Registry::load_documents(sources.into_iter().map(Document::Text).collect())
    }

    /// [`Registry::load_partial`] of documents in memory and files on disk whose ids an index
    /// remembers (read when they are used, and checked to define that id).
    pub fn load_documents(documents: Vec<Document>) -> Registry {
        let mut registry = Registry { files: documents.len(), ..Registry::default() };
        for (order, document) in documents.into_iter().enumerate() {
            let (source, file, known) = match document {
                Document::Text(source) => (source, None, None),
                Document::File(file) => {
                    let source = Source {
                        origin: file.origin,
                        kind: file.kind,
                        text: String::new(),
                        builtin: false,
                    };
                    (source, Some(file.path), Some(file.id))
                }
            };
            let id = match known.or_else(|| declared_id(&source)) {
                Some(id) => id,
                None => match registry.id_by_parsing(&source) {
                    Ok(id) => id,
                    Err(problem) => {
                        registry.unidentified = true;
                        registry.indexing_problems.push((order, problem));
                        continue;
                    }
                },
            };
            if let Some(earlier) = registry.broken.get(&id) {
                let problem = RegistryError::new(
                    &source.origin,
                    None,
                    format!("{id} is also defined in {}, which has a problem", earlier.origin),
                );
                registry.indexing_problems.push((order, problem));
                continue;
            }
            let placed = match source.kind {
                DocumentKind::Processor => match id.parse::<ProcessorRef>() {
                    Ok(reference) => place(
                        &mut registry.processors,
                        reference,
                        Slot::on_disk(source, file, order, id.clone()),
                    ),
                    Err(error) => {
                        Err(RegistryError::new(&source.origin, Some("ref"), error.to_string()))
                    }
                },
                DocumentKind::Schema => place(
                    &mut registry.schemas,
                    id.clone(),
                    Slot::on_disk(source, file, order, id.clone()),
                ),
                DocumentKind::Policy => place(
                    &mut registry.policies,
                    id.clone(),
                    Slot::on_disk(source, file, order, id.clone()),
                ),
                DocumentKind::Prompt => place(
                    &mut registry.prompts,
                    id.clone(),
                    Slot::on_disk(source, file, order, id.clone()),
                ),
            };
            if let Err(problem) = placed {
                registry.broken.insert(id, problem.clone());
                registry.indexing_problems.push((order, problem));
            }
        }
        registry
    }

    /// The id of a file whose top-level line does not declare one, by parsing it.
    fn id_by_parsing(&self, source: &Source) -> Result<String, RegistryError> {
        self.parsed.fetch_add(1, Ordering::Relaxed);
        Ok(match source.kind {
            DocumentKind::Processor => parse::<ProcessorSpec>(source)?.reference.to_string(),
            DocumentKind::Schema => parse::<SchemaDocument>(source)?.id,
            DocumentKind::Policy => parse::<PolicyDocument>(source)?.id,
            DocumentKind::Prompt => parse::<PromptDocument>(source)?.id,
        })
    }

    /// Every problem found while loading, in file order: checks every file not checked yet.
    pub fn problems(&self) -> &[RegistryError] {
        self.all_problems.get_or_init(|| {
            let mut found: Vec<(usize, RegistryError)> = self.indexing_problems.clone();
            let mut references = Vec::new();
            for slot in self.processors.values() {
                match self.processor_of(slot) {
                    Err(problem)
                        if slot.references.get().is_some_and(Result::is_err)
                            && slot.compiled.get().is_none() =>
                    {
                        references.push((slot.order, problem.clone()));
                    }
                    Err(problem) => found.push((slot.order, problem.clone())),
                    Ok(_) => {}
                }
            }
            for slot in self.schemas.values() {
                if let Err(problem) = self.schema_of(slot) {
                    found.push((slot.order, problem.clone()));
                }
            }
            for slot in self.policies.values() {
                if let Err(problem) = self.policy_of(slot) {
                    found.push((slot.order, problem.clone()));
                }
            }
            for slot in self.prompts.values() {
                if let Err(problem) = self.prompt_of(slot) {
                    found.push((slot.order, problem.clone()));
                }
            }
            found.sort_by_key(|(order, _)| *order);
            // Problems between documents come after the problems of each file.
            references.sort_by_key(|(order, _)| *order);
            found.into_iter().chain(references).map(|(_, problem)| problem).collect()
        })
    }

    /// The problems known without checking any more files: those found while indexing, and
    /// those of the documents used so far.
    pub fn known_problems(&self) -> Vec<RegistryError> {
        if let Some(all) = self.all_problems.get() {
            return all.clone();
        }
        let mut found = self.indexing_problems.clone();
        let loaded = |loaded: Option<&RegistryError>, order| loaded.cloned().map(|p| (order, p));
        found.extend(self.processors.values().filter_map(|slot| {
            let problem = match (slot.loaded.get(), slot.references.get(), slot.compiled.get()) {
                (Some(Err(problem)), _, _)
                | (_, Some(Err(problem)), _)
                | (_, _, Some(Err(problem))) => Some(problem),
                _ => None,
            };
            loaded(problem, slot.order)
        }));
        found.extend(self.schemas.values().filter_map(|slot| {
            loaded(slot.loaded.get().and_then(|result| result.as_ref().err()), slot.order)
        }));
        found.extend(self.policies.values().filter_map(|slot| {
            loaded(slot.loaded.get().and_then(|result| result.as_ref().err()), slot.order)
        }));
        found.extend(self.prompts.values().filter_map(|slot| {
            loaded(slot.loaded.get().and_then(|result| result.as_ref().err()), slot.order)
        }));
        found.sort_by_key(|(order, _)| *order);
        found.into_iter().map(|(_, problem)| problem).collect()
    }

    /// The problem of the file that defines `id` (a ref or `name@N`), when it has one; checks
    /// that file if it has not been.
    pub fn broken(&self, id: &str) -> Option<&RegistryError> {
        if let Some(problem) = self.broken.get(id) {
            return Some(problem);
        }
        if let Some(slot) = id.parse::<ProcessorRef>().ok().and_then(|r| self.processors.get(&r)) {
            return self.processor_of(slot).err();
        }
        if let Some(slot) = self.schemas.get(id) {
            return self.schema_of(slot).err();
        }
        if let Some(slot) = self.policies.get(id) {
            return self.policy_of(slot).err();
        }
        self.prompts.get(id).and_then(|slot| self.prompt_of(slot).err())
    }

    /// Whether a file with a problem declares no id that could be read, or the default policy
    /// every run follows has a problem: nothing can be known to be unaffected by it.
    pub fn has_unidentified_problems(&self) -> bool {
        self.unidentified || self.broken(DEFAULT_POLICY).is_some()
    }

    /// How many registry files were read.
    pub fn files(&self) -> usize {
        self.files
    }

    /// How many registry files have been parsed so far: a command parses what it uses.
    pub fn files_parsed(&self) -> usize {
        self.parsed.load(Ordering::Relaxed)
    }

    fn processor_of<'a>(
        &self,
        slot: &'a Slot<ProcessorEntry>,
    ) -> Result<&'a ProcessorEntry, &'a RegistryError> {
        let entry = self.spec_of(slot)?;
        slot.references.get_or_init(|| self.check_references(entry)).as_ref()?;
        slot.compiled.get_or_init(|| super::checks::compile_inputs(entry)).as_ref()?;
        Ok(entry)
    }

    /// A document of `slot`, parsed and built the first time it is asked for (then counted in
    /// [`Registry::files_parsed`]); it must define the id its file was indexed by.
    fn loaded<'a, T>(
        &self,
        slot: &'a Slot<T>,
        build: fn(&Source) -> Result<T, RegistryError>,
        id_of: fn(&T) -> &str,
    ) -> Result<&'a T, &'a RegistryError> {
        slot.loaded
            .get_or_init(|| {
                self.parsed.fetch_add(1, Ordering::Relaxed);
                let document = build(&*slot.text()?)?;
                check_declared(&slot.source, &slot.id, id_of(&document))?;
                Ok(Box::new(document))
            })
            .as_ref()
            .map(|document| &**document)
    }

    /// A processor's spec parsed and checked, its inputs schema not compiled yet.
    fn spec_of<'a>(
        &self,
        slot: &'a Slot<ProcessorEntry>,
    ) -> Result<&'a ProcessorEntry, &'a RegistryError> {
        self.loaded(slot, build_processor, |entry| entry.spec.reference.as_str())
    }

    fn schema_of<'a>(
        &self,
        slot: &'a Slot<SchemaEntry>,
    ) -> Result<&'a SchemaEntry, &'a RegistryError> {
        self.loaded(slot, build_schema, |entry| &entry.document.id)
    }

    fn policy_of<'a>(
        &self,
        slot: &'a Slot<PolicyDocument>,
    ) -> Result<&'a PolicyDocument, &'a RegistryError> {
        self.loaded(slot, build_policy, |document| &document.id)
    }

    fn prompt_of<'a>(
        &self,
        slot: &'a Slot<PromptEntry>,
    ) -> Result<&'a PromptEntry, &'a RegistryError> {
        self.loaded(slot, build_prompt, |entry| &entry.document.id)
    }

    /// Checks a processor's references to other documents: `json.schema_ok@1` must name a
    /// schema of the registry that loads.
    fn check_references(&self, entry: &ProcessorEntry) -> Result<(), RegistryError> {
        for used in
            entry.spec.predicates.success.iter().filter(|used| used.id == "json.schema_ok@1")
        {
            match used.args.get("schema").and_then(Value::as_str) {
                Some(id) if self.schema(id).is_some() => {}
                other => {
                    return Err(RegistryError::new(
                        &entry.origin,
                        Some("predicates.success"),
                        format!(
                            "json.schema_ok@1 needs args.schema naming a schema of registry/schemas, found {other:?}"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Returns a processor by ref (parsed and checked on first use); `None` when it is unknown
    /// or its file has a problem ([`Registry::broken`] says which).
    pub fn processor(&self, reference: &ProcessorRef) -> Option<&ProcessorEntry> {
        if self.broken.contains_key(reference.as_str()) {
            return None;
        }
        self.processors.get(reference).and_then(|slot| self.processor_of(slot).ok())
    }

    /// Returns a processor's spec, parsed and checked but with its inputs schema not compiled
    /// yet (reading its secrets, say, costs no schema compile); `None` as
    /// [`Registry::processor`] would give, or when only compiling its schema would tell.
    pub fn processor_spec(&self, reference: &ProcessorRef) -> Option<&ProcessorEntry> {
        if self.broken.contains_key(reference.as_str()) {
            return None;
        }
        self.processors.get(reference).and_then(|slot| self.spec_of(slot).ok())
    }

    /// Returns every processor that loads, sorted by ref (checks every processor file).
    pub fn processors(&self) -> impl Iterator<Item = &ProcessorEntry> {
        self.processors.values().filter_map(|slot| self.processor_of(slot).ok())
    }

    /// Returns a schema by id.
    pub fn schema(&self, id: &str) -> Option<&SchemaEntry> {
        self.schemas.get(id).and_then(|slot| self.schema_of(slot).ok())
    }

    /// Returns every schema that loads, sorted by id.
    pub fn schemas(&self) -> impl Iterator<Item = &SchemaEntry> {
        self.schemas.values().filter_map(|slot| self.schema_of(slot).ok())
    }

    /// Returns a policy by id.
    pub fn policy(&self, id: &str) -> Option<&PolicyDocument> {
        self.policies.get(id).and_then(|slot| self.policy_of(slot).ok())
    }

    /// Returns every policy that loads, sorted by id.
    pub fn policies(&self) -> impl Iterator<Item = &PolicyDocument> {
        self.policies.values().filter_map(|slot| self.policy_of(slot).ok())
    }

    /// Returns a prompt by id (`name@N`).
    pub fn prompt(&self, id: &str) -> Option<&PromptEntry> {
        self.prompts.get(id).and_then(|slot| self.prompt_of(slot).ok())
    }

    /// Returns every prompt that loads, sorted by id.
    pub fn prompts(&self) -> impl Iterator<Item = &PromptEntry> {
        self.prompts.values().filter_map(|slot| self.prompt_of(slot).ok())
    }

    /// Returns the refs closest to `wanted` (edit distance ≤ 3, or a shared name), best first,
    /// among the refs the registry's files declare.
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

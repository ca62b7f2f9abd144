//! The registry: processor specs, schemas, policies and prompts, read from YAML (`registry/` and the files
//! built into the binary), validated with errors that name the file and the key.
//!
//! - `spec`: [`ProcessorSpec`] and its parts.
//! - `documents`: [`SchemaDocument`], [`PolicyDocument`], [`PromptDocument`].
//! - `prompt`: [`PromptEntry`], a prompt template checked and parsed.
//! - `load`: [`Source`], [`sources_from_dir`], [`RegistryError`].
//! - `catalog`: [`Registry`], files indexed by id and each parsed when first used, with
//!   near-match suggestions.
//! - `checks`: each kind of document parsed and checked on its own (schemas compiled).
//! - `describe`: a processor as JSON ([`ProcessorEntry::summary`], [`ProcessorEntry::document`]).

mod catalog;
mod checks;
mod describe;
mod documents;
mod load;
mod prompt;
mod spec;

pub use catalog::{
    InputsViolation, KNOWN_PREDICATES, ProcessorEntry, Registry, SchemaEntry, declared_id,
};
pub use checks::{MAX_BACKOFF_MS, MAX_LEASE_TTL_S, MAX_RETRY_ATTEMPTS};
pub use documents::{
    BudgetPolicy, LeasePolicy, PolicyDocument, PromptDocument, PromptVar, RetryPolicy,
    SchemaDocument,
};
pub use load::{
    Document, DocumentKind, FileSource, RegistryError, Source, list_dir, read_spec,
    sources_from_dir,
};
pub use prompt::PromptEntry;
pub use spec::{
    AdapterSpec, BuildSpec, CacheSpec, ImageSpec, InputCondition, ModalSpec, OutputSpec,
    OutputsSpec, Platform, PredicateUse, PredicatesSpec, PricingSpec, ProcessorSpec, RealReuse,
    RuntimeSpec, SecretName, SecretsByInput, SecretsSpec,
};

//! The domain of Theory and the orchestrator that drives a run.
//!
//! # Layout
//!
//! - Types that cannot hold bad values: [`ProcessorRef`], [`WorldPath`], [`WritePrefix`],
//!   [`Digest`], [`ImagePin`], and from the protocol [`Cid`] and [`ExecutionId`]
//!   ([`new_execution_id`] makes time-ordered ones).
//! - [`registry`]: processor specs, schemas, policies and prompts from YAML, validated.
//! - The ports: [`Adapter`] (where processors run) and [`ArtifactStore`] (where artifacts go);
//!   their backends live in other crates (`theory-local`, `theory-store`).
//! - [`attachments`]: `--attach name=path` files, hashed, stored and referenced from the inputs.
//! - [`prompts`]: `{"$prompt":"name@N","vars":{…}}` in the inputs, rendered from the registry.
//! - [`ledger`]: the port to the record of runs and the money of plans.
//! - [`session`]: the orchestrator's side of `theory.run.v1`, shared by every adapter.
//! - [`orchestrator`]: [`Orchestrator::run`] — mode and CI guard, inputs schema, plan, memo cache,
//!   secrets, start, session, index, receipts, envelope.
//! - [`hashing`], [`Fingerprint`], [`Receipt`]: what makes runs reproducible and provable;
//!   [`attestation`]: a receipt and its outputs as a signed in-toto statement (DSSE, Ed25519).
//! - [`env`](mod@env): the environment snapshot and the secret [`Redactor`].
//!
//! # Data flow
//!
//! The CLI builds an [`Orchestrator`] (registry, store, adapters, memo cache, environment) and a
//! [`RunRequest`]; the orchestrator validates, asks the adapter for a [`Plan`] (runtime and image
//! identity, no side effects), consults the memo cache, starts an [`Instance`], runs the session
//! — outputs stream into the store while hashed — and writes the index and receipts.

pub mod attachments;
pub mod attestation;
pub mod cancel;
mod canonical;
pub mod collision;
mod digest;
pub mod env;
mod failure;
pub mod files;
mod fingerprint;
pub mod hashing;
mod ids;
pub mod json_map;
mod kinds;
pub mod ledger;
mod options;
pub mod orchestrator;
mod ports;
mod processor_ref;
pub mod prompts;
mod receipt;
pub mod registry;
pub mod session;
pub mod time;
pub mod tls;
pub mod verify;
mod world_path;

pub use digest::{Digest, DigestError, ImagePin};
pub use env::{EnvSnapshot, Redactor};
pub use failure::Failure;
pub use fingerprint::Fingerprint;
pub use ids::new_execution_id;
pub use kinds::{AdapterKind, PlanKey, Runtime, UnknownKind};
pub use options::AdapterOptions;
pub use orchestrator::{Orchestrator, RunOutcome, RunRequest};
pub use ports::{
    Adapter, ArtifactStore, ByteStream, Instance, Launch, ObjectWriter, Plan, StoreError,
};
pub use processor_ref::{ProcessorRef, ProcessorRefError};
pub use receipt::{AttestationNote, Receipt};
pub use theory_protocol::{Cid, ExecutionId, Mode};
pub use world_path::{
    FACETS, MAX_PATH_CHARS, MAX_SEGMENT_CHARS, RESERVED_FACETS, WorldPath, WorldPathError,
    WritePrefix,
};

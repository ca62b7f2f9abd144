//! `llm/litellm@1` as a host process and in its container: the conformance suite, mock outputs,
//! and real mode against a local server that speaks the providers' streaming APIs.

mod attachments;
mod conformance;
mod container;
mod mock;
mod real;
mod registry_spec;
mod support;

//! Integration tests of theory-core: the orchestrator through a real protocol session, the
//! registry, and properties of the core types.

mod fuzz;
mod lying_processor;
mod orchestrator;
mod properties;
mod registry;
mod support;

//! The checks of the conformance suite, grouped by what they exercise.

pub(crate) mod cancel;
pub(crate) mod failures;
pub(crate) mod files;
pub(crate) mod http;
pub(crate) mod replay;
pub(crate) mod resources;
pub(crate) mod runs;
pub(crate) mod support;
pub(crate) mod uploads;

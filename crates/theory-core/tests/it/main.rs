//! Integration tests of theory-core.

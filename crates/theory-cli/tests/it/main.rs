//! The `theory` binary, end to end.

//! Artifact store backends behind `theory_core::ArtifactStore`.
//!
//! - [`FsStore`]: files under a folder (`.theory/artifacts/` by default), written to a temporary
//!   file and renamed into place.

mod fs;

pub use fs::FsStore;

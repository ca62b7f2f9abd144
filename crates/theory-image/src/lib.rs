//! Reproducible processor images, built without pulling anything.
//!
//! - [`dockerfile`]: the Dockerfile subset of a `FROM scratch` image, parsed into a [`Recipe`].
//! - [`archive`]: the one-layer image as a `docker save` tarball with fixed timestamps, owners,
//!   modes and order, so the same sources give the same image ID.
//! - [`build`]: a static `cargo build` of the processor's binary, then the tarball.
//! - [`context`]: the build context of any other Dockerfile, as one deterministic tarball for the
//!   Docker Engine's build API, and the base images a Dockerfile names.

pub mod archive;
pub mod build;
pub mod context;
pub mod dockerfile;

pub use archive::{Archive, ImagePlatform, LayerFile, write_archive};
pub use build::{BuildError, BuildPlatform, BuildRequest, Built, PLATFORMS, build_image};
pub use context::{ExtraFile, base_images, left_out, write_context};
pub use dockerfile::{Copy, DockerfileError, Recipe};

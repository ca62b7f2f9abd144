//! Theory's view of a Docker Engine, over bollard.
//!
//! - [`Docker`]: a connection with the API version negotiated (Docker 20.10 speaks 1.41) and
//!   every failure sorted into [`DockerError`]: the engine is unreachable, an object is missing,
//!   or the engine refused.
//! - `images`: load a `docker save` tarball (streamed from disk), tag, push with progress, pull.
//! - `credentials`: a private registry's credentials, from `REGISTRY_USERNAME`/`REGISTRY_PASSWORD`
//!   or `docker login`'s configuration.
//! - `registry_api`: [`RegistryApi`], the registry's own API: manifests, their platforms, and
//!   the OCI image index `theory processor push` publishes.
//! - `builds`: any Dockerfile through the engine's build API, from a context tarball.
//! - `containers`: create and start a processor container with its port on 127.0.0.1, find
//!   Theory's containers by label, read logs, remove.

mod builds;
mod client;
mod containers;
mod credentials;
mod images;
mod registry_api;

pub use bollard::auth::DockerCredentials;
pub use builds::EngineBuild;
pub use client::{Docker, DockerError};
pub use containers::{ContainerInfo, ContainerSpec, ContainerState, LABEL_PREFIX, labels};
pub use credentials::{CredentialSources, registry_of};
pub use images::{ImageInfo, Progress};
pub use registry_api::{Descriptor, OCI_INDEX, RegistryApi, RegistryApiError};

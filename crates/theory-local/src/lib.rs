//! The local adapter: processors on this host, as processes or in Docker containers.
//!
//! - [`LocalAdapter`] implements `theory_core::Adapter`: it picks the runtime, plans (finds the
//!   binary or image and its identity, so the memo key names exactly what runs) and starts
//!   instances.
//! - `process`: the `process` runtime — the processor's own binary on `127.0.0.1:0`, its address
//!   read from the `{"listening":…}` line it prints, ready once `/healthz` answers, killed when its
//!   instance is dropped; its stderr goes to our log.
//! - `docker`: the `docker` runtime — the processor's image in a labelled container, port on
//!   127.0.0.1, limits from the spec, `/info` checked against the expected image, removed on
//!   every exit path; `reaper` removes containers of runs whose `theory` process died.
//! - `image_choice`: pin for the platform, else the newest local build.
//! - `services`: `theory local start|run|stop|status|logs` — long-lived containers on ports
//!   that persist in `.theory/local_ports.json`.
//! - `python_env`: the virtual environment, SDK and source copy a Python processor runs from in
//!   the `process` runtime, prepared by `theory processor build` under `.theory/python/`.
//! - `identity`: the `b3:` identity of a host binary, cached by file stamp.
//! - `health`: the `/healthz` probe.

mod adapter;
mod docker;
mod health;
mod identity;
mod image_choice;
mod ports;
mod process;
mod python_env;
mod random;
mod reaper;
mod services;

pub use adapter::{LocalAdapter, registry_credentials};
pub use docker::{
    CONTAINER_PORT, ContainerKind, ContainerLaunch, DockerInstance, check_identity,
    container_log_tail,
};
pub use health::{healthy_once, wait_healthy};
pub use identity::{IdentityCache, hash_file};
pub use image_choice::{ImageChoice, choose_image, local_image_tag, local_repository};
pub use ports::PortBook;
pub use process::{BinarySearch, ProcessInstance, ProcessSettings, kill_process_groups};
pub use python_env::{
    LAUNCHER, PythonEnv, PythonEnvError, PythonEnvRequest, PythonSource, materialize,
    prepare_python_env, python_env_folder, sdk_files, sdk_requirements,
};
pub use services::{ServiceAdapter, ServiceInfo, Services};

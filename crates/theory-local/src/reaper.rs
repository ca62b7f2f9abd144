//! Containers of runs whose `theory` process died (killed, machine slept through a crash) are
//! removed the next time a run plans with Docker.

use theory_docker::{Docker, labels};

use crate::docker::hostname;

/// Removes `run` containers whose owning process on this host is gone.
pub(crate) async fn reap_orphans(docker: &Docker) {
    let Ok(found) = docker.containers(&[(labels::MANAGED, "true"), (labels::KIND, "run")]).await
    else {
        return;
    };
    let here = hostname();
    for container in found {
        let Some((pid, host)) =
            container.labels.get(labels::OWNER).and_then(|owner| owner.split_once('@'))
        else {
            continue;
        };
        let Ok(pid) = pid.parse::<i32>() else { continue };
        if host == here && !alive(pid) {
            tracing::info!(container = %container.name, pid, "removing the container of a run whose theory process is gone");
            docker.remove_container(&container.id).await;
        }
    }
}

fn alive(pid: i32) -> bool {
    // Signal 0 checks existence; EPERM means it exists but is someone else's.
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(errno) => errno == nix::errno::Errno::EPERM,
    }
}

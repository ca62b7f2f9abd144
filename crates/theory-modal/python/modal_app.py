"""Theory on Modal: one pinned processor image served as a web server on the processor port.

Written by `theory modal start|deploy` and deployed with `modal deploy -m modal_app`; do not edit.
Everything comes from environment variables at deploy time, and is baked into the image's
environment so the module defines the same app when Modal imports it again in the container:

- PROCESSOR_REF: the processor, ns/name@ver
- IMAGE_REF: the digest-pinned image, repo@sha256:...
- TIMEOUT_S, CPU, MEMORY_MIB, GPU (empty: none): the resource profile
- TOOL_SECRETS: comma-separated Modal secret names mounted into the container
- MODAL_APP_NAME: the app name (default theory-rt)
- PROCESSOR_ENTRYPOINT: the processor binary in the image (its own entrypoint)
- PROCESSOR_PORT: the port it listens on (default 8000)
- REGISTRY_SECRET: a Modal secret with REGISTRY_USERNAME and REGISTRY_PASSWORD for a private
  registry (empty: a public image)
- PROXY_AUTH: 1 (default) makes callers send Modal-Key and Modal-Secret; 0 opens the endpoint
"""

import os
import subprocess

import modal


def _setting(name, default=None):
    value = os.environ.get(name, "")
    if value:
        return value
    if default is None:
        raise RuntimeError(f"{name} is not set; deploy this module with `theory modal deploy`")
    return default


PROCESSOR_REF = _setting("PROCESSOR_REF")
IMAGE_REF = _setting("IMAGE_REF")
TIMEOUT_S = int(_setting("TIMEOUT_S", "300"))
CPU = float(_setting("CPU", "1"))
MEMORY_MIB = int(_setting("MEMORY_MIB", "2048"))
GPU = _setting("GPU", "") or None
TOOL_SECRETS = [name for name in _setting("TOOL_SECRETS", "").split(",") if name]
MODAL_APP_NAME = _setting("MODAL_APP_NAME", "theory-rt")
PROCESSOR_ENTRYPOINT = _setting("PROCESSOR_ENTRYPOINT")
PROCESSOR_PORT = int(_setting("PROCESSOR_PORT", "8000"))
REGISTRY_SECRET = _setting("REGISTRY_SECRET", "")
PROXY_AUTH = _setting("PROXY_AUTH", "1") == "1"

if "@sha256:" not in IMAGE_REF:
    raise RuntimeError(f"IMAGE_REF must be pinned by digest (repo@sha256:...), got {IMAGE_REF!r}")

# Modal runs its own Python runtime in the container: the processor's ENTRYPOINT is cleared so that
# it does not take the runtime's place, and `serve` starts the processor instead. The runtime is a
# standalone glibc build of Python, so the image needs glibc (a FROM scratch image does not run).
image = modal.Image.from_registry(
    IMAGE_REF,
    secret=modal.Secret.from_name(REGISTRY_SECRET) if REGISTRY_SECRET else None,
    setup_dockerfile_commands=["ENTRYPOINT []"],
    add_python="3.12",
).env(
    {
        # The processor's own settings: listen on every interface, report the pinned digest.
        "HOST": "0.0.0.0",
        "PORT": str(PROCESSOR_PORT),
        "THEORY_IMAGE_DIGEST": IMAGE_REF.rsplit("@", 1)[1],
        # This module's settings, for its import inside the container.
        "PROCESSOR_REF": PROCESSOR_REF,
        "IMAGE_REF": IMAGE_REF,
        "TIMEOUT_S": str(TIMEOUT_S),
        "CPU": str(CPU),
        "MEMORY_MIB": str(MEMORY_MIB),
        "GPU": GPU or "",
        "TOOL_SECRETS": ",".join(TOOL_SECRETS),
        "MODAL_APP_NAME": MODAL_APP_NAME,
        "PROCESSOR_ENTRYPOINT": PROCESSOR_ENTRYPOINT,
        "PROCESSOR_PORT": str(PROCESSOR_PORT),
        "REGISTRY_SECRET": REGISTRY_SECRET,
        "PROXY_AUTH": "1" if PROXY_AUTH else "0",
    }
)

app = modal.App(MODAL_APP_NAME)


@app.function(
    image=image,
    cpu=CPU,
    memory=MEMORY_MIB,
    gpu=GPU,
    timeout=TIMEOUT_S,
    secrets=[modal.Secret.from_name(name) for name in TOOL_SECRETS],
)
@modal.concurrent(max_inputs=1)
@modal.web_server(port=PROCESSOR_PORT, startup_timeout=60, requires_proxy_auth=PROXY_AUTH)
def serve():
    """Starts the processor; Modal routes the endpoint's HTTP and WebSocket traffic to its port."""
    subprocess.Popen([PROCESSOR_ENTRYPOINT])

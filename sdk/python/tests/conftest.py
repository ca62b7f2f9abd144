"""A served provider for the tests: ``python -m theory_processor serve`` on a free port."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE = os.path.join(HERE, "..", "examples", "probe.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    def __init__(self, provider: str, env=None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        environment = dict(os.environ, PORT=str(self.port), HOST="127.0.0.1", THEORY_WORKERS="2")
        environment.update(env or {})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "theory_processor", "serve", provider, "--ref", "theory/pyprobe@1"],
            env=environment,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("the processor did not answer /healthz within 30 s")

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=20)


@pytest.fixture
def served():
    server = Served(PROBE, {"THEORY_CANCEL_GRACE_MS": "500"})
    yield server
    server.stop()

"""A real `theory serve` (the binary `cargo build` made) in a project of its own, per test module."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[3]
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Server:
    """A running server: its URL, its project, and a way to run `theory` there."""

    def __init__(self, project: Path, args: list[str]):
        self.project = project
        self.binary = Path(os.environ.get("THEORY_BIN", ROOT / "target" / "debug" / "theory"))
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            # Named, not found by walking up: a `.theory/` in a parent folder must not leak in.
            "THEORY_PROJECT": str(project),
            "THEORY_PROCESSOR_PATH": str(self.binary.parent),
            "THEORY_LOCAL_RUNTIME": "process",
            "THEORY_LOG": "warn",
            "THEORY_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "THEORY_WEBHOOK_RETRY_S": "0.2,0.2",
        }
        self.process = subprocess.Popen(
            [str(self.binary), "serve", "--listen", "127.0.0.1:0", *args],
            cwd=project, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        try:
            self.url = "http://" + json.loads(line)["listening"]
        except (ValueError, KeyError):
            self.process.kill()
            raise RuntimeError(f"theory serve printed {line!r} instead of its address") from None

    def theory(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.binary), *args], cwd=self.project, env=self.env,
                              capture_output=True, text=True, check=False)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with tempfile.TemporaryDirectory() as project:
        running = Server(Path(project), ["--no-auth", "--allow-private-webhooks"])
        try:
            yield running
        finally:
            assert running.stop() == 0


@pytest.fixture()
def fresh_project() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as project:
        yield Path(project)

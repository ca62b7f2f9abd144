"""Input files: received as ``File`` frames after ``RunOpen``, or fetched from their
``get_url``; either way written to the run's scratch folder while hashed, then verified
(``ERR_INPUT_INTEGRITY`` when the bytes are not what was declared)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import urllib.request
from typing import Any, Awaitable, Callable, Dict

import blake3

from .protocol import Failure, cancelled

READ_CHUNK = 1024 * 1024


def _integrity(message: str) -> Failure:
    return Failure("ERR_INPUT_INTEGRITY", message)


class Incoming:
    """A file being written while its bytes arrive."""

    def __init__(self, scratch: str, world_path: str, spec: Dict[str, Any]) -> None:
        self.world_path = world_path
        self.spec = spec
        folder = os.path.join(scratch, "inputs")
        os.makedirs(folder, mode=0o700, exist_ok=True)
        base = re.sub(r"[^A-Za-z0-9._-]", "_", world_path.rsplit("/", 1)[-1]).lstrip(".")
        self.path = os.path.join(folder, f"{len(os.listdir(folder)):04}-{base}")
        self.file = open(self.path, "wb")
        self.hasher = blake3.blake3()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        if self.size + len(chunk) > int(self.spec.get("size_bytes", 0)):
            raise _integrity(f"input file {self.world_path} is longer than its declared {self.spec.get('size_bytes')} bytes")
        self.hasher.update(chunk)
        self.file.write(chunk)
        self.size += len(chunk)

    def complete(self) -> bool:
        return self.size == int(self.spec.get("size_bytes", 0))

    def finish(self) -> Dict[str, Any]:
        self.file.close()
        if not self.complete():
            raise _integrity(f"input file {self.world_path} has {self.size} bytes, declared {self.spec.get('size_bytes')}")
        cid = "b3:" + self.hasher.hexdigest()
        if cid != self.spec.get("cid"):
            raise _integrity(f"input file {self.world_path} has CID {cid}, declared {self.spec.get('cid')}")
        return {"path": self.path, "cid": cid, "size_bytes": self.size, "mime": self.spec.get("mime")}


async def receive(
    next_message: Callable[[], Awaitable[dict]],
    scratch: str,
    pending: Dict[str, Dict[str, Any]],
    wait: float,
    on_control: Callable[[dict], None],
    cancel: asyncio.Event,
) -> Dict[str, Dict[str, Any]]:
    """Receives the ``File`` frames of every spec in ``pending``; other text frames (control)
    go to ``on_control``, and a cancel ends the wait (``ERR_CANCELLED``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    receiving = _Receiving(scratch, pending, on_control)
    cancel_seen = asyncio.ensure_future(cancel.wait())
    try:
        while receiving.pending or receiving.current is not None:
            getting = asyncio.ensure_future(next_message())
            done, _ = await asyncio.wait(
                {getting, cancel_seen},
                timeout=max(0.0, deadline - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if getting not in done:
                getting.cancel()
                if cancel_seen in done:
                    raise cancelled()
                raise _integrity("input files never arrived: " + ", ".join(sorted(receiving.pending)))
            receiving.take(getting.result())
    finally:
        cancel_seen.cancel()
    return receiving.received


class _Receiving:
    """The files of one run as their frames arrive."""

    def __init__(self, scratch: str, pending: Dict[str, Dict[str, Any]], on_control) -> None:
        self.scratch = scratch
        self.pending = pending
        self.on_control = on_control
        self.received: Dict[str, Dict[str, Any]] = {}
        self.current = None

    def take(self, message: dict) -> None:
        try:
            self._take(message)
        except Failure:
            raise
        except Exception as error:  # noqa: BLE001 - a malformed frame fails the run, not the server
            raise _integrity(f"input files could not be received: {type(error).__name__}: {error}") from None

    def _take(self, message: dict) -> None:
        if message["type"] == "websocket.disconnect":
            raise _integrity("the connection closed before the input files arrived")
        if message.get("bytes") is not None:
            if self.current is None:
                raise _integrity("file bytes arrived before their File frame")
            self.current.write(message["bytes"])
        elif message.get("text") is not None:
            self.header(message["text"])
        if self.current is not None and self.current.complete():
            self.received[self.current.world_path] = self.current.finish()
            self.current = None

    def header(self, text: str) -> None:
        try:
            value = json.loads(text)
        except ValueError:
            return
        if not isinstance(value, dict):
            return
        if value.get("kind") != "File":
            self.on_control(value)
            return
        if self.current is not None:
            raise _integrity(f"input file {self.current.world_path} was cut short by the next File frame")
        path = str((value.get("content") or {}).get("path"))
        spec = self.pending.pop(path, None)
        if spec is None:
            raise _integrity(f"a File frame for {path!r}, which the payload does not declare")
        self.current = Incoming(self.scratch, path, spec)


def download(url: str, scratch: str, world_path: str, spec: Dict[str, Any]) -> Dict[str, Any]:
    """Fetches one ``get_url`` file (in a thread), verified like a sent one."""
    incoming = None
    try:
        incoming = Incoming(scratch, world_path, spec)
        with urllib.request.urlopen(url, timeout=60) as answer:
            while True:
                chunk = answer.read(READ_CHUNK)
                if not chunk:
                    break
                incoming.write(chunk)
        return incoming.finish()
    except Failure:
        raise
    except Exception as error:  # noqa: BLE001 - any failure to fetch, said without the URL
        # Never the URL: a presigned URL carries a credential.
        raise Failure("ERR_INPUT_INTEGRITY", f"input file {world_path} could not be fetched: {type(error).__name__}") from None
    finally:
        if incoming is not None:
            incoming.file.close()

"""The HTTP side: an ASGI app (no framework) that uvicorn serves — ``GET /healthz``,
``GET /info`` and the ``/run`` WebSocket of ``theory.run.v1``.

Settings come from the environment, with the Rust SDK's names: ``PORT`` (8000), ``HOST``
(0.0.0.0), ``THEORY_IMAGE_DIGEST``, ``THEORY_CANCEL_GRACE_MS`` (2000),
``THEORY_RUN_RETENTION_S`` (300), ``THEORY_MAX_RETAINED_RUNS`` (64), ``THEORY_FILE_WAIT_S``
(60), ``THEORY_SCRATCH_DIR``; and ``THEORY_WORKERS``, the worker processes (runs at once; 4).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from typing import Any

from . import protocol
from . import files
from .driver import Settings, drive, scratch_of
from .protocol import Failure
from .pool import Pool
from .runs import OutputEntry, Run, Runs

SEND_CHUNK = 256 * 1024
HEALTHY = b'{"ok":true}'


def _number(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise SystemExit(f"error: {name}={text!r}: expected a number") from None


class App:
    """The ASGI application of one provider."""

    def __init__(self, provider: str, reference: str, processor_info: str) -> None:
        scratch = os.environ.get("THEORY_SCRATCH_DIR") or os.path.join(tempfile.gettempdir(), "theory-processor")
        self.settings = Settings(
            reference=reference,
            processor_info=processor_info,
            image_digest=os.environ.get("THEORY_IMAGE_DIGEST") or None,
            cancel_grace=_number("THEORY_CANCEL_GRACE_MS", 2000) / 1000,
            scratch_root=os.path.join(scratch, str(os.getpid())),
        )
        self.file_wait = _number("THEORY_FILE_WAIT_S", 60)
        self.runs = Runs(
            _number("THEORY_RUN_RETENTION_S", 300),
            int(_number("THEORY_MAX_RETAINED_RUNS", 64)),
            unclaimed_for=self.file_wait,
        )
        self.pool = Pool(provider, {}, int(_number("THEORY_WORKERS", 4)))
        self.tasks: set = set()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.pool.start()
                except Exception as error:  # noqa: BLE001 - reported as the startup's failure
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                janitor = asyncio.ensure_future(self._sweep())
                self.tasks.add(janitor)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in list(self.tasks):
                    task.cancel()
                await self.pool.close()
                self.runs.forget_all()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _sweep(self) -> None:
        """Forgets runs past their time even when no new connection comes to trigger it."""
        while True:
            await asyncio.sleep(5)
            self.runs.evict()

    async def _http(self, scope, send) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/healthz":
            await _respond(send, 200, HEALTHY) if method == "GET" else await _not_allowed(send)
        elif path == "/info":
            body = json.dumps({
                "protocol": protocol.SUBPROTOCOL,
                "ref": self.settings.reference,
                "image_digest": self.settings.image_digest,
                "processor_info": self.settings.processor_info,
            }).encode()
            await _respond(send, 200, body) if method == "GET" else await _not_allowed(send)
        elif path == "/run":
            await _respond(send, 426, b'{"error":"open /run as a WebSocket with subprotocol theory.run.v1"}')
        else:
            await _respond(send, 404, b'{"error":"not found"}')

    async def _websocket(self, scope, receive, send) -> None:
        connect = await receive()
        if connect["type"] != "websocket.connect":
            return
        if scope["path"] != "/run" or protocol.SUBPROTOCOL not in scope.get("subprotocols", []):
            # Refused before the upgrade: the server answers 403.
            await send({"type": "websocket.close", "code": protocol.POLICY_VIOLATION})
            return
        await send({"type": "websocket.accept", "subprotocol": protocol.SUBPROTOCOL})
        opened = await self._read_run_open(receive, send)
        if opened is None:
            return
        role, execution_id, payload = opened
        run = self.runs.attach(execution_id)
        run.readers += 1
        answers: asyncio.Queue = asyncio.Queue(maxsize=16)
        reader = asyncio.ensure_future(self._read(receive, run, role, payload, answers))
        writer = asyncio.ensure_future(self._write(send, run, answers))
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if writer in done:
                try:
                    await asyncio.wait_for(reader, 1.0)
                except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - the peer left
                    reader.cancel()
            else:
                writer.cancel()
        finally:
            run.readers -= 1

    async def _read_run_open(self, receive, send):
        try:
            message = await asyncio.wait_for(receive(), self.file_wait)
        except asyncio.TimeoutError:
            await _close(send, protocol.POLICY_VIOLATION, "no RunOpen arrived in time")
            return None
        if message["type"] != "websocket.receive":
            return None
        if message.get("text") is None:
            await _close(send, protocol.PROTOCOL_ERROR, "first frame must be a RunOpen text frame")
            return None
        try:
            return protocol.parse_run_open(message["text"])
        except protocol.Refusal as refusal:
            await _close(send, refusal.code, refusal.reason)
            return None

    async def _read(self, receive, run: Run, role: str, payload, answers: asyncio.Queue) -> None:
        def on_control(value: dict) -> None:
            if role == "observer" or value.get("kind") != "control":
                return
            op = str((value.get("content") or {}).get("op", ""))
            if op.lower() in protocol.CANCEL_OPS:
                run.request_cancel()
            elif not answers.full():
                answers.put_nowait(protocol.frame("Event", {"phase": "control_noop", "op": op[:64]}))

        if role == "client" and payload is not None and not run.claimed:
            run.claimed = True
            declared = payload.get("files") or {}
            pending = {
                path: spec for path, spec in (declared.items() if isinstance(declared, dict) else ())
                if isinstance(spec, dict) and not spec.get("get_url")
            }
            received: Any = {}
            if pending:
                try:
                    received = await files.receive(
                        receive, scratch_of(self.settings, run), pending, self.file_wait, on_control, run.cancel
                    )
                except Failure as failure:
                    received = failure
            task = asyncio.ensure_future(drive(self.settings, self.pool, run, payload, received))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        while True:
            try:
                message = await receive()
            except Exception:  # noqa: BLE001 - the connection is gone
                return
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                continue
            try:
                value = json.loads(text)
            except ValueError:
                continue
            if isinstance(value, dict):
                on_control(value)

    async def _write(self, send, run: Run, answers: asyncio.Queue) -> None:
        await send({"type": "websocket.send", "text": protocol.frame("Ack", {"execution_id": run.execution_id})})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.file_wait
        seen = 0
        while True:
            entries, finished = run.since(seen)
            for entry in entries:
                await _send_entry(send, entry)
            seen += len(entries)
            if finished:
                while not answers.empty():
                    await send({"type": "websocket.send", "text": answers.get_nowait()})
                await _close(send, protocol.NORMAL, "run finished")
                return
            while not answers.empty():
                await send({"type": "websocket.send", "text": answers.get_nowait()})
            waiting = None if run.claimed or seen > 0 else max(0.0, deadline - loop.time())
            changed = asyncio.ensure_future(run.wait_past(seen, waiting))
            answered = asyncio.ensure_future(answers.get())
            try:
                done, _ = await asyncio.wait({changed, answered}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                # Cancelled itself (the peer left), or one of the two came: none is left waiting.
                for waiting_task in (changed, answered):
                    if not waiting_task.done():
                        waiting_task.cancel()
            if answered in done:
                await send({"type": "websocket.send", "text": answered.result()})
            if changed in done and not changed.result() and not run.claimed:
                self.runs.drop_unclaimed(run)
                await _close(send, protocol.POLICY_VIOLATION, "no client started this execution_id")
                return


async def _send_entry(send, entry) -> None:
    if isinstance(entry, str):
        await send({"type": "websocket.send", "text": entry})
        return
    assert isinstance(entry, OutputEntry)
    await send({"type": "websocket.send", "text": entry.header})
    if isinstance(entry.body, bytes):
        for start in range(0, len(entry.body), SEND_CHUNK):
            await send({"type": "websocket.send", "bytes": entry.body[start:start + SEND_CHUNK]})
        return
    sent = 0
    with open(entry.body, "rb") as file:
        while sent < entry.size_bytes:
            chunk = await asyncio.to_thread(file.read, min(SEND_CHUNK, entry.size_bytes - sent))
            if not chunk:
                break
            sent += len(chunk)
            await send({"type": "websocket.send", "bytes": chunk})
    if sent != entry.size_bytes:
        # The file changed under us: the header's promise would break; the connection is dropped.
        raise OSError(f"an output file shrank from {entry.size_bytes} to {sent} bytes")


async def _close(send, code: int, reason: str) -> None:
    await send({"type": "websocket.close", "code": code, "reason": reason.encode()[:123].decode(errors="ignore")})


async def _respond(send, status: int, body: bytes, headers=()) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
    })
    await send({"type": "http.response.body", "body": body})


async def _not_allowed(send) -> None:
    await _respond(send, 405, b'{"error":"method not allowed"}', [(b"allow", b"GET")])

"""`Client` and `AsyncClient`: the same methods, blocking or awaited, over `httpx`."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, BinaryIO, Iterator

import httpx

from ._errors import RunFailed, TheoryError, error_from

FINAL = ("succeeded", "failed", "cancelled")
# How long one `Prefer: wait` request holds (the server's own cap is 60 s).
WAIT_S = 55
# How often a dropped event stream is opened again (after the last event seen).
RECONNECTS = 5


@dataclass
class Run:
    """A run as the server describes it."""

    id: str
    status: str
    ref: str | None = None
    mode: str | None = None
    adapter: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    envelope: dict[str, Any] | None = None
    urls: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> "Run":
        known = {name: document.get(name) for name in cls.__dataclass_fields__}
        known["urls"] = known.get("urls") or {}
        return cls(**known)

    @property
    def done(self) -> bool:
        """Whether the run ended."""
        return self.status in FINAL

    @property
    def outputs(self) -> list[dict[str, Any]]:
        """The outputs of a successful run: `{path, cid, size_bytes, mime}` each."""
        if self.envelope and self.envelope.get("status") == "success":
            return list(self.envelope.get("outputs", []))
        return []


@dataclass
class Event:
    """One frame of a run's stream (`kind`: `Token`, `Log`, `Event`, `Output`, `RunResult`), or
    its end (`kind` `end`, `data` the run)."""

    seq: int | None
    kind: str
    data: Any

    @property
    def token(self) -> str | None:
        """The text of a `Token` frame."""
        if self.kind == "Token" and isinstance(self.data, dict):
            return (self.data.get("content") or {}).get("text")
        return None


def _body(ref: str, inputs: dict[str, Any] | None, options: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"ref": ref}
    if inputs is not None:
        body["inputs"] = inputs
    body.update({name: value for name, value in options.items() if value is not None})
    return body


def _check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            document = response.json()
        except ValueError:
            document = None
        raise error_from(response.status_code, document)
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    return response.content


def _finished(run: Run) -> Run:
    if run.status in ("failed", "cancelled"):
        raise RunFailed(run)
    return run


class _Parser:
    """Server-Sent Events, line by line."""

    def __init__(self) -> None:
        self.seq: int | None = None
        self.kind = ""
        self.data: list[str] = []

    def feed(self, line: str) -> Event | None:
        if line == "":
            if not self.kind and not self.data:
                return None
            text = "\n".join(self.data)
            try:
                data: Any = json.loads(text)
            except ValueError:
                data = text
            event = Event(self.seq, self.kind or "message", data)
            self.seq, self.kind, self.data = None, "", []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            self.seq = int(value) if value.isdigit() else None
        elif name == "event":
            self.kind = value
        elif name == "data":
            self.data.append(value)
        return None


class Client:
    """A blocking client of `theory serve`."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 90.0,
                 transport: httpx.BaseTransport | None = None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connections."""
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return _check(self._http.request(method, path, **kwargs))

    def submit(self, ref: str, inputs: dict[str, Any] | None = None, *, mode: str | None = None,
               adapter: str | None = None, plan: str | None = None, idempotency_key: str | None = None,
               wait: float | None = None, **options: Any) -> Run:
        """Queues a run; returns it at once (or when it ends within `wait` seconds)."""
        headers = {}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if wait:
            headers["Prefer"] = f"wait={int(wait)}"
        body = _body(ref, inputs, dict(options, mode=mode, adapter=adapter, plan=plan))
        return Run.from_json(self._call("POST", "/v1/runs", json=body, headers=headers))

    def wait(self, run_id: str, timeout: float | None = None) -> Run:
        """Waits until the run ends (or `timeout` seconds pass) and returns it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = WAIT_S if deadline is None else max(0, min(WAIT_S, deadline - time.monotonic()))
            run = Run.from_json(self._call("GET", f"/v1/runs/{run_id}", headers={"Prefer": f"wait={int(left)}"}))
            if run.done or (deadline is not None and time.monotonic() >= deadline):
                return run

    def run(self, ref: str, inputs: dict[str, Any] | None = None, *, timeout: float | None = None,
            **options: Any) -> Run:
        """Submits a run and waits for it; raises `RunFailed` when it fails or is cancelled."""
        run = self.submit(ref, inputs, wait=WAIT_S, **options)
        if not run.done:
            run = self.wait(run.id, timeout)
        return _finished(run)

    def get_run(self, run_id: str) -> Run:
        """The run as it is now."""
        return Run.from_json(self._call("GET", f"/v1/runs/{run_id}"))

    def list_runs(self, *, status: str | None = None, ref: str | None = None, plan: str | None = None,
                  limit: int = 20) -> Iterator[Run]:
        """Runs, newest first, every page."""
        params: dict[str, Any] = {"status": status, "ref": ref, "plan": plan, "limit": limit}
        params = {name: value for name, value in params.items() if value is not None}
        while True:
            page = self._call("GET", "/v1/runs", params=params)
            for document in page["runs"]:
                yield Run.from_json(document)
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    def cancel(self, run_id: str) -> Run:
        """Cancels a run (`ERR_CANCELLED`); a queued one never starts."""
        return Run.from_json(self._call("POST", f"/v1/runs/{run_id}/cancel"))

    def receipt(self, run_id: str) -> dict[str, Any]:
        """The run's receipt (`determinism.json`)."""
        return self._call("GET", f"/v1/runs/{run_id}/receipt")

    def attestation(self, run_id: str) -> dict[str, Any]:
        """The run's signed attestation (`attestation.json`: a DSSE envelope of an in-toto
        Statement); `NotFound` for an unsigned run."""
        return self._call("GET", f"/v1/runs/{run_id}/attestation")

    def stream(self, run_id: str, after: int = 0) -> Iterator[Event]:
        """The run's frames as they arrive, then an `end` event with the run."""
        for _ in range(RECONNECTS + 1):
            try:
                headers = {"Accept": "text/event-stream", "Last-Event-ID": str(after)}
                with self._http.stream("GET", f"/v1/runs/{run_id}/events", headers=headers,
                                       timeout=httpx.Timeout(None, connect=10)) as response:
                    if response.status_code >= 400:
                        response.read()
                        _check(response)
                    parser = _Parser()
                    for line in response.iter_lines():
                        event = parser.feed(line)
                        if event is None:
                            continue
                        if event.seq is not None:
                            after = event.seq
                        yield event
                        if event.kind == "end":
                            return
            except (httpx.TransportError, httpx.StreamError):
                continue
        raise TheoryError("ERR_CONNECTION", f"the event stream of run {run_id} kept breaking off")

    def stream_tokens(self, run_id: str) -> Iterator[str]:
        """The text of the run's tokens as they arrive."""
        for event in self.stream(run_id):
            if event.token is not None:
                yield event.token

    def upload(self, data: bytes | BinaryIO, name: str | None = None, mime: str | None = None) -> dict[str, Any]:
        """Stores a file as an input; returns the reference to put in a run's `inputs`."""
        params = {"name": name} if name else {}
        headers = {"Content-Type": mime} if mime else {}
        return self._call("POST", "/v1/uploads", params=params, headers=headers, content=data)

    def get_artifact(self, path: str, run: str | None = None) -> bytes:
        """An artifact's bytes (an output's world path, say)."""
        params = {"run": run} if run else {}
        response = self._http.get(f"/v1/artifacts{path}", params=params)
        _check(response)
        return response.content

    def download(self, path: str, file: BinaryIO, run: str | None = None) -> int:
        """Streams an artifact into `file`; returns its size."""
        params = {"run": run} if run else {}
        size = 0
        with self._http.stream("GET", f"/v1/artifacts{path}", params=params) as response:
            if response.status_code >= 400:
                response.read()
                _check(response)
            for chunk in response.iter_bytes():
                file.write(chunk)
                size += len(chunk)
        return size

    def processors(self) -> list[dict[str, Any]]:
        """Every processor the server knows."""
        return self._call("GET", "/v1/processors")["processors"]

    def plans(self) -> list[dict[str, Any]]:
        """The plans the caller sees."""
        return self._call("GET", "/v1/plans")["plans"]


class AsyncClient:
    """The same client, awaited."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 90.0,
                 transport: httpx.AsyncBaseTransport | None = None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout, transport=transport)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the connections."""
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return _check(await self._http.request(method, path, **kwargs))

    async def submit(self, ref: str, inputs: dict[str, Any] | None = None, *, mode: str | None = None,
                     adapter: str | None = None, plan: str | None = None,
                     idempotency_key: str | None = None, wait: float | None = None, **options: Any) -> Run:
        """Queues a run; returns it at once (or when it ends within `wait` seconds)."""
        headers = {}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if wait:
            headers["Prefer"] = f"wait={int(wait)}"
        body = _body(ref, inputs, dict(options, mode=mode, adapter=adapter, plan=plan))
        return Run.from_json(await self._call("POST", "/v1/runs", json=body, headers=headers))

    async def wait(self, run_id: str, timeout: float | None = None) -> Run:
        """Waits until the run ends (or `timeout` seconds pass) and returns it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = WAIT_S if deadline is None else max(0, min(WAIT_S, deadline - time.monotonic()))
            document = await self._call("GET", f"/v1/runs/{run_id}", headers={"Prefer": f"wait={int(left)}"})
            run = Run.from_json(document)
            if run.done or (deadline is not None and time.monotonic() >= deadline):
                return run

    async def run(self, ref: str, inputs: dict[str, Any] | None = None, *, timeout: float | None = None,
                  **options: Any) -> Run:
        """Submits a run and waits for it; raises `RunFailed` when it fails or is cancelled."""
        run = await self.submit(ref, inputs, wait=WAIT_S, **options)
        if not run.done:
            run = await self.wait(run.id, timeout)
        return _finished(run)

    async def get_run(self, run_id: str) -> Run:
        """The run as it is now."""
        return Run.from_json(await self._call("GET", f"/v1/runs/{run_id}"))

    async def cancel(self, run_id: str) -> Run:
        """Cancels a run (`ERR_CANCELLED`); a queued one never starts."""
        return Run.from_json(await self._call("POST", f"/v1/runs/{run_id}/cancel"))

    async def receipt(self, run_id: str) -> dict[str, Any]:
        """The run's receipt (`determinism.json`)."""
        return await self._call("GET", f"/v1/runs/{run_id}/receipt")

    async def attestation(self, run_id: str) -> dict[str, Any]:
        """The run's signed attestation (`attestation.json`); `NotFound` for an unsigned run."""
        return await self._call("GET", f"/v1/runs/{run_id}/attestation")

    async def stream(self, run_id: str, after: int = 0) -> AsyncIterator[Event]:
        """The run's frames as they arrive, then an `end` event with the run."""
        for _ in range(RECONNECTS + 1):
            try:
                headers = {"Accept": "text/event-stream", "Last-Event-ID": str(after)}
                async with self._http.stream("GET", f"/v1/runs/{run_id}/events", headers=headers,
                                             timeout=httpx.Timeout(None, connect=10)) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        _check(response)
                    parser = _Parser()
                    async for line in response.aiter_lines():
                        event = parser.feed(line)
                        if event is None:
                            continue
                        if event.seq is not None:
                            after = event.seq
                        yield event
                        if event.kind == "end":
                            return
            except (httpx.TransportError, httpx.StreamError):
                continue
        raise TheoryError("ERR_CONNECTION", f"the event stream of run {run_id} kept breaking off")

    async def stream_tokens(self, run_id: str) -> AsyncIterator[str]:
        """The text of the run's tokens as they arrive."""
        async for event in self.stream(run_id):
            if event.token is not None:
                yield event.token

    async def upload(self, data: bytes, name: str | None = None, mime: str | None = None) -> dict[str, Any]:
        """Stores a file as an input; returns the reference to put in a run's `inputs`."""
        params = {"name": name} if name else {}
        headers = {"Content-Type": mime} if mime else {}
        return await self._call("POST", "/v1/uploads", params=params, headers=headers, content=data)

    async def get_artifact(self, path: str, run: str | None = None) -> bytes:
        """An artifact's bytes."""
        params = {"run": run} if run else {}
        response = await self._http.get(f"/v1/artifacts{path}", params=params)
        _check(response)
        return response.content

    async def processors(self) -> list[dict[str, Any]]:
        """Every processor the server knows."""
        return (await self._call("GET", "/v1/processors"))["processors"]



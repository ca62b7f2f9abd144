"""The life of one run on the server's side: inputs → worker → outputs → ``RunResult``."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any, Dict, List, Tuple

import blake3

from . import files, protocol, uploads
from .pool import Pool
from .protocol import Failure
from .runs import OutputEntry, Run

READ_CHUNK = 1024 * 1024


class Settings:
    """What the server was started with (from the environment, see ``server.py``)."""

    def __init__(self, reference: str, processor_info: str, image_digest, cancel_grace: float, scratch_root: str) -> None:
        self.reference = reference
        self.processor_info = processor_info
        self.image_digest = image_digest
        self.cancel_grace = cancel_grace
        self.scratch_root = scratch_root

    def ref_slug(self) -> str:
        return self.reference.split("@")[0].replace("/", "_")


async def drive(settings: Settings, pool: Pool, run: Run, payload: Dict[str, Any], received) -> None:
    """Runs ``payload`` (its sent input files ``received``, or the :class:`Failure` receiving
    them met) and appends every frame of it to ``run``'s log, ``RunResult`` last."""
    started = time.monotonic()
    mode = payload.get("mode") if payload.get("mode") in ("mock", "real") else "mock"
    template = payload.get("write_prefix")
    if not isinstance(template, str) or not template:
        template = f"/artifacts/outputs/{settings.ref_slug()}/{{execution_id}}/"
    prefix = protocol.expand_write_prefix(template, run.execution_id)
    meta: Dict[str, Any] = {
        "processor_ref": settings.reference,
        "mode": mode,
        "processor_info": settings.processor_info,
    }
    if settings.image_digest:
        meta["image_digest"] = settings.image_digest
    try:
        if isinstance(received, Failure):
            raise received
        _check_shapes(payload)
        try:
            outputs = await _execute(settings, pool, run, payload, mode, prefix, meta, received)
        except Failure:
            raise
        except Exception as error:  # noqa: BLE001 - every failure still ends in a RunResult
            raise Failure("ERR_RUNTIME", f"the run failed: {type(error).__name__}") from None
        # A cancel that came while the outputs went out wins: the run does not end as a success.
        if run.cancel.is_set():
            raise protocol.cancelled()
        meta["duration_ms"] = int((time.monotonic() - started) * 1000)
        run.push(protocol.frame("Event", {"phase": "completed"}))
        content = {
            "status": "success",
            "execution_id": run.execution_id,
            "outputs": outputs,
            "index_path": prefix + "outputs.json",
            "meta": meta,
        }
    except Failure as failure:
        meta["duration_ms"] = int((time.monotonic() - started) * 1000)
        if failure.code != "ERR_CANCELLED":
            run.push(protocol.frame("Event", {"phase": "failed"}))
        content = {
            "status": "error",
            "execution_id": run.execution_id,
            "error": {"code": failure.code, "message": failure.message},
            "meta": meta,
        }
    run.finish(protocol.frame("RunResult", content))


def _check_shapes(payload: Dict[str, Any]) -> None:
    """The payload's maps hold what the protocol says (``ERR_INPUTS`` otherwise)."""
    files = payload.get("files") or {}
    if not isinstance(files, dict) or not all(isinstance(spec, dict) for spec in files.values()):
        raise Failure("ERR_INPUTS", "payload.files must map world paths to file specs")
    for spec in files.values():
        url = spec.get("get_url")
        if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            raise Failure("ERR_INPUTS", "a get_url must be an http or https URL")
    put_urls = payload.get("put_urls") or {}
    if not isinstance(put_urls, dict) or not all(
        isinstance(key, str) and isinstance(url, str) and url.startswith(("http://", "https://"))
        for key, url in put_urls.items()
    ):
        raise Failure("ERR_INPUTS", "payload.put_urls must map keys to http or https URLs")


async def _execute(settings, pool, run, payload, mode, prefix, meta, received) -> List[Dict[str, Any]]:
    if run.cancel.is_set():
        raise protocol.cancelled()
    try:
        inputs = protocol.normalize_inputs(payload.get("inputs", {}), mode)
    except protocol.InputsError as error:
        raise Failure("ERR_INPUTS", str(error)) from None
    scratch = scratch_of(settings, run)
    fetched = dict(received)
    for world_path, spec in (payload.get("files") or {}).items():
        if (spec or {}).get("get_url"):
            fetched[world_path] = await asyncio.to_thread(files.download, spec["get_url"], scratch, world_path, spec)
        if run.cancel.is_set():
            raise protocol.cancelled()
    inputs["files"] = fetched
    run.push(protocol.frame("Event", {"phase": "started"}))

    def on_event(message: tuple) -> None:
        if message[0] == "token":
            run.push(protocol.frame("Token", {"text": message[2]}))
        elif message[0] == "log":
            run.push(protocol.frame("Log", {"level": message[2], "msg": message[3]}))

    outcome = await pool.run(
        run.execution_id, inputs, scratch, on_event, run.cancel, settings.cancel_grace
    )
    if not outcome["ok"]:
        raise Failure(outcome["code"], outcome["message"])
    if outcome["processor_info"]:
        meta["processor_info"] = outcome["processor_info"]
    if outcome["usage"]:
        meta["usage"] = outcome["usage"]
    if outcome["extra"]:
        meta["extra"] = outcome["extra"]
    prepared = await _prepare(outcome["outputs"])
    if run.cancel.is_set():
        raise protocol.cancelled()
    if payload.get("put_urls"):
        entries, skipped = await asyncio.to_thread(
            uploads.carry_out, payload["put_urls"], prepared, prefix, run.cancel.is_set
        )
        if skipped:
            meta["skipped_outputs"] = skipped
        return entries
    entries = []
    for relpath, mime, cid, size, body in prepared:
        header = {"path": relpath, "mime": mime, "size_bytes": size, "cid": cid}
        run.push(OutputEntry(protocol.frame("Output", header), body, size))
        entries.append({"path": prefix + relpath, "cid": cid, "size_bytes": size, "mime": mime})
    return entries


def scratch_of(settings: Settings, run: Run) -> str:
    """Where the run's scratch folder goes: made by whoever first writes there (input files, the
    handler's ``ctx.scratch_dir()``), removed when the run is forgotten."""
    if run.scratch is None:
        run.scratch = os.path.join(settings.scratch_root, uuid.uuid4().hex)
    return run.scratch


async def _prepare(outputs: List[Dict[str, Any]]) -> List[Tuple[str, str, str, int, Any]]:
    """Checks the paths, hashes each output (a file in a thread, read in chunks), in path order."""
    seen = set()
    for output in outputs:
        why = protocol.validate_relpath(output["relpath"])
        if why:
            raise Failure("ERR_OUTPUT_PATH", why)
        if output["relpath"] in seen:
            raise Failure("ERR_OUTPUT_PATH", f"output path {output['relpath']!r} is produced twice")
        seen.add(output["relpath"])
    prepared = []
    for output in sorted(outputs, key=lambda output: output["relpath"]):
        mime = protocol.mime_of(output["relpath"], output.get("meta"))
        if "bytes" in output:
            body = output["bytes"]
            prepared.append((output["relpath"], mime, protocol.cid_of(body), len(body), body))
        else:
            path = output["file"]
            try:
                cid, size = await asyncio.to_thread(_hash_file, path)
            except OSError as error:
                raise Failure("ERR_RUNTIME", f"cannot read output file for {output['relpath']!r}: {error}") from None
            prepared.append((output["relpath"], mime, cid, size, path))
    return prepared


def _hash_file(path: str) -> Tuple[str, int]:
    hasher = blake3.blake3()
    size = 0
    with open(path, "rb") as file:
        while True:
            chunk = file.read(READ_CHUNK)
            if not chunk:
                return "b3:" + hasher.hexdigest(), size
            hasher.update(chunk)
            size += len(chunk)

"""``theory.run.v1`` on the processor's side: frames, the handshake's rules, inputs, paths, CIDs.

The contract is ``PROTOCOL.md``; the Rust SDK (``crates/theory-processor``) is the reference
implementation this one mirrors.
"""

from __future__ import annotations

import json
import mimetypes
import time
import unicodedata
from typing import Any, Dict, Optional, Tuple

import blake3

SUBPROTOCOL = "theory.run.v1"
INPUTS_SCHEMA = "v1"

# Close codes.
NORMAL = 1000
PROTOCOL_ERROR = 1002
POLICY_VIOLATION = 1008

MAX_RELPATH_BYTES = 1024
MAX_SEGMENT_BYTES = 255
RESERVED_RELPATHS = ("outputs.json", "receipt.json")
ROLES = ("client", "controller", "observer")
CANCEL_OPS = ("preempt", "cancel")


def now_ms() -> int:
    return int(time.time() * 1000)


def frame(kind: str, content: Dict[str, Any]) -> str:
    """A text frame: ``{"kind", "content", "t"}``, compact."""
    return json.dumps({"kind": kind, "content": content, "t": now_ms()}, separators=(",", ":"))


class Refusal(Exception):
    """A first frame the handshake refuses, with the close code that says so."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def parse_run_open(text: str) -> Tuple[str, str, Optional[Dict[str, Any]]]:
    """``(role, execution_id, payload)`` of a first frame, or :class:`Refusal`."""
    try:
        value = json.loads(text)
    except ValueError as error:
        raise Refusal(PROTOCOL_ERROR, f"first frame is not JSON: {error}") from None
    if not isinstance(value, dict) or value.get("kind") != "RunOpen":
        raise Refusal(PROTOCOL_ERROR, "first frame must be RunOpen")
    content = value.get("content")
    if not isinstance(content, dict):
        raise Refusal(PROTOCOL_ERROR, "RunOpen has no content object")
    role = content.get("role")
    if not isinstance(role, str) or role.lower() not in ROLES:
        raise Refusal(POLICY_VIOLATION, "role must be client, controller or observer")
    execution_id = content.get("execution_id")
    if not isinstance(execution_id, str) or not execution_id:
        raise Refusal(POLICY_VIOLATION, "execution_id is empty")
    payload = content.get("payload")
    if payload is not None and not isinstance(payload, dict):
        raise Refusal(PROTOCOL_ERROR, "payload must be an object")
    return role.lower(), execution_id, payload


def expand_write_prefix(template: str, execution_id: str) -> str:
    prefix = template.replace("{{execution_id}}", execution_id).replace(
        "{execution_id}", execution_id
    )
    return prefix if prefix.endswith("/") else prefix + "/"


class Failure(Exception):
    """A run's failure, with its ``ERR_*`` code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def cancelled() -> Failure:
    """The failure of a cancelled run."""
    return Failure("ERR_CANCELLED", "the run was cancelled")


class InputsError(ValueError):
    """Inputs that cannot be normalized (``ERR_INPUTS``)."""


TOP_LEVEL_KEYS = ("schema", "params", "files", "model", "mode")


def normalize_inputs(inputs: Any, mode: str) -> Dict[str, Any]:
    """The runner's inputs: ``{"schema": "v1", "model", "params", "files", "mode"}``; a bare
    object is its params (as the Rust SDK reads it)."""
    if not isinstance(inputs, dict):
        raise InputsError(f"inputs must be an object, not {type(inputs).__name__}")
    inputs = dict(inputs)
    inputs.pop("mode", None)
    model = inputs.pop("model", None)
    schema = inputs.get("schema")
    if schema is not None and schema != INPUTS_SCHEMA:
        raise InputsError(f"inputs schema {schema!r} is not supported (expected 'v1')")
    files = {}
    if "params" in inputs or "schema" in inputs:
        stray = [key for key in inputs if key not in TOP_LEVEL_KEYS]
        if stray:
            raise InputsError(f"unexpected top-level key {stray[0]!r} beside params")
        params = inputs.get("params", {})
        if not isinstance(params, dict):
            raise InputsError("params must be an object")
        files = inputs.get("files") or {}
    else:
        files = inputs.pop("files", None) or {}
        params = inputs
    params = dict(params)
    if model is not None:
        if "model" in params and params["model"] != model:
            raise InputsError("model is given twice, with two values")
        params["model"] = model
    return {
        "schema": INPUTS_SCHEMA,
        "model": params.get("model"),
        "params": params,
        "files": files,
        "mode": mode,
    }


def _refused_char(char: str) -> bool:
    return (
        char == "\\"
        or unicodedata.category(char) in ("Cc", "Cf")
        or char in ("\u2028", "\u2029")
    )


def validate_relpath(relpath: str) -> Optional[str]:
    """Why an output's relative path is refused, or ``None`` (the rules of the Rust SDK)."""
    if not relpath:
        return "output path is empty"
    if relpath.startswith("/"):
        return f"output path {relpath!r} is absolute"
    if any(_refused_char(char) for char in relpath):
        return f"output path {relpath!r} has a character that is not allowed"
    if len(relpath.encode()) > MAX_RELPATH_BYTES:
        return f"output path {relpath!r} is too long"
    for segment in relpath.split("/"):
        if segment == "":
            return f"output path {relpath!r} has an empty segment"
        if segment in (".", ".."):
            return f"output path {relpath!r} has a . or .. segment"
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            return f"output path {relpath!r} is too long"
    if relpath in RESERVED_RELPATHS:
        return f"output path {relpath!r} is reserved"
    return None


def cid_of(data: bytes) -> str:
    return "b3:" + blake3.blake3(data).hexdigest()


def mime_of(relpath: str, meta: Optional[Dict[str, str]]) -> str:
    if meta and meta.get("mime"):
        return meta["mime"]
    guessed, _ = mimetypes.guess_type(relpath, strict=False)
    if relpath.endswith(".json"):
        return "application/json"
    return guessed or "application/octet-stream"

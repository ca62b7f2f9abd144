"""A worker process: loads the provider once (``make_runner(config)``) and runs one job at a
time, sending its tokens, logs and result to the server process over a pipe.

Handlers run here, not in the server, so a handler that ignores a cancel can be stopped hard
(the process is killed and another started), a crash in native code fails only its run, and the
server keeps answering ``/healthz`` whatever a handler does.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import queue
import sys
import threading
import traceback
from typing import Any, Callable, Dict, Optional

from .contract import OutputFile, OutputItem, ProcessorError, ProcessorResult

_current = threading.local()


class Cancelled(Exception):
    """Raised by :meth:`Context.check_cancelled` once the run was cancelled."""


class Context:
    """What a runner may use besides its inputs: stream tokens and logs, notice a cancel, and a
    scratch folder for large outputs. Take it as the runner's second parameter, or call
    :func:`theory_processor.context` anywhere in the run."""

    def __init__(self, job: int, execution_id: str, mode: str, scratch: str, send) -> None:
        self.execution_id = execution_id
        self.mode = mode
        self._job = job
        self._scratch = scratch
        self._send = send
        self._cancelled = threading.Event()

    def token(self, text: str) -> None:
        """Streams a piece of text to the client as it is made."""
        self._send(("token", self._job, str(text)))

    def log(self, msg: str, level: str = "info") -> None:
        """A log line for the client (never the secrets: they are redacted by the orchestrator
        too, but keep them out)."""
        self._send(("log", self._job, str(level), str(msg)))

    @property
    def cancelled(self) -> bool:
        """Whether the run was cancelled: stop soon; after the grace period the process is
        stopped hard."""
        return self._cancelled.is_set()

    def check_cancelled(self) -> None:
        """Raises :class:`Cancelled` if the run was cancelled."""
        if self._cancelled.is_set():
            raise Cancelled("the run was cancelled")

    def scratch_dir(self) -> str:
        """A folder of this run's, removed once the run is forgotten."""
        os.makedirs(self._scratch, exist_ok=True)
        return self._scratch


def context() -> Context:
    """The context of the run in progress in this worker."""
    current = getattr(_current, "context", None)
    if current is None:
        raise RuntimeError("theory_processor.context() is only available while a run runs")
    return current


def load_provider(spec: str):
    """The provider module named by a file path or a module name."""
    if spec.endswith(".py") or os.path.sep in spec:
        path = os.path.abspath(spec)
        name = os.path.splitext(os.path.basename(path))[0]
        sys.path.insert(0, os.path.dirname(path))
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
        return module
    return importlib.import_module(spec)


def _call(runner: Callable, inputs: Dict[str, Any], ctx: Context) -> ProcessorResult:
    try:
        takes_context = len(inspect.signature(runner).parameters) >= 2
    except (TypeError, ValueError):
        takes_context = False
    return runner(inputs, ctx) if takes_context else runner(inputs)


def _outputs(result: Any) -> Dict[str, Any]:
    if not isinstance(result, ProcessorResult):
        raise ProcessorError("ERR_RUNTIME", f"the runner returned {type(result).__name__}, not ProcessorResult")
    outputs = []
    for item in result.outputs:
        if isinstance(item, OutputItem):
            outputs.append({"relpath": item.relpath, "bytes": bytes(item.bytes_), "meta": item.meta})
        elif isinstance(item, OutputFile):
            outputs.append({"relpath": item.relpath, "file": os.path.abspath(item.path), "meta": item.meta})
        else:
            raise ProcessorError("ERR_RUNTIME", f"an output is a {type(item).__name__}, not OutputItem or OutputFile")
    usage, extra = dict(result.usage or {}), dict(result.extra or {})
    for name, value in (("usage", usage), ("extra", extra)):
        try:
            json.dumps(value)
        except (TypeError, ValueError) as error:
            raise ProcessorError("ERR_RUNTIME", f"ProcessorResult.{name} is not JSON: {error}") from None
    return {
        "ok": True,
        "outputs": outputs,
        "processor_info": str(result.processor_info or ""),
        "usage": usage,
        "extra": extra,
    }


def main(provider: str, config: Dict[str, Any], jobs, events) -> None:
    """The worker's life: load, say ready, run jobs until the pipe closes."""
    lock = threading.Lock()

    def send(message) -> None:
        with lock:
            events.send(message)

    try:
        runner = load_provider(provider).make_runner(config)
    except BaseException as error:  # noqa: BLE001 - any failure to load is reported
        send(("failed", f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=5)}"))
        return
    send(("ready", os.getpid()))
    pending: "queue.Queue[Optional[tuple]]" = queue.Queue()
    contexts: Dict[int, Context] = {}
    # Cancels that came before their job started here.
    cancelled_early: set = set()

    def listen() -> None:
        while True:
            try:
                message = jobs.recv()
            except (EOFError, OSError):
                pending.put(None)
                return
            if message[0] == "cancel":
                ctx = contexts.get(message[1])
                if ctx is not None:
                    ctx._cancelled.set()
                else:
                    cancelled_early.add(message[1])
            else:
                pending.put(message)

    threading.Thread(target=listen, name="theory-control", daemon=True).start()
    while True:
        job = pending.get()
        if job is None:
            return
        _, number, execution_id, inputs, scratch = job
        ctx = Context(number, execution_id, inputs.get("mode", "mock"), scratch, send)
        contexts[number] = ctx
        if number in cancelled_early:
            cancelled_early.discard(number)
            ctx._cancelled.set()
        _current.context = ctx
        try:
            outcome = _outputs(_call(runner, inputs, ctx))
        except Cancelled:
            outcome = {"ok": False, "code": "ERR_CANCELLED", "message": "the run was cancelled"}
        except ProcessorError as error:
            outcome = {"ok": False, "code": error.code, "message": error.message}
        except BaseException as error:  # noqa: BLE001 - any exception is the run's failure
            outcome = {"ok": False, "code": "ERR_RUNTIME", "message": f"{type(error).__name__}: {error}"}
        finally:
            _current.context = None
            contexts.pop(number, None)
        send(("done", number, outcome))

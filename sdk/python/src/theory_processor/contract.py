"""The author contract of the seeds, verbatim: ``OutputItem``, ``ProcessorResult``.

A provider module defines ``make_runner(config) -> Callable[[dict], ProcessorResult]``. The
runner takes the normalized inputs ``{"schema": "v1", "model": …, "params": {…}, "files": {…},
"mode": "mock" | "real"}`` and returns a ``ProcessorResult``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union


@dataclass
class OutputItem:
    """One output: its path relative to the run's write prefix and its bytes."""

    relpath: str
    bytes_: bytes
    meta: Optional[Dict[str, str]] = None


@dataclass
class OutputFile:
    """A large output kept in a file (for example under ``context.scratch_dir()``): streamed to
    the orchestrator from disk, never read whole."""

    relpath: str
    path: str
    meta: Optional[Dict[str, str]] = None


@dataclass
class ProcessorResult:
    """What a runner returns."""

    outputs: List[Union[OutputItem, OutputFile]]
    processor_info: str = ""
    usage: Dict[str, Any] = field(default_factory=dict)
    extra: Dict[str, Any] = field(default_factory=dict)


class ProcessorError(Exception):
    """A failure with its ``ERR_*`` code; any other exception is ``ERR_RUNTIME``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

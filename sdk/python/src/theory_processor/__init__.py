"""Write a Theory processor in Python.

A provider module defines ``make_runner(config)``, which returns a runner: a callable that takes
the normalized inputs (``{"schema": "v1", "model", "params", "files", "mode"}``) and returns a
:class:`ProcessorResult` of :class:`OutputItem` (bytes) and :class:`OutputFile` (a file on disk,
streamed). ``python -m theory_processor serve MODULE_OR_FILE`` serves it over ``theory.run.v1``
on ``PORT``. A runner that takes a second parameter gets the run's :class:`Context` (tokens,
logs, cancellation, scratch space); :func:`context` returns it from anywhere in the run.
"""

from .contract import OutputFile, OutputItem, ProcessorError, ProcessorResult
from .worker import Cancelled, Context, context

__all__ = [
    "Cancelled",
    "Context",
    "OutputFile",
    "OutputItem",
    "ProcessorError",
    "ProcessorResult",
    "context",
]

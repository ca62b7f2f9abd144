"""Errors: every error document the server answers becomes a `TheoryError` of its kind."""

from __future__ import annotations

from typing import Any


class TheoryError(Exception):
    """An error the server answered (or a run that failed): its `ERR_*` code, message and hint."""

    def __init__(self, code: str, message: str, hint: str | None = None, status: int | None = None):
        super().__init__(f"{code}: {message}" + (f" (hint: {hint})" if hint else ""))
        self.code = code
        self.message = message
        self.hint = hint
        self.status = status


class Unauthorized(TheoryError):
    """401: no token, or an unknown or revoked one."""


class Forbidden(TheoryError):
    """403: the token lacks the scope, or may not charge the plan."""


class NotFound(TheoryError):
    """404: no such run, processor, plan or artifact the caller may see."""


class Conflict(TheoryError):
    """409: an idempotency key used for another request, a plan key taken."""


class InvalidInputs(TheoryError):
    """422: the inputs do not match the processor's schema."""


class LimitExceeded(TheoryError):
    """413 or 429: a body over the limit, a budget or a concurrency limit."""


class RunFailed(TheoryError):
    """A run ended `failed` or `cancelled`; `.run` holds it, its envelope included."""

    def __init__(self, run: Any):
        error = (run.envelope or {}).get("error") or {}
        super().__init__(
            error.get("code", "ERR_RUNTIME"),
            error.get("message", f"run {run.id} {run.status}"),
            None,
            None,
        )
        self.run = run


_BY_STATUS = {401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 413: LimitExceeded,
              422: InvalidInputs, 429: LimitExceeded}


def error_from(status: int, document: Any) -> TheoryError:
    """The error of an answer with `status` and (when it is one) an error document."""
    error = document.get("error") if isinstance(document, dict) else None
    kind = _BY_STATUS.get(status, TheoryError)
    if isinstance(error, dict):
        return kind(str(error.get("code", "ERR_RUNTIME")), str(error.get("message", "")),
                    document.get("hint"), status)
    return kind("ERR_RUNTIME", f"the server answered {status}", None, status)

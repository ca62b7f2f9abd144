"""Python client of `theory serve`: submit runs, stream their tokens, fetch outputs and receipts."""

from ._client import AsyncClient, Client, Event, Run
from ._errors import (
    Conflict,
    Forbidden,
    InvalidInputs,
    LimitExceeded,
    NotFound,
    RunFailed,
    TheoryError,
    Unauthorized,
)

__all__ = [
    "AsyncClient",
    "Client",
    "Conflict",
    "Event",
    "Forbidden",
    "InvalidInputs",
    "LimitExceeded",
    "NotFound",
    "Run",
    "RunFailed",
    "TheoryError",
    "Unauthorized",
]

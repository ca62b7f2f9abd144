"""The runs this server knows: each one's log of frames (replayed to every connection that
attaches, from the first), whether a client started it, and its cancel."""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

from . import protocol


@dataclass
class OutputEntry:
    """An output in the log: its header frame, then its bytes (in memory or in a file)."""

    header: str
    body: Union[bytes, str]
    size_bytes: int


Entry = Union[str, OutputEntry]


class Run:
    """One run's log and state."""

    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id
        self.entries: List[Entry] = []
        self.finished = False
        self.claimed = False
        self.cancel = asyncio.Event()
        self.scratch: Optional[str] = None
        self.ended_at: Optional[float] = None
        self.created_at = time.monotonic()
        # Connections attached now: a run is forgotten (its scratch removed) only without any.
        self.readers = 0
        self._changed = asyncio.Condition()

    def push(self, entry: Entry) -> None:
        if self.finished:
            return
        self.entries.append(entry)
        asyncio.get_running_loop().create_task(self._notify())

    def finish(self, result: str) -> None:
        if self.finished:
            return
        self.entries.append(result)
        self.finished = True
        self.ended_at = time.monotonic()
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_past(self, seen: int, timeout: Optional[float]) -> bool:
        """Waits until the log holds more than ``seen`` entries or the run ended; ``False`` when
        ``timeout`` passed first."""
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: len(self.entries) > seen or self.finished),
                    timeout,
                )
            except asyncio.TimeoutError:
                return False
        return True

    def request_cancel(self) -> None:
        """Cancels the run: the first cancel of a run not ended says ``preempted`` to everyone."""
        if not self.cancel.is_set() and not self.finished:
            self.push(protocol.frame("Event", {"phase": "preempted"}))
        self.cancel.set()

    def since(self, seen: int) -> Tuple[List[Entry], bool]:
        return self.entries[seen:], self.finished

    def forget(self) -> None:
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)


class Runs:
    """Runs by execution id; ended runs are kept ``retention`` seconds (at most ``most``) for
    late joiners, then forgotten with their scratch folders."""

    def __init__(self, retention: float, most: int, unclaimed_for: float) -> None:
        self.retention = retention
        self.most = most
        self.unclaimed_for = unclaimed_for
        self._runs: Dict[str, Run] = {}

    def attach(self, execution_id: str) -> Run:
        self.evict()
        run = self._runs.get(execution_id)
        if run is None:
            run = self._runs[execution_id] = Run(execution_id)
        return run

    def evict(self) -> None:
        """Forgets ended runs past their retention (or past the most kept) and runs no client
        started within the wait for one, when no connection is attached to them."""
        now = time.monotonic()
        ended = [run for run in self._runs.values() if run.ended_at is not None]
        ended.sort(key=lambda run: run.ended_at)
        surplus = max(0, len(ended) - self.most)
        for index, run in enumerate(ended):
            if (index < surplus or now - run.ended_at > self.retention) and run.readers == 0:
                self._runs.pop(run.execution_id, None)
                run.forget()
        for run in list(self._runs.values()):
            if not run.claimed and run.readers == 0 and now - run.created_at > self.unclaimed_for:
                self._runs.pop(run.execution_id, None)
                run.forget()

    def drop_unclaimed(self, run: Run) -> None:
        """Forgets a run no client started (only controllers or observers came for it)."""
        if not run.claimed and not run.entries and self._runs.get(run.execution_id) is run:
            del self._runs[run.execution_id]

    def forget_all(self) -> None:
        for run in self._runs.values():
            run.cancel.set()
            run.forget()
        self._runs.clear()

"""The server's side of the worker processes: a fixed number, each running one job at a time;
a job waits for a free one. A worker that dies, or is stopped hard, is replaced."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
from typing import Any, Callable, Dict, Optional

from . import worker as worker_module

Outcome = Dict[str, Any]

# The outcome of a job cancelled before or while it ran.
CANCELLED: Outcome = {"ok": False, "code": "ERR_CANCELLED", "message": "the run was cancelled"}


class WorkerFailed(RuntimeError):
    """A worker could not load the provider."""


class _Worker:
    def __init__(self, process, jobs, events) -> None:
        self.process = process
        self.jobs = jobs
        self.events = events
        self.ready: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        self.running: Dict[int, "_Job"] = {}
        self.dead = False


class _Job:
    def __init__(self, on_event: Callable[[tuple], None]) -> None:
        self.on_event = on_event
        self.done: "asyncio.Future[Outcome]" = asyncio.get_running_loop().create_future()


class Pool:
    """``size`` workers of one provider."""

    def __init__(self, provider: str, config: Dict[str, Any], size: int) -> None:
        self.provider = provider
        self.config = config
        self.size = max(1, size)
        self._context = multiprocessing.get_context("spawn")
        self._idle: "asyncio.Queue[_Worker]" = asyncio.Queue()
        self._all: set = set()
        self._numbers = itertools.count(1)
        self._closed = False

    async def start(self) -> None:
        """Starts every worker and waits until each has loaded the provider."""
        started = [self._spawn() for _ in range(self.size)]
        for worker in started:
            await worker.ready
            self._idle.put_nowait(worker)

    def _spawn(self) -> _Worker:
        jobs_here, jobs_there = self._context.Pipe()
        events_here, events_there = self._context.Pipe()
        process = self._context.Process(
            target=worker_module.main,
            args=(self.provider, self.config, jobs_there, events_there),
            name="theory-worker",
            daemon=True,
        )
        process.start()
        jobs_there.close()
        events_there.close()
        worker = _Worker(process, jobs_here, events_here)
        self._all.add(worker)
        asyncio.get_running_loop().add_reader(events_here.fileno(), self._readable, worker)
        return worker

    def _readable(self, worker: _Worker) -> None:
        try:
            while worker.events.poll():
                self._dispatch(worker, worker.events.recv())
        except (EOFError, OSError):
            self._died(worker, "the worker process ended")
        except Exception as error:  # noqa: BLE001 - a message that cannot be read: the worker goes
            self._died(worker, f"the worker sent what cannot be read: {type(error).__name__}")

    def _dispatch(self, worker: _Worker, message: tuple) -> None:
        kind = message[0]
        if kind == "ready":
            if not worker.ready.done():
                worker.ready.set_result(None)
        elif kind == "failed":
            if not worker.ready.done():
                worker.ready.set_exception(WorkerFailed(message[1]))
        elif kind == "done":
            job = worker.running.pop(message[1], None)
            if job is not None and not job.done.done():
                job.done.set_result(message[2])
        else:
            job = worker.running.get(message[1])
            if job is not None:
                job.on_event(message)

    def _died(self, worker: _Worker, why: str) -> None:
        if worker.dead:
            return
        worker.dead = True
        loop = asyncio.get_running_loop()
        loop.remove_reader(worker.events.fileno())
        self._all.discard(worker)
        for job in worker.running.values():
            if not job.done.done():
                job.done.set_result({"ok": False, "code": "ERR_RUNTIME", "message": why})
        worker.running.clear()
        if not worker.ready.done():
            worker.ready.set_exception(WorkerFailed(why))
        worker.process.kill()
        worker.process.join(timeout=5)
        worker.jobs.close()
        worker.events.close()
        if not self._closed:
            loop.create_task(self._replace())

    async def _replace(self) -> None:
        # A provider that no longer loads is tried again, less and less often.
        pause = 0.0
        while not self._closed:
            if pause:
                await asyncio.sleep(pause)
            replacement = self._spawn()
            try:
                await replacement.ready
            except WorkerFailed:
                pause = min(30.0, max(0.5, pause * 2))
                continue
            self._idle.put_nowait(replacement)
            return

    async def _take(self, cancelled: "asyncio.Future[Any]") -> Optional[_Worker]:
        """The next free live worker (one that died while idle is being replaced: skipped), or
        ``None`` when the run is cancelled first."""
        while True:
            taking = asyncio.ensure_future(self._idle.get())
            await asyncio.wait({cancelled, taking}, return_when=asyncio.FIRST_COMPLETED)
            if not taking.done():
                taking.cancel()
                return None
            worker = taking.result()
            if not worker.dead:
                return worker

    async def run(
        self,
        execution_id: str,
        inputs: Dict[str, Any],
        scratch: str,
        on_event: Callable[[tuple], None],
        cancel: asyncio.Event,
        grace: float,
    ) -> Outcome:
        """Runs one job on the next free worker: cancelled, the worker is asked to stop, then
        stopped hard after ``grace`` seconds."""
        cancelled = asyncio.ensure_future(cancel.wait())
        worker = await self._take(cancelled)
        if worker is None:
            return dict(CANCELLED)
        number = next(self._numbers)
        job = _Job(on_event)
        worker.running[number] = job
        try:
            worker.jobs.send(("run", number, execution_id, inputs, scratch))
        except OSError:
            self._died(worker, "the worker process ended")
        if not job.done.done() and worker.dead:
            job.done.set_result({"ok": False, "code": "ERR_RUNTIME", "message": "the worker process ended"})
        await asyncio.wait({cancelled, job.done}, return_when=asyncio.FIRST_COMPLETED)
        if not job.done.done():
            try:
                worker.jobs.send(("cancel", number))
            except OSError:
                pass
            try:
                await asyncio.wait_for(asyncio.shield(job.done), grace)
            except asyncio.TimeoutError:
                self._died(worker, "stopped hard: the handler ignored the cancel")
            cancelled.cancel()
            if not worker.dead:
                self._idle.put_nowait(worker)
            return dict(CANCELLED)
        cancelled.cancel()
        if not worker.dead:
            self._idle.put_nowait(worker)
        return job.done.result()

    async def close(self) -> None:
        """Stops every worker."""
        self._closed = True
        for worker in list(self._all):
            self._died(worker, "the server stopped")

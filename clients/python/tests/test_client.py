"""The client against a real server: runs, waits, streams, cancels, uploads, artifacts, errors."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import pytest

from theory_client import (
    AsyncClient,
    Client,
    Conflict,
    Forbidden,
    InvalidInputs,
    NotFound,
    RunFailed,
    Unauthorized,
)

from conftest import Server


def test_a_run_is_submitted_waited_for_and_its_outputs_fetched(server: Server) -> None:
    with Client(server.url) as theory:
        run = theory.run("theory/probe@1", {"text": "from python"})
        assert run.status == "succeeded" and run.mode == "mock"
        paths = {output["path"].rsplit("/", 1)[-1]: output for output in run.outputs}
        echo = paths["echo.txt"]
        assert theory.get_artifact(echo["path"]) == b"from python"
        sink = io.BytesIO()
        assert theory.download(echo["path"], sink) == echo["size_bytes"]
        assert sink.getvalue() == b"from python"
        receipt = theory.receipt(run.id)
        assert receipt["execution_id"] == run.id and receipt["inputs_hash"].startswith("b3:")
        assert receipt["attestation"] == {"signed": False}
        with pytest.raises(NotFound):
            theory.attestation(run.id)  # the test server's project has no signing key
        assert theory.get_run(run.id).envelope == run.envelope
        assert any(listed.id == run.id for listed in theory.list_runs(ref="theory/probe@1"))
        assert any(entry["ref"] == "theory/probe@1" for entry in theory.processors())


def test_tokens_stream_as_the_run_goes(server: Server) -> None:
    with Client(server.url) as theory:
        run = theory.submit("theory/probe@1", {"text": "one two three", "sleep_ms": 800})
        started = time.monotonic()
        tokens, seen_at = [], []
        for token in theory.stream_tokens(run.id):
            tokens.append(token)
            seen_at.append(time.monotonic() - started)
        assert "".join(tokens) == "one two three"
        assert max(seen_at) < 0.8, f"tokens came after the run's sleep: {seen_at}"
        events = list(theory.stream(run.id))
        assert events[-1].kind == "end" and events[-1].data["status"] == "succeeded"
        assert [event.seq for event in events[:-1]] == list(range(1, len(events)))
        assert [event.kind for event in theory.stream(run.id, after=len(events) - 2)] == ["RunResult", "end"]


def test_failures_are_typed_errors_carrying_their_code(server: Server) -> None:
    with Client(server.url) as theory:
        with pytest.raises(RunFailed) as failed:
            theory.run("theory/probe@1", {"fail": {"code": "ERR_PROVIDER", "message": "nope"}})
        assert failed.value.code == "ERR_PROVIDER" and failed.value.run.status == "failed"
        with pytest.raises(InvalidInputs) as invalid:
            theory.submit("theory/probe@1", {"size_bytes": "many"})
        assert invalid.value.code == "ERR_INPUT_SCHEMA" and invalid.value.status == 422
        with pytest.raises(NotFound) as unknown:
            theory.submit("nope/missing@1")
        assert unknown.value.code == "ERR_REGISTRY" and unknown.value.hint
        with pytest.raises(NotFound):
            theory.get_run("01NOSUCHRUN0000000000000000")
        theory.submit("theory/probe@1", {"text": "a"}, idempotency_key="py-1")
        with pytest.raises(Conflict):
            theory.submit("theory/probe@1", {"text": "b"}, idempotency_key="py-1")


def test_a_running_run_is_cancelled(server: Server) -> None:
    with Client(server.url) as theory:
        run = theory.submit("theory/probe@1", {"sleep_ms": 60000})
        while theory.get_run(run.id).status != "running":
            time.sleep(0.05)
        theory.cancel(run.id)
        ended = theory.wait(run.id, timeout=30)
        assert ended.status == "cancelled"
        assert RunFailed(ended).code == "ERR_CANCELLED"


def test_an_upload_reaches_the_processor(server: Server) -> None:
    with Client(server.url) as theory:
        reference = theory.upload(b"bytes from python", name="note.txt", mime="text/plain")
        assert set(reference) == {"$artifact", "cid", "mime"}
        run = theory.run("theory/probe@1", {"text": "x", "files": {"note": reference}})
        meta = next(output for output in run.outputs if output["path"].endswith("/meta.json"))
        assert reference["cid"] in theory.get_artifact(meta["path"]).decode()


def test_the_async_client_does_the_same(server: Server) -> None:
    async def main() -> None:
        async with AsyncClient(server.url) as theory:
            runs = await asyncio.gather(*(theory.run("theory/probe@1", {"text": f"async {n}"}) for n in range(4)))
            assert {run.status for run in runs} == {"succeeded"}
            run = await theory.submit("theory/probe@1", {"text": "streamed async"})
            tokens = [token async for token in theory.stream_tokens(run.id)]
            assert "".join(tokens) == "streamed async"
            echo = next(output for output in runs[0].outputs if output["path"].endswith("/echo.txt"))
            assert await theory.get_artifact(echo["path"]) == b"async 0"
            with pytest.raises(NotFound):
                await theory.cancel("01NOSUCHRUN0000000000000000")

    asyncio.run(main())


def test_tokens_and_tenants(fresh_project: Path) -> None:
    tokens = {}
    setup = Server(fresh_project, ["--no-auth"])
    assert setup.stop() == 0
    for name in ("alice", "bob"):
        made = setup.theory("token", "create", "--name", name, "--json")
        assert made.returncode == 0, made.stderr
        tokens[name] = json.loads(made.stdout)["secret"]
    server = Server(fresh_project, [])
    try:
        with Client(server.url) as anonymous, pytest.raises(Unauthorized):
            anonymous.processors()
        with Client(server.url, token=tokens["alice"]) as alice, Client(server.url, token=tokens["bob"]) as bob:
            run = alice.run("theory/probe@1", {"text": "alice's"})
            with pytest.raises(NotFound):
                bob.get_run(run.id)
            assert [listed.id for listed in bob.list_runs()] == []
            with pytest.raises(Forbidden):
                bob.submit("theory/probe@1", plan="someone-elses")
    finally:
        assert server.stop() == 0

"""The Python SDK serves theory.run.v1 as the Rust SDK does: health, the handshake, a run's
frames and outputs, replay, failures, cancellation (cooperative, then hard), runs at once."""

import contextlib
import json
import os
import threading
import time
import urllib.error
import urllib.request

import blake3
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

SUBPROTOCOL = "theory.run.v1"


@contextlib.contextmanager
def open_run(served, execution_id, role="client", inputs=None, mode="mock"):
    with connect(f"ws://127.0.0.1:{served.port}/run", subprotocols=[SUBPROTOCOL], max_size=None) as socket:
        content = {"role": role, "execution_id": execution_id}
        if role == "client":
            content["payload"] = {"execution_id": execution_id, "mode": mode, "inputs": inputs or {},
                                  "write_prefix": "/artifacts/outputs/py/{execution_id}/"}
        socket.send(json.dumps({"kind": "RunOpen", "content": content}))
        yield socket


def run_whole(served, execution_id, **options):
    with open_run(served, execution_id, **options) as socket:
        return transcript(socket)


def transcript(socket):
    """Every frame until the close: (kind, content) for text, bytes joined per output."""
    frames, outputs, current = [], {}, None
    for message in socket:
        if isinstance(message, bytes):
            outputs[current] += message
            continue
        value = json.loads(message)
        frames.append((value["kind"], value["content"]))
        if value["kind"] == "Output":
            current = value["content"]["path"]
            outputs[current] = b""
    return frames, outputs


def result_of(frames):
    kind, content = frames[-1]
    assert kind == "RunResult", frames
    return content


def test_healthz_is_exactly_ok_and_other_methods_are_refused(served):
    with urllib.request.urlopen(served.base + "/healthz") as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.read() == b'{"ok":true}'
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(served.base + "/healthz", method="POST", data=b""))
    assert refused.value.code == 405


def test_the_subprotocol_is_required_before_the_upgrade(served):
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{served.port}/run")
    assert 400 <= refused.value.response.status_code < 500


def test_a_run_streams_tokens_and_outputs_whose_cids_hold(served):
    frames, outputs = run_whole(served, "E1", inputs={"text": "hello python probe"})
    kinds = [kind for kind, _ in frames]
    assert kinds[0] == "Ack" and frames[0][1] == {"execution_id": "E1"}
    assert ("Event", {"phase": "started"}) in frames
    tokens = "".join(content["text"] for kind, content in frames if kind == "Token")
    assert tokens == "hello python probe "
    result = result_of(frames)
    assert result["status"] == "success", result
    assert result["meta"]["processor_info"] == "probe:python"
    assert result["meta"]["usage"] == {"chars": 18}
    assert result["index_path"] == "/artifacts/outputs/py/E1/outputs.json"
    listed = {entry["path"]: entry for entry in result["outputs"]}
    assert sorted(listed) == ["/artifacts/outputs/py/E1/echo.txt", "/artifacts/outputs/py/E1/meta.json"]
    assert outputs["echo.txt"] == b"hello python probe"
    for relpath, body in outputs.items():
        entry = listed["/artifacts/outputs/py/E1/" + relpath]
        assert entry["cid"] == "b3:" + blake3.blake3(body).hexdigest()
        assert entry["size_bytes"] == len(body)
    assert listed["/artifacts/outputs/py/E1/echo.txt"]["mime"] == "text/plain"


def test_a_late_joiner_gets_the_whole_run_replayed(served):
    first, _ = run_whole(served, "E2", inputs={"text": "a b"})
    again, outputs = run_whole(served, "E2", role="observer")
    assert [kind for kind, _ in again] == [kind for kind, _ in first]
    assert outputs["echo.txt"] == b"a b"


def test_a_failing_handler_and_a_bad_path_end_in_their_codes(served):
    frames, _ = run_whole(served, "E3", inputs={"panic": True})
    assert result_of(frames)["error"]["code"] == "ERR_RUNTIME"
    assert "asked to fail" in result_of(frames)["error"]["message"]
    frames, _ = run_whole(served, "E4", inputs={"relpath": "../escape.txt"})
    assert result_of(frames)["error"]["code"] == "ERR_OUTPUT_PATH"


def cancel_after(served, execution_id, delay):
    def cancel():
        time.sleep(delay)
        with open_run(served, execution_id, role="controller") as controller:
            controller.send(json.dumps({"kind": "control", "content": {"op": "preempt"}}))
            transcript(controller)

    thread = threading.Thread(target=cancel)
    thread.start()
    return thread


@pytest.mark.parametrize("stubborn", [False, True])
def test_a_cancelled_run_stops_then_is_stopped_hard(served, stubborn):
    inputs = {"sleep_ms": 30_000, "ignore_cancel": stubborn}
    started = time.monotonic()
    with open_run(served, f"E5-{stubborn}", inputs=inputs) as socket:
        canceller = cancel_after(served, f"E5-{stubborn}", 0.3)
        frames, _ = transcript(socket)
    canceller.join()
    assert result_of(frames)["error"]["code"] == "ERR_CANCELLED"
    assert time.monotonic() - started < 5, "the cancel took too long"
    # The worker a hard stop killed is replaced: the next run is served.
    frames, _ = run_whole(served, f"E6-{stubborn}", inputs={"text": "after"})
    assert result_of(frames)["status"] == "success"


def test_runs_at_once_do_not_wait_for_each_other_nor_block_health(served):
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(open_run(served, f"E7-{n}", inputs={"sleep_ms": 1000})) for n in range(2)]
        with urllib.request.urlopen(served.base + "/healthz", timeout=2) as answer:
            assert answer.status == 200
        assert time.monotonic() - started < 0.9, "/healthz waited for the runs"
        for socket in sockets:
            assert result_of(transcript(socket)[0])["status"] == "success"
    assert time.monotonic() - started < 1.9, "the two runs ran one after the other"


def test_a_large_output_is_streamed_from_its_file(served):
    size = 5 * 1024 * 1024 + 3
    frames, outputs = run_whole(served, "E8", inputs={"size_bytes": size})
    result = result_of(frames)
    assert result["status"] == "success", result
    body = outputs["large.bin"]
    assert len(body) == size
    entry = [entry for entry in result["outputs"] if entry["path"].endswith("large.bin")][0]
    assert entry["cid"] == "b3:" + blake3.blake3(body).hexdigest()


def test_sigterm_ends_the_server_and_its_workers(served):
    workers = children(served.process.pid)
    assert len(workers) >= 2, workers
    assert served.stop() == 0
    deadline = time.monotonic() + 5
    while [pid for pid in workers if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [command_of(pid) for pid in workers if alive(pid)] == []


def alive(pid):
    """Whether the process is there and not a zombie waiting for its parent."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def command_of(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return str(pid)


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.mark.parametrize("files", [
    ["not", "a", "map"],
    {"/artifacts/inputs/x.txt": {"cid": "b3:00", "size_bytes": 1, "get_url": "file:///etc/passwd"}},
])
def test_malformed_or_local_input_files_end_the_run_in_err_inputs(served, files):
    with connect(f"ws://127.0.0.1:{served.port}/run", subprotocols=[SUBPROTOCOL], max_size=None) as socket:
        payload = {"execution_id": "E9", "mode": "mock", "inputs": {}, "files": files}
        socket.send(json.dumps({"kind": "RunOpen", "content": {"role": "client", "execution_id": f"E9-{type(files).__name__}", "payload": payload}}))
        frames, _ = transcript(socket)
    assert result_of(frames)["error"]["code"] == "ERR_INPUTS"


def test_log_filters_as_theory_passes_them_become_uvicorn_levels():
    from theory_processor.__main__ import _log_level

    assert _log_level("warn") == "warning"
    assert _log_level("info,hyper=off") == "info"
    assert _log_level("theory=debug") == "warning"
    assert _log_level(None) == "warning"

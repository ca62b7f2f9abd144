"""The seeds' two example providers run, in mock mode, almost as the seed wrote them."""

import json
import os

from conftest import HERE, Served
from test_protocol import result_of, run_whole


def serve_example(name):
    return Served(os.path.join(HERE, "..", "examples", name))


def test_the_seed_llm_provider_answers_mock_without_litellm():
    served = serve_example("seed_litellm.py")
    try:
        inputs = {"schema": "v1", "params": {"messages": [{"role": "user", "content": "hi"}]}}
        frames, outputs = run_whole(served, "S1", inputs=inputs)
        result = result_of(frames)
        assert result["status"] == "success", result
        assert result["meta"]["processor_info"] == "llm_litellm:v1"
        body = outputs["outputs/response.json"]
        assert b"MOCK: hi" in body
        assert result["outputs"][0]["mime"] == "application/json"
    finally:
        served.stop()


def test_the_seed_replicate_provider_answers_its_fixed_mock_body():
    served = serve_example("seed_replicate.py")
    try:
        frames, outputs = run_whole(served, "S2", inputs={"prompt": "a cat"})
        assert result_of(frames)["status"] == "success"
        assert json.loads(outputs["outputs/response.json"]) == {"result": ["https://example.invalid/mock.webp"]}
    finally:
        served.stop()

"""The seeds' LLM provider (seed 003, "Examples"), almost as written: its dataclasses come from
the SDK, and `litellm` is imported only for real runs (mock mode needs no package, network or
secret)."""

from typing import Any, Callable, Dict

from theory_processor import OutputItem, ProcessorResult


def make_runner(config: Dict[str, Any]) -> Callable[[Dict[str, Any]], ProcessorResult]:
    def _runner(inputs: Dict[str, Any]) -> ProcessorResult:
        mode = inputs.get("mode", "mock")
        msgs = inputs.get("params", {}).get("messages", [])
        if mode == "mock":
            text = "MOCK: " + (msgs[0]["content"] if msgs else "")
            body = (  # deterministic, small
                ('{"model":"mock","object":"chat.completion","choices":[{"message":{"role":"assistant","content":'
                + repr(text) + '}}]}').encode("utf-8")
            )
        else:
            import litellm

            r = litellm.completion(model=inputs.get("model") or "gpt-4o-mini", messages=msgs)
            payload = r.model_dump() if hasattr(r, "model_dump") else r  # normalize
            body = __import__("json").dumps(payload, separators=(",", ":")).encode("utf-8")

        out = OutputItem(relpath="outputs/response.json", bytes_=body)
        return ProcessorResult(outputs=[out], processor_info="llm_litellm:v1", usage={}, extra={})

    return _runner

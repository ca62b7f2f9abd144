"""The seeds' Replicate provider (seed 003, "Examples"), almost as written: `replicate` is
imported only for real runs."""

from theory_processor import OutputItem, ProcessorResult


def make_runner(config):
    import json

    def _runner(inputs):
        mode = inputs.get("mode", "mock")
        if mode == "mock":
            body = b'{"result":["https://example.invalid/mock.webp"]}'
            return ProcessorResult(outputs=[OutputItem("outputs/response.json", body)], processor_info="replicate_generic:v1", usage={}, extra={})

        import replicate

        model = inputs.get("model") or "black-forest-labs/flux-schnell"
        params = {key: value for key, value in inputs.get("params", {}).items() if key != "model"}
        client = replicate.Client(api_token=None)  # the secret comes from the environment
        result = client.run(f"{model}", input=params)
        body = json.dumps({"result": result}, separators=(",", ":")).encode("utf-8")
        return ProcessorResult(outputs=[OutputItem("outputs/response.json", body)], processor_info="replicate_generic:v1", usage={}, extra={})

    return _runner

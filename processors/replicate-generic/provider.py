"""replicate/generic@1 — the seeds' Replicate provider (seed 003, "Examples"), as a built-in
Python processor.

Mock mode returns the seed's fixed body and needs neither network nor secret. Real mode runs the
model through the official ``replicate`` client (``REPLICATE_API_TOKEN``; ``REPLICATE_BASE_URL``
points it at another server), then downloads every file the prediction made and stores it as an
output, so a run keeps the images rather than URLs that expire. ``outputs/response.json`` holds
the result with each file replaced by its output path, and the URL each file came from.
"""

import json
import os
import re

from theory_processor import OutputFile, OutputItem, ProcessorError, ProcessorResult

INFO = "replicate_generic:v1"
MOCK_BODY = b'{"result":["https://example.invalid/mock.webp"]}'
DEFAULT_MODEL = "black-forest-labs/flux-schnell"


def make_runner(config):
    def _runner(inputs, ctx):
        mode = inputs.get("mode", "mock")
        if mode == "mock":
            return ProcessorResult(outputs=[OutputItem("outputs/response.json", MOCK_BODY)], processor_info=INFO, usage={}, extra={})

        import replicate

        params = dict(inputs.get("params", {}))
        model = inputs.get("model") or params.pop("model", None) or DEFAULT_MODEL
        if not os.environ.get("REPLICATE_API_TOKEN"):
            raise ProcessorError("ERR_MISSING_SECRET", "REPLICATE_API_TOKEN is not set")
        client = replicate.Client(api_token=None)  # the secret comes from the environment
        ctx.log(f"running {model} on Replicate")
        try:
            result = client.run(model, input=params)
        except replicate.exceptions.ModelError as error:
            raise ProcessorError("ERR_PROVIDER", f"the model failed: {error}") from error
        except replicate.exceptions.ReplicateError as error:
            raise ProcessorError("ERR_PROVIDER", f"Replicate refused the prediction: {error}") from error
        if not isinstance(result, (str, int, float, bool, dict, list, type(None))) and hasattr(result, "__iter__") and not hasattr(result, "url"):
            result = list(result)  # a model whose output is an iterator
        files = []
        sources = {}
        result = _keep_files(result, files, sources, ctx.scratch_dir())
        body = json.dumps({"result": result, "sources": sources}, separators=(",", ":")).encode("utf-8")
        outputs = [OutputFile(relpath, path) for relpath, path in files]
        outputs.append(OutputItem("outputs/response.json", body))
        return ProcessorResult(outputs=outputs, processor_info=INFO, usage={"files": len(files)}, extra={"model": model})

    return _runner


def _keep_files(value, files, sources, scratch):
    """The result with every output file downloaded (streamed to a scratch file) and replaced
    by the output path it is stored under."""
    if hasattr(value, "url") and hasattr(value, "__iter__"):
        relpath = f"outputs/{len(files)}{_extension(value.url)}"
        path = os.path.join(scratch, f"file-{len(files)}")
        with open(path, "wb") as sink:
            for chunk in value:
                sink.write(chunk)
        files.append((relpath, path))
        sources[relpath] = value.url
        return relpath
    if isinstance(value, list):
        return [_keep_files(item, files, sources, scratch) for item in value]
    if isinstance(value, dict):
        return {key: _keep_files(item, files, sources, scratch) for key, item in value.items()}
    return value


def _extension(url):
    """``.webp`` of ``https://…/out-0.webp?x=1``; nothing when the URL names none."""
    name = url.split("?", 1)[0].rsplit("/", 1)[-1]
    match = re.search(r"\.[A-Za-z0-9]{1,8}$", name)
    return match.group(0).lower() if match else ""

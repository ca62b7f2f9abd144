"""A provider that exercises every part of the SDK, like the Rust `theory/probe@1`:

- ``text``: echoed as ``echo.txt``, its words streamed as tokens;
- ``sleep_ms``: sleeps (in steps, stopping when cancelled unless ``ignore_cancel``);
- ``relpath``: the name of the echo output (``../escape.txt`` is refused by the SDK);
- ``panic``: raises;
- ``size_bytes``: one output of that size, written to a scratch file and streamed.
"""

import json
import os
import time

from theory_processor import OutputFile, OutputItem, ProcessorResult


def make_runner(config):
    def runner(inputs, ctx):
        params = inputs["params"]
        if params.get("panic"):
            raise RuntimeError("the probe was asked to fail")
        text = str(params.get("text", ""))
        for word in text.split():
            ctx.token(word + " ")
        ctx.log(f"echoing {len(text)} characters")
        deadline = time.monotonic() + params.get("sleep_ms", 0) / 1000
        while time.monotonic() < deadline:
            if ctx.cancelled and not params.get("ignore_cancel"):
                ctx.check_cancelled()
            time.sleep(0.01)
        outputs = [
            OutputItem(params.get("relpath", "echo.txt"), text.encode(), {"mime": "text/plain"}),
            OutputItem("meta.json", json.dumps({"mode": inputs["mode"], "chars": len(text)}).encode()),
        ]
        size = params.get("size_bytes")
        if size:
            path = os.path.join(ctx.scratch_dir(), "large.bin")
            with open(path, "wb") as file:
                block = bytes(range(256)) * 4096
                left = int(size)
                while left:
                    file.write(block[: min(left, len(block))])
                    left -= min(left, len(block))
            outputs.append(OutputFile("large.bin", path))
        return ProcessorResult(outputs=outputs, processor_info="probe:python", usage={"chars": len(text)}, extra={})

    return runner

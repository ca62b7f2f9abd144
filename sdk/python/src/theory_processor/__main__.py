"""``python -m theory_processor serve MODULE_OR_FILE``: serves a provider on ``PORT``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m theory_processor")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a provider module over theory.run.v1 on PORT")
    serve.add_argument("provider", help="a module name (pkg.provider) or a file (provider.py) with make_runner(config)")
    serve.add_argument("--ref", default=os.environ.get("THEORY_PROCESSOR_REF", "python/processor@1"),
                       help="the processor's ref, as the registry names it (THEORY_PROCESSOR_REF)")
    serve.add_argument("--processor-info", default=None, help="what RunResult says in meta.processor_info")
    args = parser.parse_args(argv)

    import uvicorn

    from .server import App

    _Server = _server_class()

    reference = args.ref
    if "@" not in reference or "/" not in reference:
        print(f"error: --ref {reference!r} is not a processor ref\nhint: a ref looks like ns/name@1", file=sys.stderr)
        return 2
    app = App(args.provider, reference, args.processor_info or f"{reference} (python)")
    host = os.environ.get("HOST", "0.0.0.0")
    try:
        port = int(os.environ.get("PORT", "8000"))
    except ValueError:
        print(f"error: PORT={os.environ.get('PORT')!r} is not a port number", file=sys.stderr)
        return 2
    try:
        listener = _listen(host, port)
    except OSError as error:
        print(f"error: cannot listen on {host}:{port}: {error}\nhint: pick another PORT", file=sys.stderr)
        return 2
    if port == 0:
        # As the Rust SDK does: the port picked is printed for whoever started us.
        bound_host, bound_port = listener.getsockname()[:2]
        print(json.dumps({"listening": f"{bound_host}:{bound_port}"}), flush=True)
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level=_log_level(os.environ.get("RUST_LOG") or os.environ.get("THEORY_LOG")),
        ws="websockets-sansio",
        ws_max_size=64 * 1024 * 1024,
        access_log=False,
    )
    server = _Server(config)
    server.run(sockets=[listener])
    return 0 if server.started else 1


_LEVELS = {"trace": "trace", "debug": "debug", "info": "info", "warn": "warning", "warning": "warning",
           "error": "error", "critical": "critical", "off": "critical"}


def _log_level(text) -> str:
    """uvicorn's level for a log filter as Theory passes it (``RUST_LOG``, from
    ``THEORY_PROCESSOR_LOG``: ``warn``, ``info,hyper=off``…): its first bare level, else
    ``warning``."""
    for directive in (text or "").split(","):
        directive = directive.strip().lower()
        if directive in _LEVELS:
            return _LEVELS[directive]
    return "warning"


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, made with the TCP protocol named: asyncio turns Nagle's algorithm
    off only on accepted sockets whose protocol says TCP, and without that every second small
    frame waits for the peer's delayed acknowledgement (40 ms)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(address)
    listener.listen(1024)
    return listener


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, but SIGTERM and SIGINT end it gracefully with exit code 0 (uvicorn
        raises the signal again once it has shut down, which ends the process by the signal)."""

        @contextlib.contextmanager
        def capture_signals(self):
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server


if __name__ == "__main__":
    sys.exit(main())

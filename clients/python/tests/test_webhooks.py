"""Webhooks, their signatures checked by the Standard Webhooks reference library."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook

from theory_client import Client

from conftest import WEBHOOK_SECRET, Server


class Target:
    """A webhook target that keeps what it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.done = threading.Event()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                target.received.append(({name.lower(): value for name, value in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()
                if json.loads(body).get("type") == "run.completed":
                    target.done.set()

            def log_message(self, *_: Any) -> None:
                return

        self.http = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}/hook"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


def test_every_message_verifies_with_the_reference_implementation(server: Server) -> None:
    target = Target()
    try:
        with Client(server.url) as theory:
            run = theory.run("theory/probe@1", {"text": "signed"}, webhook=target.url)
        assert target.done.wait(15), "no completed webhook"
        verifier = Webhook(WEBHOOK_SECRET)
        types = []
        for headers, body in target.received:
            payload = verifier.verify(body, headers)
            assert payload["data"]["id"] == run.id
            types.append(payload["type"])
        assert types[0] == "run.start" and types[-1] == "run.completed"
        # A tampered body does not verify.
        headers, body = target.received[-1]
        tampered = body.replace(b"succeeded", b"failed")
        try:
            verifier.verify(tampered, headers)
        except Exception as error:  # the library raises WebhookVerificationError
            assert "signature" in str(error).lower() or type(error).__name__ == "WebhookVerificationError"
        else:
            raise AssertionError("a tampered body verified")
    finally:
        target.http.shutdown()

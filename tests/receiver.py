"""A real HTTP receiver for webhook tests: a thread on 127.0.0.1 at a free port.

It records every request (headers and body), can answer 500 a given number of times first,
and can sleep before answering (a receiver that hangs past the sender's timeout).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from principles import verify_signature


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int

    def valid(self, secret: str) -> bool:
        return verify_signature(
            secret,
            self.body,
            self.headers.get("charter-timestamp", ""),
            self.headers.get("charter-signature", ""),
        )

    @property
    def delivery(self) -> str:
        return self.headers["charter-delivery"]


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.fail_next = 0
        self.sleep_s = 0.0
        self.arrived = 0  # requests read so far, answered or not
        self.lock = threading.Lock()
        self.got = threading.Condition(self.lock)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with owner.lock:
                    owner.arrived += 1
                if owner.sleep_s:
                    threading.Event().wait(owner.sleep_s)
                with owner.lock:
                    code = 500 if owner.fail_next > 0 else 204
                    owner.fail_next = max(owner.fail_next - 1, 0)
                    owner.requests.append(
                        Received({k.lower(): v for k, v in self.headers.items()}, body, code)
                    )
                    owner.got.notify_all()
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the sender gave up waiting
                    pass

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.answered < 300]

    def wait_for(self, accepted: int, timeout_s: float = 10.0) -> list[Received]:
        """Block until `accepted` requests were answered 2xx (or the timeout passes)."""
        with self.lock:
            self.got.wait_for(
                lambda: sum(r.answered < 300 for r in self.requests) >= accepted, timeout_s
            )
        return self.accepted()


@contextmanager
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()

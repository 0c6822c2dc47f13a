"""Base of the provider simulators: a real HTTP server on loopback that can inject faults.

Each simulator subclasses `Simulator`, implements `handle(request) -> Reply` with the
provider's documented routes, signatures and payloads, and counts what it did so tests can
prove that no side effect happened twice.
"""
from __future__ import annotations

import collections
import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    raw_query: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self):
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict | list | str = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        body = self.body
        if isinstance(body, (dict, list)):
            body = json.dumps(body, ensure_ascii=False).encode()
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        elif isinstance(body, str):
            body = body.encode()
        return body, headers


@dataclass
class Faults:
    """Fail a share of calls *before* the simulator applies them: 5xx or a hang past the
    client's timeout. `seed` makes a run repeatable."""

    rate: float = 0.0
    hang_seconds: float = 0.0   # > client timeout to simulate a timeout; 0 disables hangs
    seed: int = 7
    only_paths: tuple[str, ...] = ()  # empty: every path

    def __post_init__(self):
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def pick(self, path: str) -> str | None:
        if self.rate <= 0 or (self.only_paths and not path.startswith(self.only_paths)):
            return None
        with self._lock:
            if self._rng.random() >= self.rate:
                return None
            return "hang" if self.hang_seconds and self._rng.random() < 0.5 else "5xx"


class Simulator:
    name = "simulator"

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.calls: collections.Counter[str] = collections.Counter()
        self.injected: collections.Counter[str] = collections.Counter()
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- to override -------------------------------------------------------------
    def handle(self, request: Request) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- lifecycle ---------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "Simulator":
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                req = Request(self.command, parts.path, parse_qs(parts.query), parts.query,
                              {k.lower(): v for k, v in self.headers.items()}, body)
                fault = sim.faults.pick(parts.path)
                with sim.lock:
                    sim.calls[f"{self.command} {parts.path}"] += 1
                    if fault:
                        sim.injected[fault] += 1
                if fault == "hang":
                    time.sleep(sim.faults.hang_seconds)
                    reply = Reply(504, {"error": "injected timeout"})
                elif fault == "5xx":
                    reply = Reply(503, {"error": "injected failure"})
                else:
                    try:
                        reply = sim.handle(req)
                    except Exception as exc:  # a simulator bug must be visible
                        reply = Reply(500, {"error": f"simulator error: {exc!r}"})
                payload, headers = reply.encoded()
                try:
                    self.send_response(reply.status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): that is the point of a hang

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name=f"{self.name}-sim")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

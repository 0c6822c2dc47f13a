"""Test helpers: signed webhook deliveries, an in-process launcher of flow runs, the CLI
run in this process."""
from __future__ import annotations

import json
import threading
import time
import uuid

from api.webhooks import request_line, signature_headers

SENDER, SECRET = "portal", "test-secret-portal"


def signed_headers(body: bytes, *, sender: str = SENDER, secret: str = SECRET,
                   stamp: int | None = None) -> dict:
    return {"Content-Type": "application/json",
            **signature_headers(sender, secret, body, None if stamp is None else str(stamp))}


def order_status(client, order_id: str, *, sender: str = SENDER, secret: str = SECRET,
                 stamp: int | None = None, signed_path: str | None = None):
    """GET /orders/<id> as the sending system asks for it: signed over the request line
    (`signed_path`: sign another address than the one asked, as a replay would)."""
    line = request_line("GET", signed_path or f"/orders/{order_id}")
    return client.get(f"/orders/{order_id}", headers=signature_headers(
        sender, secret, line, None if stamp is None else str(stamp)))


def run_together(fn, n: int) -> tuple[list, list[Exception]]:
    """Call `fn` in `n` threads released at the same instant: (its answers, its exceptions)."""
    answers: list = []
    errors: list[Exception] = []
    start = threading.Barrier(n)

    def run():
        try:
            start.wait()
            answers.append(fn())
        except Exception as exc:  # pragma: no cover - the caller asserts there is none
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers, errors


def order_payload(name="江苏康达医疗设备有限公司", lines=(("MON-M8", 2),), event_id=None,
                  **extra) -> dict:
    payload = {"event_id": event_id or f"evt-{uuid.uuid4().hex[:12]}",
               "customer": {"name": name, "contact_name": "顾晓峰",
                            "contact_email": "guxf@example.com"},
               "rep_id": "rep-zhangwei",
               "lines": [{"sku": s, "quantity": q} for s, q in lines]}
    payload.update(extra)
    return payload


def post_order(client, payload: dict, **kw):
    body = json.dumps(payload, ensure_ascii=False).encode()
    return client.post("/webhooks/intent-orders", content=body, headers=signed_headers(body, **kw))


class InlineLauncher:
    """Runs the deployment's flow in this process (a real Prefect flow run under the test
    harness) instead of asking a served runner; records what it was asked to start."""

    def __init__(self) -> None:
        self.launched: list[tuple[str, dict, str]] = []

    def launch(self, deployment: str, parameters: dict, idempotency_key: str) -> str:
        from flows.intent_order import process_intent_orders
        from flows.signing import complete_signings

        self.launched.append((deployment, parameters, idempotency_key))
        flow_fn = {"intent-order/intent-order": process_intent_orders,
                   "signing-completed/signing-completed": complete_signings}[deployment]
        try:
            flow_fn(**parameters)
        except RuntimeError:
            pass  # a run that leaves orders to retry fails visibly; the sweeper takes over
        return f"inline-{len(self.launched)}"


def run_pending(hub) -> InlineLauncher:
    """Dispatch what waits in the inbox, batch after batch, as the API's dispatcher would,
    the runs inline; the launcher says what was started."""
    from flows.dispatch import dispatch_pending

    launcher = InlineLauncher()
    while dispatch_pending(hub.db_url, launcher, batch_size=50):
        pass
    return launcher


class LiveServer:
    """The hub's API on a real loopback port (uvicorn in a thread), for callers that speak
    HTTP themselves: provider simulators posting callbacks, a browser."""

    def __init__(self, app, port: int | None = None) -> None:
        import uvicorn

        self.port = port = port or free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                    log_level="warning", access_log=False))
        self.thread = None

    def __enter__(self) -> "LiveServer":
        import threading

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("API server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def in_process_cli(monkeypatch, capsys, db_url: str, data_dir):
    """For a fixture (`yield from`): `salesops …` run in this process against `db_url`, as a
    function returning (exit code, out, err)."""
    import pytest

    from connectors.settings import get_settings
    from deployments.cli import main

    monkeypatch.setenv("SALESOPS_DATABASE_URL", db_url)
    monkeypatch.setenv("SALESOPS_DATA_DIR", str(data_dir))
    get_settings.cache_clear()

    def run(*args) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        out = capsys.readouterr()
        return exc.value.code, out.out, out.err

    try:
        yield run
    finally:
        get_settings.cache_clear()


def sign_on_the_builtin_page(hub, client):
    """An order posted, quoted (`run_pending`) and signed by the customer on the built-in
    signing page; its completion not yet run. Returns (order id, quote, the page's answer)."""
    oid = post_order(client, order_payload()).json()["order_id"]
    run_pending(hub)
    return (oid, *sign_the_quote_of(hub, client, oid))


def sign_the_quote_of(hub, client, oid: str):
    """The quote of a quoted order signed by the customer on the built-in signing page; its
    completion not yet run. Returns (quote, the page's answer)."""
    import base64

    from sqlmodel import select

    from deployments.demo import handwritten_signature
    from flows.order_steps import signing_link
    from models import Quote
    from models.db import session_scope

    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
    link = signing_link(hub.settings, quote).removeprefix("http://testserver")
    form = {"signer_name": "顾晓峰", "consent": "yes", "signature": "data:image/png;base64,"
            + base64.b64encode(handwritten_signature()).decode()}
    return quote, client.post(link, data=form)


def query_plans(engine, table: str, fn) -> list[list[str]]:
    """SQLite's plan (EXPLAIN QUERY PLAN, its detail column) of each statement reading `table`
    that `fn()` sends through `engine`."""
    from sqlalchemy import event

    seen: list[tuple[str, object]] = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if table in statement:
            seen.append((statement, parameters))
    event.listen(engine, "before_cursor_execute", keep)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    with engine.connect() as conn:
        return [[row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                        parameters)]
                for statement, parameters in seen]

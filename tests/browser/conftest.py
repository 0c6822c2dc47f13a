"""Browser tests: headless Chromium driven over the DevTools protocol, against the hub's
FastAPI app served by uvicorn on a free local port.

No driver download and no extra package: Chromium is started with
`--remote-debugging-port=0` and spoken to over its WebSocket with `websockets` (installed with
uvicorn[standard]). Everything here skips when no Chromium is installed; set
SALESOPS_CHROMIUM to a browser binary to choose one.

The Chinese text of the page needs a CJK font. Test machines often have none (phones always
do), so the browser's fontconfig also sees the font the project ships for its PDFs.
"""
from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from connectors.settings import Settings
from tests.support import LiveServer, free_port

PROJECT = Path(__file__).resolve().parents[2]
FONT_DIR = PROJECT / "reports" / "fonts"

CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-default-browser-check", "--disable-dev-shm-usage", "--mute-audio",
    "--disable-features=Translate,MediaRouter,OptimizationHints", "--lang=zh-CN",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
]

# a phone: 390x844 CSS px at 3x density, touch, mobile viewport rules
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True}
PHONE_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Mobile Safari/537.36")


def find_chromium() -> str | None:
    configured = os.environ.get("SALESOPS_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("websockets") is None:
        return "the websockets package is not installed"
    if find_chromium() is None:
        return "Chromium is not installed (apt-get install chromium, or set SALESOPS_CHROMIUM)"
    return None


# --- a small DevTools-protocol client --------------------------------------------------------

class CDPError(RuntimeError):
    pass


class CDP:
    """One WebSocket to the browser; page sessions are multiplexed on it (flatten mode).
    Synchronous: a command reads messages until its answer and keeps the events it saw."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=None, open_timeout=30, compression=None)
        self.events: list[dict] = []
        self._next_id = 0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()

    def _read(self, deadline: float) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no answer from the browser")
        msg = json.loads(self.ws.recv(timeout=remaining))
        if "method" in msg and "id" not in msg:
            self.events.append(msg)
        return msg

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        self._next_id += 1
        msg_id = self._next_id
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read(deadline)
            if answer.get("id") == msg_id:
                if "error" in answer:
                    raise CDPError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def wait_event(self, method: str, session: str | None, since: int,
                   predicate=lambda params: True, timeout: float = 30.0) -> dict:
        """The first event `method` of `session` received at or after index `since`."""
        deadline = time.monotonic() + timeout
        seen = since
        while True:
            for event in self.events[seen:]:
                if event["method"] == method and event.get("sessionId") == session \
                        and predicate(event.get("params", {})):
                    return event["params"]
            seen = len(self.events)
            self._read(deadline)


class Page:
    """One tab in its own browser context (fresh cookies/storage), emulating a phone."""

    def __init__(self, cdp: CDP) -> None:
        self.cdp = cdp
        self.context = cdp.send("Target.createBrowserContext")["browserContextId"]
        self.target = cdp.send("Target.createTarget", {
            "url": "about:blank", "browserContextId": self.context})["targetId"]
        self.session = cdp.send("Target.attachToTarget", {
            "targetId": self.target, "flatten": True})["sessionId"]
        for method in ("Page.enable", "Runtime.enable", "Network.enable"):
            self.send(method)
        self.send("Emulation.setDeviceMetricsOverride", PHONE)
        self.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
        self.send("Emulation.setUserAgentOverride", {
            "userAgent": PHONE_UA, "acceptLanguage": "zh-CN,zh;q=0.9", "platform": "Android"})
        self.status: int | None = None

    def send(self, method: str, params: dict | None = None, timeout: float = 30.0) -> dict:
        return self.cdp.send(method, params, self.session, timeout)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.cdp.send("Target.closeTarget", {"targetId": self.target})
        with contextlib.suppress(Exception):
            self.cdp.send("Target.disposeBrowserContext", {"browserContextId": self.context})

    # -- navigation ----------------------------------------------------------------------------
    def mark(self) -> int:
        return len(self.cdp.events)

    def wait_loaded(self, since: int, timeout: float = 30.0) -> int | None:
        """Wait for the next page load after `since`; remember the document's HTTP status."""
        self.cdp.wait_event("Page.loadEventFired", self.session, since, timeout=timeout)
        statuses = [e["params"]["response"]["status"] for e in self.cdp.events[since:]
                    if e["method"] == "Network.responseReceived"
                    and e.get("sessionId") == self.session
                    and e["params"].get("type") == "Document"]
        self.status = statuses[-1] if statuses else None
        return self.status

    def goto(self, url: str) -> int | None:
        since = self.mark()
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CDPError(f"navigation to {url} failed: {result['errorText']}")
        return self.wait_loaded(since)

    # -- script --------------------------------------------------------------------------------
    def js(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise CDPError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def text(self) -> str:
        return self.js("document.body.innerText")

    def center_of(self, selector: str) -> tuple[float, float]:
        """Scroll the element to the middle of the viewport; its centre in CSS px."""
        rect = self.js(f"""(() => {{const el = document.querySelector({json.dumps(selector)});
            el.scrollIntoView({{block: 'center', inline: 'center'}});
            const r = el.getBoundingClientRect();
            return {{x: r.left + r.width / 2, y: r.top + r.height / 2}};}})()""")
        return rect["x"], rect["y"]

    def rect_of(self, selector: str) -> dict:
        self.center_of(selector)
        return self.js(f"""(() => {{const r = document.querySelector({json.dumps(selector)})
            .getBoundingClientRect();
            return {{left: r.left, top: r.top, width: r.width, height: r.height}};}})()""")

    # -- touch ---------------------------------------------------------------------------------
    def _touch(self, kind: str, points: list[tuple[float, float]]) -> None:
        self.send("Input.dispatchTouchEvent", {
            "type": kind, "touchPoints": [{"x": x, "y": y, "id": 1, "radiusX": 4, "radiusY": 4,
                                           "force": 0.5} for x, y in points]})

    def tap(self, selector: str) -> None:
        x, y = self.center_of(selector)
        self._touch("touchStart", [(x, y)])
        self._touch("touchEnd", [])

    def swipe(self, points: list[tuple[float, float]]) -> None:
        """One finger stroke through `points` (viewport CSS px)."""
        self._touch("touchStart", [points[0]])
        for point in points[1:]:
            self._touch("touchMove", [point])
        self._touch("touchEnd", [])

    def screenshot(self, path: Path, full_page: bool = False, scroll_top: bool = True) -> Path:
        params: dict = {"format": "png"}
        if full_page:
            size = self.js("({w: document.documentElement.scrollWidth,"
                           " h: document.documentElement.scrollHeight})")
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["w"], "height": size["h"],
                                "scale": 1})
        elif scroll_top:
            self.js("window.scrollTo(0, 0)")
        data = self.send("Page.captureScreenshot", params, timeout=60)["data"]
        path.write_bytes(base64.b64decode(data))
        return path


class Browser:
    def __init__(self, executable: str, workdir: Path) -> None:
        self.profile = workdir / "profile"
        self.profile.mkdir()
        fonts_conf = workdir / "fonts.conf"
        fonts_conf.write_text(
            '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
            '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
            f"  <dir>{FONT_DIR}</dir>\n  <cachedir>{workdir / 'fontcache'}</cachedir>\n"
            "</fontconfig>\n", encoding="utf-8")
        env = dict(os.environ, FONTCONFIG_FILE=str(fonts_conf))
        self.log = (workdir / "chromium.log").open("wb")
        self.proc = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
        self.cdp: CDP | None = None
        try:
            self.cdp = CDP(self._ws_url(workdir))
        except BaseException:
            self.close()
            raise

    def _ws_url(self, workdir: Path, timeout: float = 60.0) -> str:
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if port_file.exists():
                lines = port_file.read_text().split()
                if len(lines) >= 2:
                    return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            time.sleep(0.05)
        log = (workdir / "chromium.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"Chromium did not open its DevTools port; its log:\n{log}")

    def new_page(self) -> Page:
        return Page(self.cdp)

    def close(self) -> None:
        if self.cdp is not None:
            with contextlib.suppress(Exception):
                self.cdp.send("Browser.close", timeout=10)
            self.cdp.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        # the browser's helpers (zygote, renderers) share the process group we created for it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.log.close()


# --- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    reason = browser_unavailable()
    if reason:
        pytest.skip(reason)
    workdir = Path(tempfile.mkdtemp(prefix="salesops-chromium-"))
    b = Browser(find_chromium(), workdir)
    try:
        yield b
    finally:
        b.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def phone(browser):
    """A fresh tab at a phone's viewport with touch."""
    page = browser.new_page()
    try:
        yield page
    finally:
        page.close()


@pytest.fixture
def live_port() -> int:
    return free_port()


@pytest.fixture
def settings(db_url, tmp_path, live_port) -> Settings:
    """tests/conftest.py's settings, with public_base_url = the live server (so the shared
    `seeded` and `hub` fixtures build on it): the signing links embed its address."""
    return Settings(_env_file=None, data_dir=tmp_path / "data", database_url=db_url,
                    public_base_url=f"http://127.0.0.1:{live_port}",
                    webhook_senders={"portal": "test-secret-portal"},
                    connector_timeout_seconds=2.0)


@pytest.fixture
def live_server(hub, live_port):
    """The hub's app under uvicorn in a thread; yields its base URL. Accepted events stay
    pending (launcher=None): the tests dispatch them explicitly."""
    from api.app import create_app

    with LiveServer(create_app(hub.settings, launcher=None), live_port) as live:
        yield live.url

"""The embedded stack on one machine: local Prefect server, served deployments, the API.

Every child runs in its own process group with its log in <data_dir>/logs, and `stop()`
ends each group, so nothing is left running.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
# what asks `salesops serve` to stop everything it started (SIGHUP: its terminal went away)
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float, what: str, proc: subprocess.Popen | None = None,
               log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} 提前退出（退出码 {proc.returncode}）：\n{tail}")
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{what} {timeout:.0f} 秒内未就绪")


class LocalStack:
    def __init__(self, data_dir: Path, env: dict[str, str], api_port: int | None = None,
                 prefect_api_url: str | None = None, runner_limit: int = 4,
                 api_host: str = "127.0.0.1") -> None:
        self.data_dir = data_dir.resolve()
        self.logs = self.data_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.api_port = api_port or free_port()
        self.api_host = api_host
        # "…/api/" as often pasted: the paths below are appended with their own "/"
        self.prefect_api_url = prefect_api_url.rstrip("/") if prefect_api_url else None
        self.own_prefect = prefect_api_url is None
        self.runner_limit = runner_limit
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.procs: list[tuple[str, subprocess.Popen]] = []

    @property
    def api_url(self) -> str:
        """Where this machine reaches the API: the address it listens on (a wildcard is
        reached on loopback)."""
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.api_host,
                                                                       self.api_host)
        return f"http://[{host}]:{self.api_port}" if ":" in host else \
            f"http://{host}:{self.api_port}"

    @property
    def prefect_ui_url(self) -> str:
        return self.prefect_api_url.removesuffix("/api")

    def _spawn(self, name: str, args: list[str], nice: int = 0
               ) -> tuple[subprocess.Popen, Path]:
        log = self.logs / f"{name}.log"

        def prepare_child():
            # a caller waiting for SIGTERM blocks it; the children must still obey it
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            if nice:
                os.nice(nice)

        # appended: after a crash and a restart, the log that explains the crash is still there
        with log.open("ab") as out:
            out.write(f"===== {time.strftime('%Y-%m-%d %H:%M:%S %z')} {' '.join(args[1:4])} "
                      "=====\n".encode())
            out.flush()
            proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, preexec_fn=prepare_child)
        self.procs.append((name, proc))
        return proc, log

    def start(self) -> "LocalStack":
        # quote PDFs and mails (made by served runs) carry links to this API
        self.env["SALESOPS_PUBLIC_BASE_URL"] = self.env.get("SALESOPS_PUBLIC_BASE_URL") \
            or self.api_url
        try:
            if self.own_prefect:
                port = free_port()
                self.prefect_api_url = f"http://127.0.0.1:{port}/api"
                self.env.update({
                    "PREFECT_HOME": str(self.data_dir / "prefect"),  # Prefect's own database
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                    "PREFECT_SERVER_API_HOST": "127.0.0.1",
                    "PREFECT_SERVER_API_PORT": str(port),
                })
                # background work yields the CPU to webhook intake (accept latency)
                proc, log = self._spawn("prefect-server", [
                    sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                    "--port", str(port)], nice=5)
                wait_until(lambda: httpx.get(f"{self.prefect_api_url}/health", timeout=2)
                           .status_code == 200, 120, "Prefect 服务", proc, log)
            self.env["PREFECT_API_URL"] = self.prefect_api_url
            self.env.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "2")  # pick up runs quickly
            proc, log = self._spawn("deployments", [
                sys.executable, "-m", "deployments.serve", "--limit", str(self.runner_limit)],
                nice=10)
            wait_until(self._deployments_ready, 120, f"流程部署（Prefect {self.prefect_api_url}）",
                       proc, log)
            proc, log = self._spawn("api", [
                sys.executable, "-m", "uvicorn", "api.main:app", "--host", self.api_host,
                "--port", str(self.api_port), "--no-access-log"])
            wait_until(lambda: httpx.get(f"{self.api_url}/healthz", timeout=2)
                       .status_code == 200, 60, "API", proc, log)
        except BaseException:
            self.stop()
            raise
        return self

    def _deployments_ready(self) -> bool:
        from deployments.serve import load_deployments

        want = {d["name"] for d in load_deployments()}
        r = httpx.post(f"{self.prefect_api_url}/deployments/filter", json={}, timeout=5)
        return r.status_code == 200 and want <= {d["name"] for d in r.json()}

    def exited(self) -> list[tuple[str, int]]:
        """The parts that ended on their own: (name, exit code)."""
        return [(name, proc.returncode) for name, proc in self.procs if proc.poll() is not None]

    def stop(self) -> None:
        """Stop in reverse order (API, runner, Prefect server), each process group whole."""
        for _, proc in reversed(self.procs):
            for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            # children that outlived their leader (served flow runs) go with the group
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.procs.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

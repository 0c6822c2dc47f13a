"""钉钉 自定义机器人 simulator (加签 security): `POST /robot/send?access_token=…&timestamp=…&sign=…`.

Checks what the robot guide documents, independently of the client code, and answers like the
robot (HTTP 200, `{"errcode": 0, "errmsg": "ok"}` or an error code):
- an unknown `access_token` → 300001 "token is not exist";
- with a secret: `timestamp` must be milliseconds within one hour of our clock, else 310000
  "invalid timestamp"; `sign` (after the usual query decoding, where an un-encoded "+" turns
  into a space) must equal Base64(HmacSHA256(key=secret, msg=f"{timestamp}\\n{secret}")),
  else 310000 "sign not match";
- `msgtype` "markdown" needs `markdown.title` and `markdown.text`, "text" needs
  `text.content`; `at.atMobiles` must be a list of strings. What a malformed body answers is
  not documented where we looked: the simulator uses 40035 "缺少参数 json" (DingTalk's generic
  "不合法的参数");
- 20 accepted messages per token per sliding minute; the 21st → 130101 "send too fast, exceed
  20 times per minute" and the robot stays throttled for `penalty_seconds` (10 minutes).
A mobile in `at.atMobiles` only shows as an @-mention when "@<mobile>" is in the text: each
message records which mobiles were `mentioned` that way.

Test controls: `throttle_next(n)` answers the next n sends with 130101.
"""
from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import time
from dataclasses import dataclass

from tests.simulators.base import Faults, Reply, Request, Simulator

SEND_PATH = "/robot/send"
TIMESTAMP_WINDOW_MS = 60 * 60 * 1000
OK = {"errcode": 0, "errmsg": "ok"}


def expected_sign(secret: str, timestamp: str) -> str:
    """The documented signature, written independently of connectors.notify."""
    mac = hmac.new(secret.encode("utf-8"), (timestamp + "\n" + secret).encode("utf-8"),
                   digestmod=hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("utf-8")


@dataclass(frozen=True)
class DingTalkMessage:
    msgtype: str
    title: str
    text: str
    at_mobiles: tuple[str, ...]
    mentioned: tuple[str, ...]  # at_mobiles that also appear as "@<mobile>" in the text
    body: dict


class DingTalkRobotSimulator(Simulator):
    name = "dingtalk"

    def __init__(self, access_token: str, secret: str, *, rate_limit: int = 20,
                 rate_window: float = 60.0, penalty_seconds: float = 600.0,
                 faults: Faults | None = None) -> None:
        super().__init__(faults)
        self.access_token = access_token
        self.secret = secret
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.penalty_seconds = penalty_seconds
        self.messages: list[DingTalkMessage] = []
        self.refused: collections.Counter[str] = collections.Counter()  # errmsg → count
        self.signatures_checked = 0
        self._accepted: collections.deque[float] = collections.deque()
        self._throttled_until = 0.0
        self._forced = 0

    @property
    def send_url(self) -> str:
        return f"{self.url}{SEND_PATH}"

    def throttle_next(self, count: int) -> None:
        with self.lock:
            self._forced += count

    # --- wire --------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        if request.path != SEND_PATH:
            return Reply(404, {"errcode": 404, "errmsg": "no such path"})
        if request.method != "POST":
            return Reply(405, {"errcode": 405, "errmsg": "POST only"})
        query = {k: v[0] for k, v in request.query.items()}
        if query.get("access_token") != self.access_token:
            return self._refuse(300001, "token is not exist")
        if self.secret:
            refused = self._check_signature(query.get("timestamp", ""), query.get("sign", ""))
            if refused:
                return refused
        try:
            body = request.json()
            checked = self._check_body(body)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return self._refuse(40035, f"缺少参数 json: {exc}")
        with self.lock:
            now = time.monotonic()
            if self._forced > 0:
                self._forced -= 1
                return self._refuse(130101, "send too fast, exceed 20 times per minute")
            if now < self._throttled_until:
                return self._refuse(130101, "send too fast, exceed 20 times per minute")
            while self._accepted and now - self._accepted[0] >= self.rate_window:
                self._accepted.popleft()
            if len(self._accepted) >= self.rate_limit:
                self._throttled_until = now + self.penalty_seconds
                return self._refuse(130101, "send too fast, exceed 20 times per minute")
            self._accepted.append(now)
            self.messages.append(checked)
        return Reply(200, OK)

    def _check_signature(self, timestamp: str, sign: str) -> Reply | None:
        with self.lock:
            self.signatures_checked += 1
        if not timestamp.isdigit() or \
                abs(int(time.time() * 1000) - int(timestamp)) > TIMESTAMP_WINDOW_MS:
            return self._refuse(310000, "invalid timestamp")
        if not hmac.compare_digest(sign.encode(), expected_sign(self.secret, timestamp).encode()):
            return self._refuse(310000, "sign not match")
        return None

    @staticmethod
    def _check_body(body) -> DingTalkMessage:
        msgtype = body["msgtype"]
        if msgtype == "markdown":
            title, text = body["markdown"]["title"], body["markdown"]["text"]
        elif msgtype == "text":
            title, text = "", body["text"]["content"]
        else:
            raise ValueError(f"msgtype {msgtype!r} not simulated")
        if not isinstance(text, str) or not text.strip() or \
                (msgtype == "markdown" and (not isinstance(title, str) or not title.strip())):
            raise ValueError("empty title or text")
        at = body.get("at") or {}
        mobiles = at.get("atMobiles", [])
        if not isinstance(mobiles, list) or not all(isinstance(m, str) for m in mobiles):
            raise ValueError("at.atMobiles must be a list of strings")
        mentioned = tuple(m for m in mobiles if f"@{m}" in text)
        return DingTalkMessage(msgtype, title, text, tuple(mobiles), mentioned, body)

    def _refuse(self, code: int, message: str) -> Reply:
        with self.lock:
            self.refused[message] += 1
        return Reply(200, {"errcode": code, "errmsg": message})

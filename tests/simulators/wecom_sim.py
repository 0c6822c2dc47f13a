"""企业微信 群机器人 simulator: `POST /cgi-bin/webhook/send?key=<key>`.

Checks what the robot guide documents, independently of the client code, and answers like the
robot (HTTP 200, `{"errcode": 0, "errmsg": "ok"}` or an error code):
- an unknown `key` → 93000 "invalid webhook url";
- `msgtype` "text" (`text.content` ≤ 2048 UTF-8 bytes, optional `mentioned_list` /
  `mentioned_mobile_list` string lists) or "markdown" (`markdown.content` ≤ 4096 bytes); an
  empty content → 44004, too long → 40058 "<type>.content exceed max length <n>", another
  msgtype → 40008, a body that is not JSON or has wrong types → 40058;
- 20 accepted messages per key per sliding minute; beyond → 45009 "api freq out of limit".
Markdown messages carry no @-mentions (the robot ignores `mentioned_mobile_list` there), so a
message's `mentioned_mobiles` is only filled for text messages.

Test controls: `throttle_next(n)` answers the next n sends with 45009, `busy_next(n)` with -1
"system busy"; `lose_answers(n, hang)` posts the next n messages and then hangs past the
client's timeout (the robot has no idempotency key, so the client's retry posts again).
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass

from tests.simulators.base import Faults, Reply, Request, Simulator

WEBHOOK_PATH = "/cgi-bin/webhook/send"
TEXT_MAX_BYTES = 2048
MARKDOWN_MAX_BYTES = 4096
OK = {"errcode": 0, "errmsg": "ok"}


@dataclass(frozen=True)
class WeComMessage:
    key: str
    msgtype: str
    content: str
    mentioned_mobiles: tuple[str, ...]
    body: dict


def _error(code: int, message: str) -> Reply:
    return Reply(200, {"errcode": code, "errmsg": f"{message}, hint: [sim], from ip: 127.0.0.1"})


class WeComRobotSimulator(Simulator):
    name = "wecom"

    def __init__(self, keys: str | tuple[str, ...], *, rate_limit: int = 20,
                 rate_window: float = 60.0, faults: Faults | None = None) -> None:
        super().__init__(faults)
        self.keys = {keys} if isinstance(keys, str) else set(keys)
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.messages: list[WeComMessage] = []
        self.refused: collections.Counter[int] = collections.Counter()  # errcode → count
        self._accepted: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque)
        self._forced: collections.deque[tuple[int, str]] = collections.deque()
        self._lose = 0
        self._lose_seconds = 0.0

    @property
    def send_url(self) -> str:
        return f"{self.url}{WEBHOOK_PATH}"

    # --- test controls -----------------------------------------------------------------
    def throttle_next(self, count: int) -> None:
        with self.lock:
            self._forced.extend([(45009, "api freq out of limit")] * count)

    def busy_next(self, count: int) -> None:
        with self.lock:
            self._forced.extend([(-1, "system busy")] * count)

    def lose_answers(self, count: int, hang_seconds: float) -> None:
        with self.lock:
            self._lose, self._lose_seconds = count, hang_seconds

    # --- wire --------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        if request.path != WEBHOOK_PATH:
            return Reply(404, {"errcode": 404, "errmsg": "no such path"})
        if request.method != "POST":
            return Reply(405, {"errcode": 405, "errmsg": "POST only"})
        key = (request.query.get("key") or [""])[0]
        if key not in self.keys:
            return self._refuse(93000, "invalid webhook url")
        try:
            body = request.json()
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            return self._refuse(40058, "invalid json request")
        checked = self._check(body)
        if isinstance(checked, Reply):
            return checked
        msgtype, content, mobiles = checked
        lose_for = 0.0
        with self.lock:
            if self._forced:
                code, message = self._forced.popleft()
                return self._refuse(code, message)
            accepted = self._accepted[key]
            now = time.monotonic()
            while accepted and now - accepted[0] >= self.rate_window:
                accepted.popleft()
            if len(accepted) >= self.rate_limit:
                return self._refuse(45009, "api freq out of limit")
            accepted.append(now)
            self.messages.append(WeComMessage(key, msgtype, content, mobiles, body))
            if self._lose > 0:
                self._lose -= 1
                lose_for = self._lose_seconds
        if lose_for:
            time.sleep(lose_for)  # posted to the group, but the client stops listening first
        return Reply(200, OK)

    def _check(self, body: dict) -> tuple[str, str, tuple[str, ...]] | Reply:
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "markdown"):
            return self._refuse(40008, f"invalid message type {msgtype!r}")
        part = body.get(msgtype)
        if not isinstance(part, dict):
            return self._refuse(40058, f"{msgtype} missing")
        content = part.get("content")
        if not isinstance(content, str) or not content.strip():
            return self._refuse(44004, "empty content")
        limit = TEXT_MAX_BYTES if msgtype == "text" else MARKDOWN_MAX_BYTES
        if len(content.encode("utf-8")) > limit:
            return self._refuse(40058, f"{msgtype}.content exceed max length {limit}. "
                                       "invalid Request Parameter")
        mobiles: tuple[str, ...] = ()
        if msgtype == "text":
            for field in ("mentioned_list", "mentioned_mobile_list"):
                value = part.get(field, [])
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    return self._refuse(40058, f"{field} must be a list of strings")
            mobiles = tuple(part.get("mentioned_mobile_list", []))
        return msgtype, content, mobiles

    def _refuse(self, code: int, message: str) -> Reply:
        with self.lock:
            self.refused[code] += 1
        return _error(code, message)

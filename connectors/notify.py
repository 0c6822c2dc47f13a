"""Pushes to people's group chats: an embedded push log (default), 企业微信 and 钉钉 group robots.

- `EmbeddedNotifier` writes one JSON file per push into a folder (`<folder>/<key hash>.json`),
  published atomically with a hard link, so the same key is written once: by one thread, one
  process, or after a crash (a half-written temp file is never taken for a push).
- `WeComRobotNotifier` posts to a 企业微信 群机器人 webhook
  (`POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=<key>`).
- `DingTalkRobotNotifier` posts to a 钉钉 自定义机器人
  (`POST https://oapi.dingtalk.com/robot/send?access_token=<token>&timestamp=<ms>&sign=<sign>`).

Idempotency. Neither robot takes an idempotency key and neither returns a message id: a message
the robot accepted cannot be recognised or taken back. The hub records every push in its
effects table, keyed by `PushMessage.key`, before and after calling (DESIGN.md, "Side effects
happen once"), so a retried or re-run *task* does not push again. What remains: an answer lost
after the robot posted (read timeout, cut connection, 5xx from a proxy behind which the robot
did post) is retried here and shows the message twice in the group. We accept that on purpose —
a duplicated reminder is cheaper than a lost escalation — and tests prove it rather than hide it.
The reference a robot push returns is derived from the key ("wecom:<hash>", "dingtalk:<hash>"),
the same on every retry.

Limits. Both robots allow 20 messages per minute per robot (钉钉 then blocks the robot for 10
minutes). Each client keeps a per-instance sliding window of 20 calls per 60 s and waits for a
free slot (up to `max_wait` seconds, else `TransientError` without calling); several processes
sharing one robot can still exceed it, and the robot's rate-limit errcodes are `TransientError`.
Over-long text is cut at a UTF-8 character boundary and marked "……（内容过长，已截断）"; the
title, the link and the @-mentions are kept.

Rendering. Markdown is kept to what both robots render: a `###` heading for the title, the
caller's text (use `**bold**`, `[label](url)`, `> quote`, blank lines between paragraphs; 企业微信
renders no lists or images), and the link as `[查看详情](url)`. 企业微信 @-mentions by mobile work
only in `text` messages (`mentioned_mobile_list`; markdown @-mentions need WeCom userids), so a
WeCom push with `mention_mobiles` is sent as plain text with the markdown markup removed.
钉钉 @-mentions go in `at.atMobiles` *and* as "@<mobile>" in the text (otherwise no @ is shown).
`recipients` (our staff ids) are kept in the embedded log only: they are not WeCom/DingTalk
userids, and no mapping exists yet.

What was confirmed, and where (the official pages developer.work.weixin.qq.com/document/path/
91770 and open.dingtalk.com "自定义机器人" could not be fetched here; these are republications):
- 企业微信: webhook URL and `key` parameter; `text` (content ≤ 2048 bytes, UTF-8,
  `mentioned_list`, `mentioned_mobile_list`) and `markdown` (content ≤ 4096 bytes, the markdown
  subset, no mobile @-mention) bodies; 20 messages/min — from copies of the robot guide
  (cnblogs.com/tiandi/p/17768525.html, blog.csdn.net, chf007/action-wechat-work README, the
  wecom-bot skill citing document/path/99398). Error codes from the global table 90313 as
  republished in WxJava `WxCpErrorMsgEnum`: -1 系统繁忙, 40008 不合法的msgtype, 40058 不合法的参数,
  44004 文本消息content参数为空, 45002 消息内容大小超过限制, 45009 接口调用超过限制, 45033 接口并发调用
  超过限制, 93000 机器人webhookurl不合法或者机器人已经被移除出群, 93004 机器人被停用, 93008 不在群里.
  That an over-long markdown answers HTTP 200 with 40058 "markdown.content exceed max length
  4096" — from GitHub issues (dromara/domain-admin#82, RayWangQvQ/BiliBiliTool#569).
- 钉钉: URL, `access_token`, 加签 = urlEncode(Base64(HmacSHA256(key=secret,
  msg=f"{timestamp}\\n{secret}"))) in UTF-8 with `timestamp` in milliseconds within one hour of
  DingTalk's clock; `markdown` {title, text} with `at.atMobiles` / `isAtAll`; 20 messages/min
  then 10 minutes of throttling — from the official guide as quoted in blog.csdn.net posts,
  cnblogs.com/jesn/p/16279824.html and zhuifengshen/DingtalkChatbot. Error codes from GitHub
  issues: 310000 for "sign not match", "invalid timestamp", "keywords not in content" (and the
  IP whitelist) — jenkinsci/dingtalk-plugin#88 and #116, qd-today/qd#510; 300001 "token is not
  exist" — timonwong/prometheus-webhook-dingtalk#91; 130101 "send too fast, exceed 20 times
  per minute" — ccfos/nightingale#369.
Not confirmed: a documented maximum length for 钉钉 markdown (we cut at 4096 bytes, like WeCom's
markdown; raise `DINGTALK_MAX_BYTES` when the limit is known); 钉钉 410100 "发送速度太快而限流"
(taken as a rate limit, as newer docs are reported to say) and -1 "系统繁忙" for the robot; which
HTTP status accompanies each errcode (we read the JSON body whatever the status and let
`check_response` map a bare 429/5xx); WeCom's actual text limit (one issue shows 5120 enforced;
we keep to the documented 2048).
"""
from __future__ import annotations

import abc
import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import threading
import time
import unicodedata
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx
from pydantic import SecretStr

from connectors.base import (PermanentError, RemoteClient, TransientError, send,
                             transient_retry)
from connectors.files import publish_once

log = logging.getLogger(__name__)

WECOM_WEBHOOK_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
DINGTALK_URL = "https://oapi.dingtalk.com/robot/send"

WECOM_MARKDOWN_MAX_BYTES = 4096
WECOM_TEXT_MAX_BYTES = 2048
DINGTALK_MAX_BYTES = 4096  # not documented where we looked: conservative, like WeCom markdown

ROBOT_RATE_LIMIT = 20       # messages per robot ...
ROBOT_RATE_WINDOW = 60.0    # ... per minute (both robots)

TRUNCATION_MARKER = "……（内容过长，已截断）"
LINK_LABEL = "查看详情"

_MOBILE = re.compile(r"^\+?[0-9][0-9-]{4,19}$")


def mobile_number(text: str) -> str | None:
    """A mobile as the robots @-mention it, from one as people write it ("139 0000 0001",
    "+86 139-0000-0001", full-width digits): the digits alone, China's country code dropped;
    None when it is no mobile number."""
    number = re.sub(r"[\s\-.()（）]", "", unicodedata.normalize("NFKC", text))
    number = re.sub(r"^(?:\+?86|0086)(?=1\d{10}$)", "", number)
    return number if _MOBILE.match(number) else None


# --- value types ----------------------------------------------------------------------------

def _as_tuple(value) -> tuple:
    # a lone string must not become a tuple of characters
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@dataclass(frozen=True)
class PushMessage:
    key: str                 # idempotency key (e.g. "suspect:123:escalated"), also in the log
    title: str               # Chinese
    text: str                # Chinese, markdown allowed (keep it to what both robots render)
    recipients: tuple[str, ...] = ()       # staff ids (for the embedded log and @-mentions)
    mention_mobiles: tuple[str, ...] = ()  # mobiles to @-mention in the group
    link: str | None = None  # a page to open (rendered as a markdown link)

    def __post_init__(self) -> None:
        object.__setattr__(self, "recipients", tuple(str(r).strip() for r in
                                                     _as_tuple(self.recipients)))
        mobiles = tuple(str(m).strip() for m in _as_tuple(self.mention_mobiles))
        object.__setattr__(self, "mention_mobiles", tuple(dict.fromkeys(mobiles)))
        if not self.key or not self.key.strip():
            raise ValueError("PushMessage needs a key")
        if not self.title or not self.title.strip():
            raise ValueError("PushMessage needs a title")
        for mobile in self.mention_mobiles:
            if not _MOBILE.match(mobile):
                raise ValueError(f"not a mobile number: {mobile!r}")
        if self.link is not None:
            parts = urllib.parse.urlsplit(self.link)
            if parts.scheme not in ("http", "https") or not parts.netloc or \
                    any(c.isspace() for c in self.link):
                raise ValueError(f"link must be an http(s) URL without spaces: {self.link!r}")

    def to_json_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "text": self.text,
                "recipients": list(self.recipients),
                "mention_mobiles": list(self.mention_mobiles), "link": self.link}


@runtime_checkable
class Notifier(Protocol):
    provider: str

    def push(self, message: PushMessage) -> str:
        """Post the message; returns a message reference (the same for the same key)."""
        ...


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def reference_for(provider: str, key: str) -> str:
    return f"{provider}:{key_hash(key)[:16]}"


# --- rendering ------------------------------------------------------------------------------

def _nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _cut(text: str, max_bytes: int) -> str:
    """The longest prefix of `text` within `max_bytes` UTF-8 bytes (never half a character)."""
    if max_bytes <= 0:
        return ""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def fit(head: str, body: str, tail: str, max_bytes: int | None) -> tuple[str, bool]:
    """head + body + tail within `max_bytes` (None: no limit); when too long, the body is cut
    and marked, so the title (head) and the link / @-mentions (tail) survive.
    Returns (text, truncated)."""
    whole = head + body + tail
    if max_bytes is None or _nbytes(whole) <= max_bytes:
        return whole, False
    budget = max_bytes - _nbytes(head) - _nbytes(tail) - _nbytes(TRUNCATION_MARKER)
    if budget < 0:  # an absurd title or link: keep what fits of everything
        return _cut(whole, max_bytes - _nbytes(TRUNCATION_MARKER)) + TRUNCATION_MARKER, True
    return head + _cut(body, budget).rstrip() + TRUNCATION_MARKER + tail, True


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _markdown_link(url: str) -> str:
    # a ")" would end the markdown link early
    return f"[{LINK_LABEL}]({url.replace('(', '%28').replace(')', '%29')})"


def render_markdown(message: PushMessage, max_bytes: int | None, *,
                    mention_line: bool = False) -> tuple[str, bool]:
    """The markdown both robots render: heading, text, link, and (钉钉) the "@mobile" line."""
    head = f"### {_one_line(message.title)}\n\n"
    tail = ""
    if message.link:
        tail += "\n\n" + _markdown_link(message.link)
    if mention_line and message.mention_mobiles:
        tail += "\n\n" + " ".join(f"@{m}" for m in message.mention_mobiles)
    return fit(head, message.text.strip(), tail, max_bytes)


_MD_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)\)")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*", re.MULTILINE)
_MD_QUOTE = re.compile(r"^\s{0,3}>\s?", re.MULTILINE)
_MD_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")
_FONT_TAG = re.compile(r"</?font[^>]*>", re.IGNORECASE)


def markdown_to_plain(text: str) -> str:
    """The caller's markdown as plain text for a WeCom `text` message."""
    text = _MD_LINK.sub(lambda m: f"{m.group(1)}（{m.group(2)}）" if m.group(1) else m.group(2),
                        text)
    text = _MD_HEADING.sub("", text)
    text = _MD_QUOTE.sub("", text)
    text = _MD_EMPHASIS.sub(r"\2", text)
    text = _FONT_TAG.sub("", text)
    return text


def render_plain(message: PushMessage, max_bytes: int) -> tuple[str, bool]:
    head = f"【{_one_line(message.title)}】\n"
    tail = f"\n{LINK_LABEL}：{message.link}" if message.link else ""
    return fit(head, markdown_to_plain(message.text).strip(), tail, max_bytes)


# --- embedded default: one JSON file per push -----------------------------------------------

class EmbeddedNotifier:
    """Pushes as files `<folder>/<key hash>.json`: the folder is the embedded push log.

    A second push with the same key (from any thread or process) finds the file and returns the
    reference it holds without writing again. `list_pushes()` reads the log back."""

    provider = "embedded"

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()

    def path_for(self, key: str) -> Path:
        return self.folder / f"{key_hash(key)}.json"

    def find(self, key: str) -> dict[str, Any] | None:
        return self._read(self.path_for(key))

    def push(self, message: PushMessage) -> str:
        path = self.path_for(message.key)
        with self._lock:
            done = self._read(path)
            if done is not None:
                log.info("push log: %s already recorded, not writing again", message.key)
                return done["reference"]
            self.folder.mkdir(parents=True, exist_ok=True)
            reference = reference_for(self.provider, message.key)
            # the markdown as a robot would show it (uncut: the log keeps the whole text)
            markdown, _ = render_markdown(message, None, mention_line=True)
            record = {"reference": reference, "provider": self.provider,
                      "pushed_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                      **message.to_json_dict(), "markdown": markdown}
            payload = json.dumps(record, ensure_ascii=False, indent=2).encode("utf-8")
            if not publish_once(path, payload):
                # another process recorded the same key a moment ago: its reference stands
                winner = self._read(path)
                return winner["reference"] if winner else reference
            log.info("push log: recorded %s (%s) for %s", message.key, reference,
                     ", ".join(message.recipients) or "the group")
            return reference

    def list_pushes(self) -> list[dict[str, Any]]:
        """Every recorded push, oldest first."""
        if not self.folder.is_dir():
            return []
        records = [self._read(p) for p in self.folder.glob("*.json")]
        return sorted((r for r in records if r), key=lambda r: r["pushed_at"])

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(record, dict) or not record.get("reference"):
                raise ValueError("no reference")
            return record
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise PermanentError(f"push log entry {path} is unreadable: {exc!r}",
                                 provider=self.provider, code="corrupt-entry") from exc


# --- shared by the robots -------------------------------------------------------------------

class RateWindow:
    """At most `limit` calls per `window` seconds from this process (a sliding window).

    `acquire()` waits for a free slot when that takes at most `max_wait` seconds; otherwise it
    raises TransientError without waiting, so the task can be retried later."""

    def __init__(self, limit: int, window: float, max_wait: float, provider: str) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("rate limit needs limit >= 1 and window > 0")
        self.limit, self.window, self.max_wait, self.provider = limit, window, max_wait, provider
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                while self._calls and now - self._calls[0] >= self.window:
                    self._calls.popleft()
                if len(self._calls) < self.limit:
                    self._calls.append(now)
                    return
                wait = self.window - (now - self._calls[0])
            if wait > self.max_wait:
                raise TransientError(
                    f"{self.provider}: {self.limit} messages in {self.window:g} s already sent "
                    f"from here; next slot in {wait:.1f} s", provider=self.provider,
                    code="rate-limited-locally")
            time.sleep(wait)


def _robot_answer(response: httpx.Response, provider: str,
                  codes: dict[int, tuple[str, bool]]) -> None:
    """Both robots answer {"errcode": 0, "errmsg": "ok"}; anything else is a typed error."""
    try:
        body = response.json()
    except ValueError as exc:
        # a proxy or gateway page instead of the robot's JSON: the robot was not reached
        raise TransientError(f"{provider} answered non-JSON: {response.text[:200]}",
                             provider=provider, code="non-json") from exc
    if not isinstance(body, dict) or "errcode" not in body:
        raise PermanentError(f"{provider} answered an unexpected body: {body!r:.200}",
                             provider=provider, code="bad-body")
    code = body.get("errcode")
    if code in (0, "0"):
        return
    try:
        code_int = int(code)
    except (TypeError, ValueError):
        code_int = None
    label, transient = codes.get(code_int, ("unknown error code", False))
    error = TransientError if transient else PermanentError
    raise error(f"{provider} error {code} {label}: {str(body.get('errmsg', ''))[:300]}",
                provider=provider, code=str(code))


class _RedactRobotSecrets(logging.Filter):
    """httpx logs every request URL at INFO; robot URLs carry the credential in the query."""

    _SECRET_PARAM = re.compile(r"([?&](?:key|access_token|sign)=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._SECRET_PARAM.sub(r"\1***", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def _redact_httpx_logs() -> None:
    httpx_log = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactRobotSecrets) for f in httpx_log.filters):
        httpx_log.addFilter(_RedactRobotSecrets())


def _secret(value: SecretStr | str) -> SecretStr:
    return value if isinstance(value, SecretStr) else SecretStr(value or "")


class _Robot(RemoteClient, abc.ABC):
    """What the two robot clients share: the HTTP client, the rate window and the retry."""

    provider = "robot"

    def __init__(self, *, timeout: float, attempts: int, rate_limit: int | None,
                 rate_window: float, max_wait: float | None, backoff_initial: float,
                 backoff_max: float) -> None:
        _redact_httpx_logs()
        self._client = httpx.Client(timeout=httpx.Timeout(timeout),
                                    headers={"Accept": "application/json"})
        self._window = (RateWindow(rate_limit, rate_window,
                                   rate_window if max_wait is None else max_wait, self.provider)
                        if rate_limit else None)
        self._post = transient_retry(attempts, initial=backoff_initial,
                                     maximum=backoff_max)(self._post_once)

    def push(self, message: PushMessage) -> str:
        body = self.build_body(message)  # built once: every attempt sends the same message
        self._post(body, message.key)
        reference = reference_for(self.provider, message.key)
        log.info("%s: pushed %s (%s)", self.provider, message.key, reference)
        return reference

    @abc.abstractmethod
    def build_body(self, message: PushMessage) -> dict[str, Any]:
        """The robot's JSON body for a message."""

    def _post_once(self, body: dict[str, Any], key: str) -> None:
        if self._window:
            self._window.acquire()
        try:
            self._deliver(body)
        except TransientError as exc:
            log.warning("%s: attempt for %s failed, may retry: %s", self.provider, key, exc)
            raise

    @abc.abstractmethod
    def _deliver(self, body: dict[str, Any]) -> None:
        """One HTTP call to the robot; raises the typed error of its answer."""


# --- 企业微信 群机器人 -------------------------------------------------------------------------

# 企业微信 global error codes that a robot send can answer; True = worth retrying
WECOM_ERROR_CODES: dict[int, tuple[str, bool]] = {
    -1: ("系统繁忙", True),
    40008: ("不合法的msgtype参数", False),
    40058: ("不合法的参数（如内容超长）", False),
    44004: ("文本消息content参数为空", False),
    45002: ("消息内容大小超过限制", False),
    45009: ("接口调用超过限制", True),        # the robot's 20 messages/min
    45033: ("接口并发调用超过限制", True),
    93000: ("机器人webhookurl不合法或者机器人已经被移除出群", False),
    93004: ("机器人被停用", False),
    93008: ("不在群里", False),
}


def wecom_key_from(webhook_url_or_key: SecretStr | str) -> tuple[str, str | None]:
    """(key, base URL or None) from a whole webhook URL "...send?key=..." or a bare key."""
    raw = _secret(webhook_url_or_key).get_secret_value().strip()
    if "://" not in raw:
        return raw, None
    parts = urllib.parse.urlsplit(raw)
    key = (urllib.parse.parse_qs(parts.query).get("key") or [""])[0]
    return key, urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class WeComRobotNotifier(_Robot):
    """企业微信 群机器人: markdown messages, or text when mobiles are to be @-mentioned."""

    provider = "wecom"

    def __init__(self, webhook_url_or_key: SecretStr | str, *,
                 base_url: str = WECOM_WEBHOOK_URL, timeout: float = 10.0, attempts: int = 4,
                 rate_limit: int | None = ROBOT_RATE_LIMIT,
                 rate_window: float = ROBOT_RATE_WINDOW, max_wait: float | None = None,
                 backoff_initial: float = 0.2, backoff_max: float = 3.0) -> None:
        key, url_base = wecom_key_from(webhook_url_or_key)
        if not key:
            raise ValueError("企业微信 robot needs its webhook key (…/webhook/send?key=…)")
        self._key = SecretStr(key)
        self.url = url_base or base_url
        super().__init__(timeout=timeout, attempts=attempts, rate_limit=rate_limit,
                         rate_window=rate_window, max_wait=max_wait,
                         backoff_initial=backoff_initial, backoff_max=backoff_max)

    def __repr__(self) -> str:  # never show the key
        return f"WeComRobotNotifier({self.url}, key=***)"

    def build_body(self, message: PushMessage) -> dict[str, Any]:
        if message.mention_mobiles:
            content, truncated = render_plain(message, WECOM_TEXT_MAX_BYTES)
            body = {"msgtype": "text",
                    "text": {"content": content,
                             "mentioned_mobile_list": list(message.mention_mobiles)}}
        else:
            content, truncated = render_markdown(message, WECOM_MARKDOWN_MAX_BYTES)
            body = {"msgtype": "markdown", "markdown": {"content": content}}
        if truncated:
            log.warning("wecom: text of %s cut to the robot's limit", message.key)
        return body

    def _deliver(self, body: dict[str, Any]) -> None:
        response = send(self._client, self.provider, "POST", self.url,
                        params={"key": self._key.get_secret_value()}, json=body)
        _robot_answer(response, self.provider, WECOM_ERROR_CODES)


# --- 钉钉 自定义机器人 ------------------------------------------------------------------------

# 钉钉 custom robot error codes; True = worth retrying
DINGTALK_ERROR_CODES: dict[int, tuple[str, bool]] = {
    -1: ("系统繁忙", True),                     # not confirmed for the robot
    130101: ("发送太快，超过每分钟20次", True),
    410100: ("发送速度太快而限流", True),       # not confirmed
    300001: ("access_token不存在", False),
    300005: ("access_token不存在（外部群）", False),
    310000: ("安全设置校验未通过（签名、时间戳、关键词或IP）", False),
}


def dingtalk_sign(secret: str, timestamp_ms: int | str) -> str:
    """Base64(HmacSHA256(key=secret, msg=f"{timestamp}\\n{secret}")), before URL-encoding."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode("utf-8"),
                      hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class DingTalkRobotNotifier(_Robot):
    """钉钉 自定义机器人 with 加签: markdown messages, @-mentions by mobile.

    The timestamp and signature are made per attempt, so a retry after a long wait is still
    inside DingTalk's one-hour window. An empty `secret` sends unsigned (a robot secured by
    keywords or an IP whitelist instead)."""

    provider = "dingtalk"

    def __init__(self, access_token: SecretStr | str, secret: SecretStr | str, *,
                 base_url: str = DINGTALK_URL, timeout: float = 10.0, attempts: int = 4,
                 rate_limit: int | None = ROBOT_RATE_LIMIT,
                 rate_window: float = ROBOT_RATE_WINDOW, max_wait: float | None = None,
                 backoff_initial: float = 0.2, backoff_max: float = 3.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._token = _secret(access_token)
        if not self._token.get_secret_value().strip():
            raise ValueError("钉钉 robot needs its access_token")
        if "?" in base_url:
            raise ValueError("钉钉 base_url is the send URL without a query; the access_token "
                             "is configured on its own")
        self._secret = _secret(secret)
        self.url = base_url
        self._clock = clock
        super().__init__(timeout=timeout, attempts=attempts, rate_limit=rate_limit,
                         rate_window=rate_window, max_wait=max_wait,
                         backoff_initial=backoff_initial, backoff_max=backoff_max)

    def __repr__(self) -> str:  # never show the token or the secret
        return f"DingTalkRobotNotifier({self.url}, access_token=***, secret=***)"

    def build_body(self, message: PushMessage) -> dict[str, Any]:
        text, truncated = render_markdown(message, DINGTALK_MAX_BYTES, mention_line=True)
        if truncated:
            log.warning("dingtalk: text of %s cut to %d bytes", message.key, DINGTALK_MAX_BYTES)
        return {"msgtype": "markdown",
                "markdown": {"title": _one_line(message.title), "text": text},
                "at": {"atMobiles": list(message.mention_mobiles), "isAtAll": False}}

    def signed_query(self) -> str:
        """access_token, and with a secret the timestamp (ms) and the URL-encoded sign."""
        params = [("access_token", self._token.get_secret_value().strip())]
        secret = self._secret.get_secret_value().strip()
        if secret:
            timestamp = int(self._clock() * 1000)
            params += [("timestamp", str(timestamp)), ("sign", dingtalk_sign(secret, timestamp))]
        # urlencode quotes like quote_plus: "+" "/" "=" of the Base64 sign become %2B %2F %3D
        return urllib.parse.urlencode(params)

    def _deliver(self, body: dict[str, Any]) -> None:
        response = send(self._client, self.provider, "POST", f"{self.url}?{self.signed_query()}",
                        json=body)
        _robot_answer(response, self.provider, DINGTALK_ERROR_CODES)


# --- configuration --------------------------------------------------------------------------

def build_notifier(settings) -> Notifier:
    """The notifier the settings ask for (`notify_backend`: "embedded" | "wecom" | "dingtalk")."""
    common = dict(timeout=settings.connector_timeout_seconds,
                  attempts=settings.connector_attempts)
    if settings.notify_backend == "wecom":
        return WeComRobotNotifier(settings.wecom_robot_key, base_url=settings.wecom_webhook_url,
                                  **common)
    if settings.notify_backend == "dingtalk":
        return DingTalkRobotNotifier(settings.dingtalk_access_token, settings.dingtalk_secret,
                                     base_url=settings.dingtalk_url, **common)
    return EmbeddedNotifier(settings.path("pushes"))

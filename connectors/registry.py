"""Credit registry (工商信息): who a customer legally is, by legal name, former name or USCC.

Two implementations behind `CreditRegistry`:
- `EmbeddedRegistry`: a local JSON Lines dataset, for laptops and demos (no outside account).
- `TianyanchaRegistry`: 天眼查 open platform, interface 1116 "企业基本信息"
  (`GET /services/open/ic/baseinfo/normal?keyword=...`, header `Authorization: <token>`).

What was confirmed about 天眼查 (open.tianyancha.com api 1116, as republished in Huawei Cloud's
TBIS guide and in open SDKs): the path, the raw-token `Authorization` header (no "Bearer"), the
`keyword` parameter (name, company id, registration number or USCC, URL-encoded), the envelope
`{"error_code", "reason", "result"}`, the result fields used below (`estiblishTime` is a Long of
epoch milliseconds; `historyNames` is a ";"-joined string, often with a trailing ";", next to a
`historyNameList` array), and the error-code table in `_ERROR_CODES`.
Not confirmed: which HTTP status accompanies an error code (we read the body whatever the status
is and let `check_response` map bare 4xx/5xx) and whether 300001 "请求失败" is transient — the
table lists no explicit "system busy" code, so we treat 300001 / 300004 / 300012 as transient.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from connectors.base import PermanentError, RemoteClient, TransientError, send, transient_retry
from models.uscc import clean_uscc, uscc_province

log = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class RegistryRecord:
    """One company as the registry writes it (status text kept verbatim: 存续/在业/注销/吊销…)."""

    legal_name: str
    uscc: str | None
    status: str | None
    registered_capital: str | None
    legal_representative: str | None
    established_on: dt.date | None
    former_names: tuple[str, ...] = ()
    province: str | None = None
    city: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON Lines shape of the embedded dataset (dates ISO, former names a list)."""
        data = dataclasses.asdict(self)
        data["established_on"] = self.established_on.isoformat() if self.established_on else None
        data["former_names"] = list(self.former_names)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegistryRecord:
        legal_name = _text(data.get("legal_name"))
        if not legal_name:
            raise ValueError("registry record without legal_name")
        established = data.get("established_on")
        if isinstance(established, str) and established.strip():
            established = dt.date.fromisoformat(established.strip()[:10])
        elif not isinstance(established, dt.date):
            established = None
        return cls(
            legal_name=legal_name,
            uscc=_uscc(data.get("uscc")),
            status=_text(data.get("status")),
            registered_capital=_text(data.get("registered_capital")),
            legal_representative=_text(data.get("legal_representative")),
            established_on=established,
            former_names=_names(data.get("former_names") or (), legal_name),
            province=_text(data.get("province")),
            city=_text(data.get("city")),
        )


@runtime_checkable
class CreditRegistry(Protocol):
    def lookup(self, name_or_uscc: str) -> RegistryRecord | None:
        """The company with this legal name, former name or USCC; None when there is none."""
        ...


def lookup_key(name_or_uscc: str) -> str:
    """Index key: NFKC folds full-width （）/letters to ASCII, spaces dropped, USCC upper-cased,
    so "华东精工（苏州）有限公司" and "华东精工(苏州)有限公司" find the same company."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", name_or_uscc)).upper()


_NO_VALUE = frozenset("-－—–/")  # what registries print in an empty cell


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return None if not text or text in _NO_VALUE else text


def _uscc(value: Any) -> str | None:
    """A code as the customer files store and compare it (full width, spaces, dashes and
    lower case folded): a registry that sends `91310000 1322 0567-4x` still finds its file;
    a placeholder such as "-" is no code."""
    return clean_uscc(_text(value) or "") or None


def _names(values: Iterable[str] | str, legal_name: str | None = None) -> tuple[str, ...]:
    """Former names, de-duplicated in order; a string is split on ; or ； as 天眼查 joins them."""
    if isinstance(values, str):
        values = re.split(r"[;；]", values)
    seen = {lookup_key(legal_name)} if legal_name else set()
    out = []
    for value in values:
        name = _text(value)
        if name and lookup_key(name) not in seen:
            seen.add(lookup_key(name))
            out.append(name)
    return tuple(out)


# --- embedded ------------------------------------------------------------------------------

class EmbeddedRegistry:
    """Registry from a local JSON Lines file, one `RegistryRecord.to_dict()` per line.

    Indexed in memory by legal name, USCC and former names; re-read when the file's mtime or
    size changes, so an operator can drop in a new dataset without restarting the hub.
    """

    provider = "embedded-registry"

    def __init__(self, dataset_path: Path) -> None:
        self.dataset_path = Path(dataset_path)
        self._lock = threading.Lock()
        self._signature: tuple[int, int] | None = None
        self._index: dict[str, RegistryRecord] = {}
        self._records: tuple[RegistryRecord, ...] = ()

    def lookup(self, name_or_uscc: str) -> RegistryRecord | None:
        key = lookup_key(name_or_uscc or "")
        if not key:
            return None
        return self._current_index().get(key)

    def records(self) -> tuple[RegistryRecord, ...]:
        """Every record of the dataset (for bulk matching and change detection)."""
        self._current_index()
        return self._records

    def _current_index(self) -> dict[str, RegistryRecord]:
        try:
            stat = self.dataset_path.stat()
        except OSError as exc:
            raise PermanentError(f"registry dataset {self.dataset_path} unreadable: {exc}",
                                 provider=self.provider, code="dataset") from exc
        signature = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if signature != self._signature:
                try:
                    self._records, self._index = self._load()
                    self._signature = signature
                except (OSError, ValueError) as exc:
                    if self._signature is None:
                        raise PermanentError(f"registry dataset {self.dataset_path}: {exc}",
                                             provider=self.provider, code="dataset") from exc
                    # probably caught mid-write: keep serving the last good index, retry later
                    log.warning("registry dataset %s not reloaded: %s", self.dataset_path, exc)
            return self._index

    def _load(self) -> tuple[tuple[RegistryRecord, ...], dict[str, RegistryRecord]]:
        records = []
        with self.dataset_path.open(encoding="utf-8-sig") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    records.append(RegistryRecord.from_dict(json.loads(line)))
                except (ValueError, TypeError, AttributeError) as exc:
                    raise ValueError(f"line {number}: {exc}") from exc
        index: dict[str, RegistryRecord] = {}
        # former names first, then current names/USCCs overwrite: when company B's former name
        # is company A's current legal name, the name belongs to A now
        for record in records:
            for name in record.former_names:
                index.setdefault(lookup_key(name), record)
        for record in records:
            index[lookup_key(record.legal_name)] = record
        for record in records:
            if record.uscc:
                index[lookup_key(record.uscc)] = record
        return tuple(records), index


# --- 天眼查 ---------------------------------------------------------------------------------

BASEINFO_PATH = "/services/open/ic/baseinfo/normal"
NO_DATA = 300000

# 天眼查 open platform error codes (api 1116 "错误代码说明"); True = worth retrying
_ERROR_CODES: dict[int, tuple[str, bool]] = {
    300001: ("请求失败", True),            # generic failure, no detail documented: assume transient
    300002: ("账号失效", False),
    300003: ("账号过期", False),
    300004: ("访问频率过快", True),        # rate limit: back off and retry
    300005: ("无权限访问此api", False),
    300006: ("余额不足", False),
    300007: ("剩余次数不足", False),
    300008: ("缺少必要参数", False),
    300009: ("账号信息有误", False),        # wrong or missing token
    300010: ("URL不存在", False),
    300011: ("此IP无权限访问此api", False),
    300012: ("报告生成中", True),
}


# refusals of the account itself (expired, no balance, no right, a wrong token): every
# further call is refused the same way, and may be billed
ACCOUNT_ERRORS = frozenset({300002, 300003, 300005, 300006, 300007, 300009, 300010, 300011})


def refuses_the_account(exc: Exception) -> bool:
    """Whether a registry error is about our account, not about the company asked for."""
    try:
        return (isinstance(exc, PermanentError) and exc.provider == "tianyancha"
                and int(exc.code or "") in ACCOUNT_ERRORS)
    except (TypeError, ValueError):
        return False


def error_label(code: str | int | None) -> str | None:
    """天眼查's own words for an error code ("余额不足"), None for a code it does not list."""
    try:
        return _ERROR_CODES.get(int(code or ""), (None,))[0]
    except (TypeError, ValueError):
        return None


class TianyanchaRegistry(RemoteClient):
    """天眼查 interface 1116 企业基本信息 over HTTPS; retries transient failures only."""

    provider = "tianyancha"

    def __init__(self, base_url: str, token: SecretStr, timeout: float = 10.0,
                 attempts: int = 4) -> None:
        # 天眼查 takes the bare token, not "Bearer <token>"
        self._connect(base_url, timeout, token.get_secret_value())
        self._lookup = transient_retry(attempts)(self._lookup_once)

    def lookup(self, name_or_uscc: str) -> RegistryRecord | None:
        keyword = (name_or_uscc or "").strip()
        if not keyword:
            return None  # every call is billed: do not ask for nothing
        return self._lookup(keyword)

    def _lookup_once(self, keyword: str) -> RegistryRecord | None:
        response = send(self._client, self.provider, "GET", BASEINFO_PATH,
                        params={"keyword": keyword})
        try:
            body = response.json()
        except ValueError as exc:
            # a gateway page instead of the API's JSON: the API was not reached
            raise TransientError(f"{self.provider} answered non-JSON: {response.text[:200]}",
                                 provider=self.provider, code="non-json") from exc
        if not isinstance(body, dict):
            raise PermanentError(f"{self.provider} answered an unexpected body: {body!r:.200}",
                                 provider=self.provider, code="bad-body")
        code = body.get("error_code")
        reason = body.get("reason") or ""
        if code == NO_DATA:
            return None
        if code not in (0, "0"):
            try:
                code_int = int(code)
            except (TypeError, ValueError):
                code_int = -1
            label, transient = _ERROR_CODES.get(code_int, ("unknown error code", False))
            error = TransientError if transient else PermanentError
            raise error(f"{self.provider} error {code} {label}: {reason}",
                        provider=self.provider, code=str(code))
        result = body.get("result")
        if not result:
            return None
        return record_from_tianyancha(result)


def record_from_tianyancha(result: Mapping[str, Any]) -> RegistryRecord:
    """Map a 1116 `result` object to a RegistryRecord."""
    name = _text(re.sub(r"</?em>", "", str(result.get("name") or "")))
    if not name:
        raise PermanentError("tianyancha result without a company name",
                             provider="tianyancha", code="bad-body")
    history = result.get("historyNameList")
    if not isinstance(history, list):
        history = result.get("historyNames") or ""
    return RegistryRecord(
        legal_name=name,
        uscc=_uscc(result.get("creditCode")),
        status=_text(result.get("regStatus")),
        registered_capital=_text(result.get("regCapital")),
        legal_representative=_text(result.get("legalPersonName")),
        established_on=_established_on(result.get("estiblishTime")),
        former_names=_names(history, name),
        province=_province(result),
        city=_text(result.get("city")),
    )


def _province(result: Mapping[str, Any]) -> str | None:
    """天眼查's `base` is the province as a pinyin abbreviation ("js" for 江苏), not the name
    the customer file keeps: the province is read from the USCC's division code instead
    (authoritative); `base` only when it is already written in Chinese."""
    province = uscc_province(_uscc(result.get("creditCode")))
    base = _text(result.get("base"))
    if province is None and base and re.fullmatch(r"[\u4e00-\u9fff]+", base):
        province = base
    return province


def _established_on(value: Any) -> dt.date | None:
    """estiblishTime is epoch milliseconds of midnight Beijing time: read the date in Shanghai
    (in UTC it would be the day before). Other 天眼查 interfaces send "2001-06-05 00:00:00.0"."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        instant = dt.datetime.fromtimestamp(int(value) / 1000, tz=dt.timezone.utc)
        return instant.astimezone(SHANGHAI).date()
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        log.warning("tianyancha estiblishTime not understood: %r", value)
        return None


def established_millis(day: dt.date) -> int:
    """The estiblishTime 天眼查 would send for `day` (used by the simulator and tests)."""
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=SHANGHAI)
    return int(midnight.timestamp() * 1000)

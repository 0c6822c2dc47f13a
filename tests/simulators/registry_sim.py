"""天眼查 open platform simulator: interface 1116 企业基本信息 (`ic/baseinfo/normal`).

Speaks the documented wire format: bare token in `Authorization`, `keyword` query parameter,
`{"error_code", "reason", "result"}` envelope, HTTP 200 even for error codes (300000 no data,
300009 bad account/token, ...). Records are stored as 天眼查 `result` objects so tests can
also feed it raw shapes (e.g. only the ";"-joined `historyNames`).
"""
from __future__ import annotations

import collections
import copy
import datetime as dt

from connectors.registry import BASEINFO_PATH, RegistryRecord, established_millis, lookup_key
from tests.simulators.base import Faults, Reply, Request, Simulator

REASONS = {0: "ok", 300000: "无数据", 300001: "请求失败", 300002: "账号失效", 300004: "访问频率过快",
           300006: "余额不足", 300008: "缺少必要参数", 300009: "账号信息有误", 300010: "URL不存在"}


# 天眼查's `base` of the provinces in the sample registry (as seen in its answers: "js")
PINYIN_BASE = {"江苏": "js", "浙江": "zj", "广东": "gd", "上海": "sh", "安徽": "ah", "重庆": "cq",
               "北京": "bj"}


def tianyancha_result(record: RegistryRecord, *, company_id: int = 0,
                      history_list: bool = True) -> dict:
    """The `result` object 天眼查 would send for `record`."""
    result = {
        "id": company_id,
        "name": record.legal_name,
        "creditCode": record.uscc,
        "regStatus": record.status,
        "regCapital": record.registered_capital,
        "legalPersonName": record.legal_representative,
        "estiblishTime": (established_millis(record.established_on)
                          if record.established_on else None),
        # 天眼查 joins former names with ";" and leaves a trailing one
        "historyNames": "".join(f"{n};" for n in record.former_names) or None,
        # the province as 天眼查 abbreviates it in pinyin ("js" for 江苏), not its name
        "base": PINYIN_BASE.get(record.province or "", record.province),
        "city": record.city,
        "regNumber": None,
        "companyOrgType": "有限责任公司",
        "updateTimes": int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000),
    }
    if history_list:
        result["historyNameList"] = list(record.former_names)
    return result


class TianyanchaSimulator(Simulator):
    name = "tianyancha"

    def __init__(self, token: str, records: dict[str, dict] | None = None,
                 faults: Faults | None = None) -> None:
        super().__init__(faults)
        self.token = token
        self.records: dict[str, dict] = {}  # key → 天眼查 result object
        for key, result in (records or {}).items():
            self.records[key] = copy.deepcopy(result)
        self.lookups: collections.Counter[str] = collections.Counter()  # keyword → answered
        self.error_codes: collections.deque[int] = collections.deque()  # forced next answers

    # --- test controls -----------------------------------------------------------------
    def add(self, record: RegistryRecord | dict, *, history_list: bool = True) -> str:
        """Store a record (RegistryRecord or raw result object); returns its key."""
        with self.lock:
            result = (tianyancha_result(record, company_id=len(self.records) + 1,
                                        history_list=history_list)
                      if isinstance(record, RegistryRecord) else copy.deepcopy(record))
            key = result.get("creditCode") or result["name"]
            self.records[key] = result
            return key

    def change(self, name_or_uscc: str, **fields) -> dict:
        """Change a stored record's raw fields (e.g. regStatus="注销"), as the registry would
        after a 工商变更; returns the new result object."""
        with self.lock:
            result = self._find(name_or_uscc)
            if result is None:
                raise KeyError(name_or_uscc)
            result.update(fields)
            return copy.deepcopy(result)

    def fail_next(self, *codes: int) -> None:
        """Answer the next lookups with these error codes (one per lookup)."""
        with self.lock:
            self.error_codes.extend(codes)

    @property
    def lookup_count(self) -> int:
        return sum(self.lookups.values())

    # --- wire --------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        if request.method != "GET" or request.path != BASEINFO_PATH:
            return self._error(300010)
        if request.headers.get("authorization") != self.token:
            return self._error(300009)
        keyword = (request.query.get("keyword") or [""])[0].strip()
        if not keyword:
            return self._error(300008)
        with self.lock:
            self.lookups[keyword] += 1
            if self.error_codes:
                return self._error(self.error_codes.popleft())
            result = self._find(keyword)
            result = copy.deepcopy(result) if result is not None else None
        if result is None:
            return self._error(300000)
        return Reply(200, {"error_code": 0, "reason": "ok", "result": result})

    def _find(self, keyword: str) -> dict | None:
        # the real keyword search is fuzzier; exact name / USCC / former name is what we need
        key = lookup_key(keyword)
        for result in self.records.values():
            names = [result.get("name"), result.get("creditCode"), result.get("regNumber")]
            names += (result.get("historyNames") or "").split(";")
            if any(n and lookup_key(n) == key for n in names):
                return result
        return None

    @staticmethod
    def _error(code: int) -> Reply:
        return Reply(200, {"error_code": code, "reason": REASONS.get(code, "error"),
                           "result": None})

"""Machine-readable errors: {"error": {"code", "message", "details"}} with a 4xx status."""
from __future__ import annotations

import re

from fastapi.responses import JSONResponse

from models.base import MAX_ID  # noqa: F401 - ids/offsets beyond it: refused, not overflowed


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: list | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or []

    def response(self) -> JSONResponse:
        body = {"error": {"code": self.code, "message": self.message}}
        if self.details:
            body["error"]["details"] = self.details
        return JSONResponse(body, status_code=self.status)


def not_utf8() -> ApiError:
    """A JSON body in another encoding (GBK from a Windows program, UTF-16): UTF-8 only, as
    RFC 8259 asks and as the hub keeps text."""
    return ApiError(400, "malformed_json", "请求体不是合法 JSON：须为 UTF-8 编码")


def too_deep() -> ApiError:
    """A JSON body nested past the parser's depth (it recurses once per [ or {)."""
    return ApiError(400, "malformed_json", "请求体不是合法 JSON：嵌套层数过多",
                    [{"field": "body", "problem": "too_deep"}])


def number_too_long() -> ApiError:
    """A JSON number longer than the parser converts (Python refuses integers of more than
    4,300 digits with a plain ValueError)."""
    return ApiError(400, "malformed_json", "请求体不是合法 JSON：数字过长",
                    [{"field": "body", "problem": "number_too_long"}])


def unreadable_body(cause: BaseException | None) -> ApiError | None:
    """What to answer when parsing a JSON body failed on `cause` (FastAPI turns that into a bare
    400): said as the webhook says it; None for a cause that is not about the body's JSON."""
    if isinstance(cause, UnicodeDecodeError):
        return not_utf8()
    if isinstance(cause, RecursionError):
        return too_deep()
    if isinstance(cause, ValueError):  # after UnicodeDecodeError, a ValueError too
        return number_too_long()
    return None


# pydantic's error types → what the field's value should be, in Chinese ({…}: the error's ctx)
_PROBLEMS = {
    "missing": "缺少必填字段",
    "extra_forbidden": "未知字段",
    "greater_than": "应大于 {gt}",
    "greater_than_equal": "不能小于 {ge}",
    "less_than": "应小于 {lt}",
    "less_than_equal": "不能大于 {le}",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "int_parsing_size": "整数超出范围",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "decimal_type": "应为数字（金额请用字符串，如 \"12.50\"）",
    "decimal_parsing": "应为数字",
    "decimal_max_digits": "数字位数不能超过 {max_digits} 位",
    "decimal_max_places": "小数位不能超过 {decimal_places} 位",
    "decimal_whole_digits": "整数部分位数过多",
    "string_type": "应为文本",
    "string_too_short": "长度不能少于 {min_length} 个字符",
    "string_too_long": "长度不能超过 {max_length} 个字符",
    "string_pattern_mismatch": "格式不正确",
    "string_unicode": "含有无法识别的字符（不成对的 UTF-16 代理项），请检查编码",
    "finite_number": "应为有限的数字（不能是 NaN 或 Infinity）",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "date_type": "日期格式应为 YYYY-MM-DD",
    "date_parsing": "日期格式应为 YYYY-MM-DD",
    "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD",
    "date_from_datetime_inexact": "日期格式应为 YYYY-MM-DD",
    "datetime_type": "时间格式应为 ISO 8601（含时区）",
    "datetime_parsing": "时间格式应为 ISO 8601（含时区）",
    "list_type": "应为列表",
    "too_short": "至少需要 {min_length} 项",
    "too_long": "不能超过 {max_length} 项",
    "dict_type": "应为 JSON 对象",
    "model_type": "应为 JSON 对象",
    "model_attributes_type": "应为 JSON 对象",
    "json_invalid": "请求体不是合法 JSON",
    "literal_error": "应为 {expected} 之一",
    "enum": "应为 {expected} 之一",
    "value_error": "{error}",  # our validators raise their message in Chinese
}


# pydantic's date errors for a well-formed date the calendar lacks (2027-02-29, 2027-13-01)
_NO_SUCH_DAY = re.compile(r"(day|month) value is outside expected range")


def validation_details(errors) -> list[dict]:
    """pydantic errors → [{"field", "problem", "message"}] with a Chinese message per field
    (the English one only when the type is not known here)."""
    details = []
    for e in errors:
        template = _PROBLEMS.get(e["type"])
        try:
            message = template.format(**e.get("ctx", {})) if template else e["msg"]
        except (KeyError, IndexError):
            message = template
        if e["type"].startswith("date") and _NO_SUCH_DAY.search(str(e.get("ctx", {}))):
            # 2027-02-29: written as asked, but the calendar has no such day
            message = f"不是有效日期：{e.get('input')}（格式正确，但日历上没有这一天）"
        details.append({"field": ".".join(str(p) for p in e["loc"]), "problem": e["type"],
                        "message": message})
    return details

"""A request the business refuses: a Chinese message, with the HTTP status and code the API
answers it with (the CLI prints the message and exits non-zero); and an outside system's
failure as people read it."""
from __future__ import annotations

import re

from connectors.base import ConnectorError, TransientError


class Refusal(Exception):
    status = 422
    code = "refused"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 field: str | None = None, details: list[dict] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status or self.status
        self.code = code or self.code
        self.field = field
        # the API's machine-readable details, when more than the field is to say (which value)
        self.details = details


# --- an outside system's failure, as people read it ----------------------------------------
# (the connector's own words, in English, go to the log; see connectors/base.py)

# who failed, by the connector's provider name
PROVIDER_NAMES = {
    "erp": "库存系统（ERP）", "finance": "财务系统", "embedded-finance": "财务系统（内置）",
    "tianyancha": "工商信息查询（天眼查）", "embedded-registry": "工商信息（内置数据）",
    "esign": "电子签署（e签宝）", "builtin": "内置签署", "smtp": "邮件服务器",
    "wecom": "企业微信群机器人", "dingtalk": "钉钉群机器人", "robot": "群机器人",
    "embedded": "推送（内置）",
}
# the settings a remote provider is reached with (connectors/settings.py), by its name
_PROVIDER_URL = {"finance": "FINANCE", "erp": "ERP", "tianyancha": "TIANYANCHA",
                 "esign": "ESIGN", "wecom": "WECOM_WEBHOOK", "dingtalk": "DINGTALK"}
_PROVIDER_SECRET = {"finance": "SALESOPS_FINANCE_TOKEN", "erp": "SALESOPS_ERP_TOKEN",
                    "tianyancha": "SALESOPS_TIANYANCHA_TOKEN", "esign": "SALESOPS_ESIGN_APP_SECRET",
                    "wecom": "SALESOPS_WECOM_ROBOT_KEY",
                    "dingtalk": "SALESOPS_DINGTALK_ACCESS_TOKEN"}
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def provider_name(provider: str) -> str:
    return PROVIDER_NAMES.get(provider, f"外部系统（{provider or '未知'}）")


def transient_cause(exc: ConnectorError) -> str:
    """Why an outside system could not be reached this time."""
    if exc.code == "network":
        return "网络不通或连接超时"
    if exc.code == "429":
        return f"{provider_name(exc.provider)}繁忙（429）"
    if exc.code.isdigit():
        return f"{provider_name(exc.provider)}返回错误 {exc.code}"
    return "连接中断"


def status_advice(exc: ConnectorError) -> str | None:
    """What a person does about a refusal (exc.code is its HTTP status when it has one): the
    credential or address setting to check for 401/403/404; None when its status says
    nothing more."""
    secret = _PROVIDER_SECRET.get(exc.provider)
    if exc.code == "401" and secret:
        return f"对方系统未通过身份认证（HTTP 401）：请检查 {secret} 是否正确、是否已过期"
    if exc.code == "403":
        return ("对方系统认为无权执行此操作（HTTP 403）：请联系对方系统管理员为所用凭据"
                f"{f'（{secret}）' if secret else ''}开通权限")
    if exc.code == "404" and exc.provider in _PROVIDER_URL:
        return (f"对方系统找不到所请求的地址或记录（HTTP 404）：请检查 SALESOPS_"
                f"{_PROVIDER_URL[exc.provider]}_URL 是否指向正确的接口地址")
    return None


def connector_reason(exc: ConnectorError) -> str:
    """A connector's failure as the rep, the manager or the clerk reads it (an order page, a
    to-do, a run's table): who failed and, for a refusal, what must be done, in Chinese. A
    connector's own Chinese message (e.g. a refusal the provider explained) is kept."""
    message = str(exc)
    if CHINESE.search(message):
        return message
    if isinstance(exc, TransientError):
        return f"{provider_name(exc.provider)}暂时无法连接（{transient_cause(exc)}）"
    protocol = "SMTP" if exc.provider == "smtp" else "HTTP"
    status = f"（{protocol} {exc.code}）" if exc.code.isdigit() else ""
    return (f"{provider_name(exc.provider)}拒绝了请求，"
            f"{status_advice(exc) or f'重试无效{status}，请系统管理员查看运行日志后处理'}")

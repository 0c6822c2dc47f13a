"""The hub's one settings object (env prefix SALESOPS_), read by the outer layers.

It lives beside the connectors because most of it configures them; api and flows
read it and pass plain values inward.
"""
from __future__ import annotations

import functools
import json
import re
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError


MIN_SECRET = 32  # characters of a configured server key (auth, signing links)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SALESOPS_", env_file=".env",
                                      env_file_encoding="utf-8", extra="ignore")

    # storage
    data_dir: Path = Path("var")
    database_url: str = ""  # default: sqlite file in data_dir

    # the public address of the API (signing links in quotes and mails)
    public_base_url: str = "http://127.0.0.1:8000"
    api_host: str = "127.0.0.1"
    api_port: int = 8000

    # webhooks: {"sender id": "shared secret"}; no sender is trusted by default
    webhook_senders: dict[str, SecretStr] = Field(default_factory=dict)
    replay_window_seconds: int = 300
    max_body_bytes: int = 256 * 1024

    # the seller printed on every quote
    seller_name: str = "华东精工设备有限公司"
    seller_uscc: str = "91320500MA1XB2C358"
    seller_address: str = "江苏省苏州市工业园区星湖街 328 号"
    seller_phone: str = "0512-6288 0000"
    seller_bank: str = "中国工商银行苏州工业园区支行 1102 0212 0900 0123 456"
    quote_validity_days: int = 15
    # Extra TrueType fonts (os.pathsep-separated paths) for characters the PDFs' embedded
    # fonts lack. reports/fonts.py reads the variable from the environment itself (statement
    # renders run in spawned processes); declared here so a .env value reaches serve's
    # children through settings_env.
    pdf_fallback_fonts: str = ""

    # who receives which to-do (staff ids)
    legal_assignee: str = "legal-01"
    purchasing_assignee: str = "purchasing-01"
    finance_assignee: str = "finance-01"
    todo_due_hours: int = 24
    risk_assignee: str = "risk-01"  # registry changes of customers (the owning rep in copy)
    # sales-ops: a mailbox or group robot that refuses the hub's mails and pushes for good
    ops_assignee: str = "ops-01"

    # customer master data
    suspect_threshold: int = 3  # sightings of an unknown name before a manager must decide
    suspect_decision_hours: int = 24  # the manager's deadline; then the name is refused
    suspect_fallback_decider: str = "ops-01"  # decides when the rep has no manager
    registry_max_age_days: int = 30  # an order refreshes its customer's registry facts if older
    registry_watch_batch: int = 2000  # customers re-read per daily registry-watch run
    customer_index_refresh_seconds: float = 2.0  # how stale the matcher's index may be

    # rebates: the accounts of the voucher drafts (Kingdee codes of the company's chart)
    rebate_expense_account: str = "6601.09"
    rebate_expense_account_name: str = "销售费用-销售返利"
    rebate_payable_account: str = "2241.05"
    rebate_payable_account_name: str = "其他应付款-应付返利"
    # whether the expense entry also carries the customer dimension (only if the expense
    # account has 客户 as an auxiliary dimension in finance's chart; the payable always does)
    rebate_expense_by_customer: bool = False
    kingdee_account_book: str = ""  # 账簿编码: the Kingdee import needs it; finance knows it
    kingdee_account_book_name: str = ""
    kingdee_accounting_org: str = ""  # 核算组织编码
    kingdee_accounting_org_name: str = ""

    # connectors: which implementation runs is configuration
    registry_backend: Literal["embedded", "tianyancha"] = "embedded"
    registry_dataset: Path | None = None  # default: the sample shipped with the project
    # HTTPS: the token travels in every request's Authorization header
    tianyancha_url: str = "https://open.api.tianyancha.com"
    tianyancha_token: SecretStr = SecretStr("")

    inventory_backend: Literal["embedded", "rest"] = "embedded"
    erp_url: str = ""
    erp_token: SecretStr = SecretStr("")

    esign_backend: Literal["builtin", "esign"] = "builtin"
    esign_url: str = "https://openapi.esign.cn"
    esign_app_id: str = ""
    esign_app_secret: SecretStr = SecretStr("")
    company_cert_password: SecretStr = SecretStr("")  # protects the built-in signing key
    signing_secret: SecretStr = SecretStr("")  # signing-link tokens; generated on first run
    auth_secret: SecretStr = SecretStr("")  # staff access tokens; generated on first run
    auth_token_days: int = 30

    email_backend: Literal["outbox", "smtp"] = "outbox"
    smtp_host: str = "localhost"
    smtp_port: int = 587
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_verify_tls: bool = True
    smtp_ca_file: Path | None = None  # a private CA for the mail server's certificate
    mail_from: str = "销售运营中心 <sales-ops@example.com>"

    finance_backend: Literal["embedded", "rest"] = "embedded"
    finance_url: str = ""
    finance_token: SecretStr = SecretStr("")

    connector_timeout_seconds: float = 10.0
    connector_attempts: int = 4

    # orchestration
    dispatch_batch_size: int = 250
    dispatch_interval_seconds: float = 0.5
    claim_lease_seconds: int = 600
    # a keyed link artifact per quote in the Prefect UI for batches up to this size (larger
    # batches list every quote link in the run's table artifact instead: one API call)
    quote_link_artifacts_max_batch: int = 25
    order_max_attempts: int = 5
    # a failed order waits this long before its second attempt, twice as long before each
    # next one (at most an hour): a provider down for a while does not use every attempt
    order_retry_base_seconds: int = 60

    # --- push notifications (connectors/notify.py): 企业微信 / 钉钉 group robots -------------
    notify_backend: Literal["embedded", "wecom", "dingtalk"] = "embedded"
    wecom_webhook_url: str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
    wecom_robot_key: SecretStr = SecretStr("")  # the `key` of the robot's webhook URL
    dingtalk_url: str = "https://oapi.dingtalk.com/robot/send"
    dingtalk_access_token: SecretStr = SecretStr("")
    dingtalk_secret: SecretStr = SecretStr("")  # 加签 secret ("SEC…"); empty: unsigned robot

    @field_validator("webhook_senders")
    @classmethod
    def _senders_have_secrets(cls, senders: dict[str, SecretStr]) -> dict[str, SecretStr]:
        # an empty key would let anyone sign: refuse it rather than trust the sender
        empty = [name for name, secret in senders.items()
                 if not name.strip() or not secret.get_secret_value().strip()]
        if empty:
            raise ValueError(f"发送方 {'、'.join(repr(n) for n in empty)} 的密钥为空")
        return senders

    @field_validator("auth_secret", "signing_secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr) -> SecretStr:
        # a short key is guessed offline from one token or signing link it signed (a rep
        # would mint an admin's token); empty: the hub generates one
        if 0 < len(secret.get_secret_value()) < MIN_SECRET:
            raise ValueError(f"过短：至少 {MIN_SECRET} 个字符（可用 openssl rand -hex 32 生成）")
        return secret

    @property
    def db_url(self) -> str:
        url = self.database_url
        if not url:
            return f"sqlite:///{(self.data_dir / 'salesops.db').resolve()}"
        if url.startswith(("postgres://", "postgresql://")):
            # the forms hosting providers hand out: the driver the hub installs (psycopg 3)
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        prefix, sep, path = url.partition(":///")
        if prefix.startswith("sqlite") and sep and path \
                and not path.startswith(("/", ":memory:", "file:")):
            # a relative file is relative to where the command runs: fixed here once, so the
            # processes `salesops serve` starts (from the repository root) open the same file
            return f"{prefix}:///{Path(path.split('?', 1)[0]).resolve()}" + (
                "?" + path.split("?", 1)[1] if "?" in path else "")
        return url

    def path(self, *parts: str) -> Path:
        p = self.data_dir.resolve().joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def secret(self, name: str) -> bytes:
        """A server key: the configured one (`SALESOPS_<NAME>`), or a random one made once in
        <data dir>/pki/<name>.key. Created with an atomic link, so two processes starting
        together agree on one key."""
        configured = getattr(self, name).get_secret_value()
        if configured:
            return configured.encode()
        path = self.path("pki") / f"{name.replace('_', '-')}.key"
        cached = _SECRETS.get(str(path))
        if cached:
            return cached
        if not path.exists():
            from connectors.files import publish_once

            publish_once(path, secrets.token_bytes(32), mode=0o600)  # another's key wins
        _SECRETS[str(path)] = path.read_bytes()
        return _SECRETS[str(path)]


_SECRETS: dict[str, bytes] = {}


def _env_value(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value.resolve())
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps({k: _env_value(v) for k, v in value.items()}, ensure_ascii=False)
    return str(value)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process these settings wherever it runs: what was
    set (by the environment or this directory's .env), paths made absolute, and the database
    URL always (a relative SQLite path or data dir would point elsewhere from another
    working directory)."""
    env = {f"SALESOPS_{name.upper()}": _env_value(getattr(settings, name))
           for name in settings.model_fields_set if getattr(settings, name) is not None}
    env["SALESOPS_DATA_DIR"] = str(settings.data_dir.resolve())
    env["SALESOPS_DATABASE_URL"] = settings.db_url
    return env


class SettingsInvalid(ValueError):
    """Settings that cannot be read: the message names each variable and what it should be,
    never the value given (it may be a secret)."""


# what a pydantic error type means for the person who set the variable
_PROBLEMS = {"int_parsing": "应为整数", "int_type": "应为整数", "int_from_float": "应为整数",
             "float_parsing": "应为数字", "float_type": "应为数字",
             "bool_parsing": "应为 true 或 false", "bool_type": "应为 true 或 false",
             "dict_type": "应为 JSON 对象（如 {\"发送方\": \"密钥\"}）",
             "string_type": "应为文本", "json_invalid": "不是合法的 JSON",
             "json_type": "不是合法的 JSON", "path_type": "应为路径"}
_FIELD = re.compile(r'field "(\w+)"')


def _variable(field: object) -> str:
    return f"SALESOPS_{str(field).upper()}"


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        problems: dict[str, str] = {}
        for error in exc.errors(include_input=False, include_url=False):
            loc = error.get("loc") or ("?",)
            if error["type"] == "value_error":  # our validators' own words (no values)
                problem = str(error.get("ctx", {}).get("error", "")) or "取值不合法"
            elif error["type"] == "literal_error":
                choices = str(error.get("ctx", {}).get("expected", "")).replace(
                    " or ", "、").replace(", ", "、")
                problem = f"可选值：{choices.replace(chr(39), '')}"
            else:
                problem = _PROBLEMS.get(error["type"], "取值不合法")
            problems.setdefault(_variable(loc[0]), problem)
    else:  # pydantic-settings could not decode a JSON value (dicts) from its source
        match = _FIELD.search(str(exc))
        problems = {_variable(match.group(1)) if match else "SALESOPS_…": "不是合法的 JSON"}
    return "；".join(f"{name} {problem}" for name, problem in problems.items())


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except (ValidationError, SettingsError) as exc:
        # `from None`: the original error repeats the values, secrets included
        raise SettingsInvalid(f"配置有误（环境变量或 .env 文件）：{_describe(exc)}") from None

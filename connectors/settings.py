"""The hub's one settings object (env prefix SALESOPS_), read by the outer layers.

It lives beside the connectors because most of it configures them; api and flows
read it and pass plain values inward.
"""
from __future__ import annotations

import functools
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    # who receives which to-do (staff ids)
    legal_assignee: str = "legal-01"
    purchasing_assignee: str = "purchasing-01"
    finance_assignee: str = "finance-01"
    todo_due_hours: int = 24
    risk_assignee: str = "risk-01"  # registry changes of customers (the owning rep in copy)

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

    # --- push notifications (connectors/notify.py): 企业微信 / 钉钉 group robots -------------
    notify_backend: Literal["embedded", "wecom", "dingtalk"] = "embedded"
    wecom_webhook_url: str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
    wecom_robot_key: SecretStr = SecretStr("")  # the `key` of the robot's webhook URL
    dingtalk_url: str = "https://oapi.dingtalk.com/robot/send"
    dingtalk_access_token: SecretStr = SecretStr("")
    dingtalk_secret: SecretStr = SecretStr("")  # 加签 secret ("SEC…"); empty: unsigned robot

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'salesops.db').resolve()}"

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


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

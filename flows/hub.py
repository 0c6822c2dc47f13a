"""Builds the connector set that settings ask for; one per process."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from connectors.base import PermanentError
from connectors.email import Mailer, build_mailer
from connectors.esign import ESignature
from connectors.finance import EmbeddedFinance, Finance, KingdeeVoucherBook, RestFinance
from connectors.inventory import EmbeddedInventory, Inventory, RestErpInventory
from connectors.notify import Notifier, build_notifier
from connectors.registry import CreditRegistry, EmbeddedRegistry, TianyanchaRegistry
from connectors.settings import Settings, get_settings

SAMPLE_REGISTRY = (Path(__file__).resolve().parent.parent / "deployments" / "sample_data"
                   / "registry.jsonl")


@dataclass
class Hub:
    settings: Settings
    registry: CreditRegistry
    inventory: Inventory
    esign: ESignature
    mailer: Mailer
    finance: Finance
    notifier: Notifier

    @property
    def db_url(self) -> str:
        return self.settings.db_url


def _remote_url(backend: str, name: str, url: str) -> None:
    """A REST backend's address, refused at once and in words when it is not set (rather than
    an httpx error on the first call, after the work before it is done)."""
    if not url.startswith(("http://", "https://")):
        raise PermanentError(f"SALESOPS_{backend}_BACKEND=rest 时须设置 SALESOPS_{name}_URL"
                             "（http:// 或 https:// 开头的地址），当前未设置或格式不对",
                             provider="配置", code="config")


def _credentials(s: Settings) -> None:
    """The credentials an outside provider's backend needs, refused at once and in words when
    missing (rather than at the provider's first call, an order or a push later)."""
    needed = {("registry_backend", "tianyancha"): ("tianyancha_token",),
              ("esign_backend", "esign"): ("esign_app_id", "esign_app_secret"),
              ("notify_backend", "wecom"): ("wecom_robot_key",),
              ("notify_backend", "dingtalk"): ("dingtalk_access_token",)}
    for (backend, value), names in needed.items():
        if getattr(s, backend) != value:
            continue
        missing = [n for n in names if not str(getattr(s, n).get_secret_value()
                                               if hasattr(getattr(s, n), "get_secret_value")
                                               else getattr(s, n)).strip()]
        if missing:
            raise PermanentError(
                f"SALESOPS_{backend.upper()}={value} 时须设置 "
                + "、".join(f"SALESOPS_{n.upper()}" for n in missing) + "，当前未设置",
                provider="配置", code="config")


def check_backends(s: Settings) -> None:
    """What the chosen backends need (credentials, a REST backend's address): a PermanentError
    naming the variables when missing. Checked where the hub starts serving (`salesops
    serve`, the API) and by every `build_hub`."""
    _credentials(s)
    if s.inventory_backend == "rest":
        _remote_url("INVENTORY", "ERP", s.erp_url)
    if s.finance_backend == "rest":
        _remote_url("FINANCE", "FINANCE", s.finance_url)


def build_hub(settings: Settings) -> Hub:
    s = settings
    check_backends(s)
    timeout, attempts = s.connector_timeout_seconds, s.connector_attempts
    if s.registry_backend == "tianyancha":
        registry = TianyanchaRegistry(s.tianyancha_url, s.tianyancha_token, timeout, attempts)
    else:
        registry = EmbeddedRegistry(s.registry_dataset or SAMPLE_REGISTRY)
    if s.inventory_backend == "rest":
        inventory = RestErpInventory(s.erp_url, s.erp_token, timeout, attempts)
    else:
        inventory = EmbeddedInventory(s.db_url)
    if s.esign_backend == "esign":
        from connectors.esign_tsign import TsignSigning
        esign = TsignSigning(s.esign_url, s.esign_app_id, s.esign_app_secret, timeout, attempts)
    else:
        from connectors.esign_builtin import BuiltinSigning
        from connectors.pades import CompanyIdentity

        def identity():
            password = s.company_cert_password.get_secret_value().encode() or None
            return CompanyIdentity.load_or_create(s.path("pki"), s.seller_name, password)

        esign = BuiltinSigning(s.db_url, s.data_dir.resolve(), s.public_base_url, identity)
    mailer = build_mailer(s)
    if s.finance_backend == "rest":
        finance = RestFinance(s.finance_url, s.finance_token, timeout, attempts)
    else:
        finance = EmbeddedFinance(s.path("finance-drop"), KingdeeVoucherBook(
            account_book=s.kingdee_account_book, account_book_name=s.kingdee_account_book_name,
            accounting_org=s.kingdee_accounting_org,
            accounting_org_name=s.kingdee_accounting_org_name))
    return Hub(s, registry, inventory, esign, mailer, finance, build_notifier(s))


_override: Hub | None = None


@functools.lru_cache(maxsize=1)
def _from_settings() -> Hub:
    return build_hub(get_settings())


def current_hub() -> Hub:
    """The hub of this process: built from settings, or the one installed by `use_hub`."""
    return _override or _from_settings()


def use_hub(hub: Hub | None) -> None:
    """Install a hub for this process (tests, the bench); None goes back to settings."""
    global _override
    _override = hub

"""The daily `registry-watch` flow: re-read the registry for the customers checked longest ago
and alert the owning rep and the risk role about every change of legal name, legal
representative, status or registered capital (old → new; also in the operation log)."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from sqlmodel import select

from connectors.base import PermanentError
from connectors.registry import refuses_the_account
from flows.batch import StepIncomplete, run_each
from flows.customer_registry import FIELD_LABELS, refresh_from_registry, registry_keyword
from flows.hub import Hub, current_hub
from flows.intent_order import STEP
from models import Customer, RegistryChange, utcnow
from models.base import SHANGHAI
from models.db import session_scope

ACTOR = "flow:registry-watch"


def due_customers(hub: Hub, limit: int) -> list[int]:
    """Active files, never checked first, then the longest unchecked."""
    with session_scope(hub.db_url) as s:
        return list(s.exec(select(Customer.id).where(Customer.merged_into_id.is_(None))
                           .order_by(Customer.registry_checked_at.is_not(None),
                                     Customer.registry_checked_at, Customer.id).limit(limit)))


def refresh_customer(hub: Hub, customer_id: int, read_since: dt.datetime | None = None) -> None:
    """Re-read one file from the registry; nothing when it was read at or after `read_since`
    (by this run's earlier attempt: every registry call is billed)."""
    with session_scope(hub.db_url) as s:
        customer = s.get(Customer, customer_id)
        if read_since is not None and customer.registry_checked_at is not None \
                and customer.registry_checked_at >= read_since:
            return
        keyword = registry_keyword(customer)
    refresh_from_registry(hub, customer_id, hub.registry.lookup(keyword), ACTOR)


@task(name="registry-refresh", **STEP)
def refresh_customers(customer_ids: list[str], read_since: dt.datetime | None = None):
    hub = current_hub()
    refused: list[PermanentError] = []

    def one(cid: str) -> None:
        # once the registry refuses our account (no balance, expired …), the rest is not
        # asked: each call would be refused alike (and billed); they stay first in line
        if refused:
            raise PermanentError(f"未查询：{refused[0]}", provider=refused[0].provider,
                                 code=refused[0].code)
        try:
            refresh_customer(hub, int(cid), read_since)
        except PermanentError as exc:
            if refuses_the_account(exc):
                refused.append(exc)
            raise

    return run_each("registry-refresh", customer_ids, one)


@flow(name="registry-watch")
def watch_registry(limit: int | None = None) -> dict:
    """Daily: re-read the registry for up to `limit` customers (default: settings)."""
    hub = current_hub()
    logger = get_run_logger()
    with session_scope(hub.db_url) as s:
        last_change = s.exec(select(sa.func.max(RegistryChange.id))).one() or 0
    started = utcnow()
    ids = [str(i) for i in due_customers(hub, limit or hub.settings.registry_watch_batch)]
    failed = {}
    try:
        # a retry of the task skips the files its earlier attempt already read
        outcome = refresh_customers(ids, read_since=started)
    except StepIncomplete as exc:  # registry unreachable for some: they stay first in line
        outcome, failed = exc.outcome, exc.outcome.retry
    with session_scope(hub.db_url) as s:
        changes = s.exec(select(RegistryChange, Customer).join(
            Customer, Customer.id == RegistryChange.customer_id).where(
            RegistryChange.id > last_change).order_by(RegistryChange.id)).all()
        table = [{"客户": c.legal_name, "变更项": FIELD_LABELS[ch.field],
                  "原值": ch.old_value or "", "新值": ch.new_value or "",
                  "发现时间": ch.detected_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")}
                 for ch, c in changes]
    create_table_artifact(key="registry-watch", table=table or [{"客户": "（无变更）"}],
                          description=f"核查 {len(ids)} 家客户工商信息：变更 {len(table)} 项，"
                                      f"失败 {len(failed)}，需人工 {len(outcome.blocked)}")
    summary = {"checked": len(outcome.ok), "changes": len(table), "failed": sorted(failed),
               "blocked": sorted(outcome.blocked)}
    logger.info("registry watch: %s", summary)
    return summary

"""Requeue blocked or failed intent orders by hand (`salesops orders retry`).

Once ops fixed what stopped an order (an account, a token, the staff file), the order goes back
in line as a fresh `failed` order with all its attempts: the inbox-sweeper hands it to an
`intent-order` run within about SALESOPS_ORDER_RETRY_BASE_SECONDS (`requeue_stalled`). Its open
`order_blocked` to-do is done by the person who requeued it. All orders or none, logged.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, select

from flows.customer_import import require_master_keeper
from models import ORDER_STATUS_LABELS, IntentOrder, OrderStatus, Todo, utcnow
from models.customer_files import CustomerFileError
from models.db import session_scope
from models.oplog import apply_changes

# what a person may send back in line: the others are in work, waiting for the customer's
# signature or a decision on the customer name, or done
RETRYABLE = (OrderStatus.blocked.value, OrderStatus.failed.value)
MAX_ORDERS = 1000  # one command, one transaction; the sweeper hands them over in batches


class RetryRefused(CustomerFileError):
    """The requeue was refused (Chinese message); nothing was written."""


@dataclass(frozen=True)
class Requeued:
    order_id: str
    customer_name: str
    old_status: str
    old_attempts: int
    error: str | None
    todos_done: tuple[int, ...]

    def as_json(self) -> dict:
        return {"order_id": self.order_id, "customer_name": self.customer_name,
                "old_status": self.old_status, "old_attempts": self.old_attempts,
                "error": self.error, "todos_done": list(self.todos_done)}


def _held(s: Session, order_ids: list[str]) -> list[IntentOrder]:
    """The orders as they are now, held until the transaction ends: a run claiming one of them
    meanwhile waits (PostgreSQL: row locks; SQLite: its one write lock, taken by a write
    that changes nothing), one that claimed it before is seen as `processing`."""
    if s.get_bind().dialect.name == "sqlite":
        s.exec(sa.update(IntentOrder).where(IntentOrder.id.in_(order_ids))
               .values(attempts=IntentOrder.attempts))
    return list(s.exec(select(IntentOrder).where(IntentOrder.id.in_(order_ids))
                       .with_for_update().execution_options(populate_existing=True)))


def requeue_orders(db_url: str, order_ids: list[str], by: str) -> list[Requeued]:
    """Set each order back to `failed` with no attempts made and no claim, its open
    `order_blocked` to-do done by `by` (a sales-ops clerk or an admin), in one transaction
    logged as `cli:<by>`. RetryRefused (nothing written) for an unknown order, one in
    another status, or a person who may not."""
    ids = list(dict.fromkeys(o.strip() for o in order_ids if o.strip()))
    if not ids:
        raise RetryRefused("请列出要重新提交的意向单号，例如 IO270105-0K3F2A-7QX9")
    if len(ids) > MAX_ORDERS:
        raise RetryRefused(f"一次最多重新提交 {MAX_ORDERS} 张意向单（此处 {len(ids)} 张），请分批执行")
    actor = f"cli:{by}"
    with session_scope(db_url) as s:
        person = require_master_keeper(s, by, "重新提交意向单")
        orders = {o.id: o for o in _held(s, ids)}
        problems = [f"意向单不存在：{oid}" for oid in ids if oid not in orders]
        problems += [f"意向单 {oid} 的状态是「{ORDER_STATUS_LABELS.get(o.status, o.status)}」，"
                     "只有「已暂停，需人工处理」或「处理失败」的意向单可以重新提交"
                     for oid, o in orders.items() if o.status not in RETRYABLE]
        if problems:
            raise RetryRefused("\n".join(problems))
        now = utcnow()
        note = f"已由 {person.name}（{person.id}）重新提交处理"
        done: list[Requeued] = []
        for oid in ids:
            order = orders[oid]
            before = Requeued(oid, order.customer_name, order.status, order.attempts,
                              order.error, ())
            apply_changes(s, order, actor, status=OrderStatus.failed.value, attempts=0,
                          claimed_by=None, claimed_until=None)
            todos = s.exec(select(Todo).where(Todo.kind == "order_blocked", Todo.order_id == oid,
                                              Todo.status == "open").order_by(Todo.id)).all()
            for todo in todos:
                apply_changes(s, todo, actor, status="done", done_by=person.id, done_at=now,
                              outcome="done", note=note)
            done.append(Requeued(**{**before.__dict__, "todos_done": tuple(t.id for t in todos)}))
    return done

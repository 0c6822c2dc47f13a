"""The `inbox-sweeper` deployment: nothing accepted is ever left behind, and no to-do is left
untold."""
from __future__ import annotations

import datetime as dt
from functools import partial

from prefect import flow, get_run_logger
from sqlmodel import select

from flows.batch import run_log
from flows.dispatch import Launcher, PrefectLauncher, dispatch_pending, requeue_stalled
from flows.hub import Hub, current_hub
from flows.notices import tell_untold
from models import IntentOrder, OrderStatus, utcnow
from models.db import session_scope


def block_abandoned(hub: Hub) -> int:
    """Orders whose last attempt's run vanished (crashed, machine restarted): the lease ran
    out and no attempt is left, so nothing would retry them. They are blocked with a to-do
    for the rep's manager, as after a last failed attempt. Returns how many."""
    from flows.intent_order import settle_outcome

    st = hub.settings
    with session_scope(hub.db_url) as s:
        rows = list(s.exec(select(IntentOrder.id, IntentOrder.attempts).where(
            IntentOrder.status == OrderStatus.processing.value,
            IntentOrder.claimed_until < utcnow(),
            IntentOrder.attempts >= st.order_max_attempts)))
    if rows:
        settle_outcome(hub, {}, {oid: f"{attempts} 次尝试均未完成：最后一次处理中途中断"
                                      f"（运行崩溃或超时），已停止自动重试"
                                 for oid, attempts in rows})
    return len(rows)


def sweep(hub: Hub, launcher: Launcher, min_age_seconds: int = 5) -> dict:
    """Start runs for inbox events still pending (Prefect was down when they arrived) and
    for orders or signings whose run failed or vanished; block the orders out of attempts
    whose last run vanished; tell the open to-dos whose mail or push failed (`tell_untold`).
    A part that fails is logged and does not keep the others from their work: its count is
    0 and it is named under "failed" (the flow run then ends failed)."""
    st = hub.settings
    parts = [  # (its count in the result, the part, as the log and the run's error name it)
        ("blocked", "block_abandoned", partial(block_abandoned, hub)),
        ("requeued", "requeue_stalled", partial(
            requeue_stalled, hub.db_url, launcher, dt.timedelta(seconds=st.claim_lease_seconds),
            st.order_max_attempts, st.dispatch_batch_size,
            dt.timedelta(seconds=st.order_retry_base_seconds))),
        ("dispatched", "dispatch_pending", partial(
            dispatch_pending, hub.db_url, launcher, st.dispatch_batch_size,
            older_than=dt.timedelta(seconds=min_age_seconds))),
        ("told", "tell_untold", partial(tell_untold, hub)),
    ]
    result, failed = {}, []
    for key, name, part in parts:
        try:
            result[key] = part()
        except Exception:  # noqa: BLE001 - one part failing does not stop the others
            run_log().exception("inbox sweeper: %s failed; going on with the rest", name)
            result[key] = 0
            failed.append(name)
    return {**result, "failed": failed}


@flow(name="inbox-sweeper")
def sweep_inbox(min_age_seconds: int = 5) -> dict:
    hub = current_hub()
    result = sweep(hub, PrefectLauncher(), min_age_seconds)
    get_run_logger().info("dispatched %(dispatched)d inbox event(s), requeued %(requeued)d, "
                          "blocked %(blocked)d abandoned order(s), told %(told)d to-do "
                          "notice(s) again", result)
    if result["failed"]:  # the run ends failed: ops see it in the Prefect UI
        raise RuntimeError(f"inbox sweeper: {', '.join(result['failed'])} failed "
                           "(see the log above); the other parts were done")
    return result

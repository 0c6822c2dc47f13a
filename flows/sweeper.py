"""The `inbox-sweeper` deployment: nothing accepted is ever left behind."""
from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger

from flows.dispatch import Launcher, PrefectLauncher, dispatch_pending, requeue_stalled
from flows.hub import Hub, current_hub


def sweep(hub: Hub, launcher: Launcher, min_age_seconds: int = 5) -> dict:
    """Start runs for inbox events still pending (Prefect was down when they arrived) and
    for orders or signings whose run failed or vanished."""
    st = hub.settings
    requeued = requeue_stalled(hub.db_url, launcher, dt.timedelta(seconds=st.claim_lease_seconds),
                               st.order_max_attempts, st.dispatch_batch_size)
    dispatched = dispatch_pending(hub.db_url, launcher, st.dispatch_batch_size,
                                  older_than=dt.timedelta(seconds=min_age_seconds))
    return {"dispatched": dispatched, "requeued": requeued}


@flow(name="inbox-sweeper")
def sweep_inbox(min_age_seconds: int = 5) -> dict:
    hub = current_hub()
    result = sweep(hub, PrefectLauncher(), min_age_seconds)
    get_run_logger().info("dispatched %(dispatched)d inbox event(s), requeued %(requeued)d",
                          result)
    return result

"""The `inbox-sweeper` deployment: nothing accepted is ever left behind."""
from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger

from flows.dispatch import PrefectLauncher, dispatch_pending, requeue_stalled
from flows.hub import current_hub


@flow(name="inbox-sweeper")
def sweep_inbox(min_age_seconds: int = 5) -> dict:
    hub = current_hub()
    st = hub.settings
    launcher = PrefectLauncher(st.prefect_deployment_prefix)
    requeued = requeue_stalled(hub.db_url, launcher, dt.timedelta(seconds=st.claim_lease_seconds),
                               st.order_max_attempts, st.dispatch_batch_size)
    dispatched = dispatch_pending(hub.db_url, launcher, st.dispatch_batch_size,
                                  older_than=dt.timedelta(seconds=min_age_seconds))
    get_run_logger().info("dispatched %d inbox event(s), requeued %d", dispatched, requeued)
    return {"dispatched": dispatched, "requeued": requeued}

"""What the runs write never carries a secret: the whole pipeline on the remote clients with a
fifth of the calls failing (retries, error messages, to-dos), then what Prefect recorded
(logs, run and task states, artifacts), the process's log records, our database and every
file the hub wrote are searched for the provider tokens, the e签宝 secret, the SMTP password
and the webhook secret."""
from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from models.db import get_engine
from tests.e2e.test_remote_pipeline import (  # noqa: F401 - `world` is a fixture
    deliver, drive_until_settled, orders_payloads, world,
)
from tests.simulators.smtp_sim import TEST_PASSWORD
from tests.support import SECRET

pytestmark = pytest.mark.usefixtures("prefect_harness")
SECRETS = ("erp-token", "tyc-token", "tsign-secret", TEST_PASSWORD, SECRET)


def prefect_records() -> str:
    from prefect.client.orchestration import get_client

    async def every(read_page) -> list:
        # every page: the session's server keeps all the tests' records, this test's last
        found, page = [], 200
        while True:
            batch = await read_page(limit=page, offset=len(found))
            found += batch
            if len(batch) < page:
                return found

    async def read():
        async with get_client() as client:
            logs = await every(client.read_logs)
            runs = await every(client.read_flow_runs)
            tasks = await every(client.read_task_runs)
            artifacts = await every(client.read_artifacts)
        return ([log.message for log in logs]
                + [f"{r.state.message} {r.parameters}" for r in runs if r.state]
                + [str(t.state.message) for t in tasks if t.state]
                + [f"{a.description} {a.data}" for a in artifacts])

    return "\n".join(asyncio.run(read()))


def database_text(db_url: str) -> str:
    with get_engine(db_url).connect() as conn:
        tables = sa.inspect(conn).get_table_names()
        return "\n".join(str(row) for table in tables
                         for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')))


@pytest.mark.parametrize("world", [0.2], indirect=True)
def test_no_secret_in_logs_states_artifacts_database_or_files(world, caplog):
    caplog.set_level("DEBUG")
    for payload in orders_payloads(12, seed=9):
        assert deliver(world["api"], payload).status_code == 202
    settings = world["settings"]
    drive_until_settled(settings)
    assert sum(world["erp"].injected.values()) + sum(world["tsign"].injected.values()) > 0
    written = [p.read_bytes().decode("utf-8", "replace")
               for p in settings.data_dir.rglob("*") if p.is_file() and p.suffix != ".pdf"]
    places = {"Prefect": prefect_records(), "database": database_text(settings.db_url),
              "files": "\n".join(written), "process log": caplog.text}
    assert "（意向单 IO" in places["Prefect"] and "may retry" in places["process log"]
    found = {(where, secret) for where, text in places.items() for secret in SECRETS
             if secret in text}
    assert found == set()

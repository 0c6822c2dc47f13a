"""Shared fixtures: a migrated database per test (SQLite file, or PostgreSQL when
SALESOPS_TEST_DATABASE_URL points at one), settings in a tmp dir, a hub on embedded
connectors, and one Prefect test harness per session for the flow tests."""
from __future__ import annotations

import os
import shutil

import pytest
import sqlalchemy as sa

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from connectors.settings import Settings  # noqa: E402
from models.db import dispose_engines, get_engine, migrate  # noqa: E402

PG_URL = os.environ.get("SALESOPS_TEST_DATABASE_URL", "")


def _reset_postgres(url: str) -> None:
    engine = get_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    migrate(url)


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory):
    if PG_URL:
        _reset_postgres(PG_URL)
        return PG_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate(f"sqlite:///{path}")
    dispose_engines()
    return path


def forget_process_caches() -> None:
    """What a process keeps per database URL: the matcher's index, the policy book, the
    board's expected figures. On PostgreSQL every test has the same URL (and restarted ids),
    so a test must not see the previous one's."""
    from flows import rebate_board, rebate_data
    from flows.customer_index import forget_indexes

    forget_indexes()
    rebate_data._BOOKS.clear()
    rebate_board._EXPECTED.clear()


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Per test: fresh process caches and the real business clock again."""
    from models.base import set_clock

    forget_process_caches()
    yield
    set_clock(None)
    forget_process_caches()


@pytest.fixture
def db_url(_template_db, tmp_path):
    """A migrated, empty database for one test."""
    if PG_URL:
        engine = get_engine(PG_URL)
        with engine.begin() as conn:
            tables = [r[0] for r in conn.execute(sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname='public' "
                "AND tablename <> 'alembic_version'"))]
            conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        return PG_URL
    path = tmp_path / "salesops.db"
    shutil.copy(_template_db, path)
    return f"sqlite:///{path}"


@pytest.fixture
def settings(db_url, tmp_path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "data", database_url=db_url,
                    public_base_url="http://testserver",
                    webhook_senders={"portal": "test-secret-portal"},
                    connector_timeout_seconds=2.0,
                    # tests change customers and search right away
                    customer_index_refresh_seconds=0.0)


@pytest.fixture
def seeded(settings) -> Settings:
    from deployments.seed import seed_sample_data

    seed_sample_data(settings.db_url)
    return settings


@pytest.fixture
def hub(seeded):
    from flows.hub import build_hub, use_hub

    h = build_hub(seeded)
    use_hub(h)
    yield h
    use_hub(None)


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield

"""Engine, sessions and schema migrations (Alembic) for the hub's own database."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import Session, create_engine

_ENGINES: dict[str, sa.Engine] = {}
# SQLite: whether this process's commits may run WAL checkpoints (see leave_checkpoints_to_others)
_AUTOCHECKPOINT = True
# how long a SQLite connection waits for another writer before "database is locked"
BUSY_TIMEOUT_MS = 30_000
# PostgreSQL: serialization failure, deadlock detected, lock not available
_BUSY_SQLSTATES = {"40001", "40P01", "55P03"}


def leave_checkpoints_to_others() -> None:
    """For the API process: its commits never run a WAL checkpoint (copying the log back into
    the database file and syncing it), which would land on a webhook's answer time. The
    flow runs, which write far more, keep checkpointing."""
    global _AUTOCHECKPOINT
    _AUTOCHECKPOINT = False


def _sqlite_path(url: str) -> None:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_conn, _) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_MS)}")
    if not _AUTOCHECKPOINT:
        cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.close()


def get_engine(url: str) -> sa.Engine:
    """One pooled engine per URL and process."""
    engine = _ENGINES.get(url)
    if engine is None:
        if url.startswith("sqlite"):
            _sqlite_path(url)
            engine = create_engine(url, connect_args={"check_same_thread": False,
                                                 "timeout": BUSY_TIMEOUT_MS / 1000})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        _ENGINES[url] = engine
    return engine


def database_busy(exc: BaseException) -> bool:
    """Whether a database error means "another writer holds the lock, try again later"
    (SQLite's busy timeout ran out; PostgreSQL's lock, deadlock or serialization failures)
    rather than a defect."""
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "sqlstate", None) in _BUSY_SQLSTATES:
        return True
    text = str(orig).lower()
    return type(orig).__name__ == "OperationalError" and (
        "database is locked" in text or "database table is locked" in text)


def nul_in_text(exc: BaseException) -> bool:
    """Whether a database error is PostgreSQL refusing text with a NUL character: an input
    problem (a `%00` in an address, say), not a defect. SQLite stores and compares it."""
    return "cannot contain NUL" in str(getattr(exc, "orig", exc))


def dispose_engines() -> None:
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()


@contextlib.contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """One transaction: commit on success, roll back everything on any error."""
    with Session(get_engine(url), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _alembic(url: str | None = None):
    from alembic.config import Config

    here = Path(__file__).resolve().parent.parent / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(here))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        cfg.attributes["engine"] = get_engine(url)
    return cfg


def schema_revision(url: str) -> str | None:
    """The Alembic revision the database is at (None: never migrated)."""
    from alembic.migration import MigrationContext

    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def schema_revisions() -> list[str]:
    """The Alembic revisions of the schema, oldest first."""
    from alembic.script import ScriptDirectory

    return [r.revision for r in reversed(list(
        ScriptDirectory.from_config(_alembic()).walk_revisions()))]


def migrate(url: str) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command

    command.upgrade(_alembic(url), "head")


def downgrade(url: str, revision: str) -> None:
    """Take the schema back to an earlier Alembic revision (an operator's way back)."""
    from alembic import command

    command.downgrade(_alembic(url), revision)

"""Engine, sessions and schema migrations (Alembic) for the hub's own database."""
from __future__ import annotations

import contextlib
import hashlib
import threading
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


class DatabaseUrlUnusable(ValueError):
    """The database URL names nothing the hub can open: unparseable, a dialect or driver that
    is not installed, or a SQLite file whose folder cannot be made. The message is for the
    person who configured it (Chinese, no password)."""


def masked_url(url: str) -> str:
    """The URL as it may be shown or logged: the password replaced by ***."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "（无法解析的地址）"


def _sqlite_path(url: str) -> None:
    path = url.split("///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseUrlUnusable(f"无法创建数据库文件所在的目录 {Path(path).parent}"
                                      f"（{exc.strerror or exc}）") from None


def _sqlite_pragmas(dbapi_conn, _) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_MS)}")
    if not _AUTOCHECKPOINT:
        cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.close()


def roomy_page_cache(conn: sa.Connection, kib: int) -> None:
    """SQLite: let this connection's page cache hold `kib` KiB until it goes back to the pool
    (the end of its transaction), e.g. for a transaction writing tens of thousands of rows
    into several indexes: with the default 2 MB the index pages it dirties do not fit, and
    are written out and read back in the middle of it. No effect on what is committed or
    how durably; PostgreSQL: nothing to do."""
    if conn.dialect.name != "sqlite":
        return
    pooled = conn.connection
    raw = pooled.driver_connection
    if "page_cache" not in pooled.info:
        pooled.info["page_cache"] = raw.execute("PRAGMA cache_size").fetchone()[0]
    raw.execute(f"PRAGMA cache_size = {-int(kib)}")


def _restore_page_cache(dbapi_conn, record) -> None:
    """Back in the pool: the connection's page cache at its usual size again (its pages
    beyond that freed)."""
    size = record.info.pop("page_cache", None)
    if size is not None and dbapi_conn is not None:  # None: the connection was invalidated
        dbapi_conn.execute(f"PRAGMA cache_size = {int(size)}")


def get_engine(url: str) -> sa.Engine:
    """One pooled engine per URL and process."""
    engine = _ENGINES.get(url)
    if engine is None:
        try:
            if url.startswith("sqlite"):
                _sqlite_path(url)
                engine = create_engine(url, connect_args={"check_same_thread": False,
                                                     "timeout": BUSY_TIMEOUT_MS / 1000})
                event.listen(engine, "connect", _sqlite_pragmas)
                event.listen(engine, "checkin", _restore_page_cache)
            else:
                engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        except (sa.exc.ArgumentError, ImportError):  # also NoSuchModuleError (a dialect)
            raise DatabaseUrlUnusable(
                f"{masked_url(url)} 不是可用的数据库地址（支持 sqlite:///文件路径 与 "
                "postgresql+psycopg://用户@主机:端口/库名）") from None
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


def unique_clash(exc: BaseException) -> bool:
    """Whether a database error is a unique key refusing a row another transaction stored
    first (PostgreSQL's unique violation, SQLite's UNIQUE constraint): two writers of the same
    record at once, where the one that lost may simply run again."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) == "23505" or (
        type(orig).__name__ == "IntegrityError" and "UNIQUE constraint failed" in str(orig))


def database_unreachable(exc: BaseException) -> bool:
    """Whether a database error means the connection itself failed (server down, wrong host,
    port or password, a SQLite file that cannot be opened): no statement was run."""
    return isinstance(exc, sa.exc.OperationalError) and exc.statement is None \
        and not database_busy(exc)


def nul_in_text(exc: BaseException) -> bool:
    """Whether a database error is PostgreSQL refusing text with a NUL character: an input
    problem (a `%00` in an address, say), not a defect. SQLite stores and compares it."""
    return "cannot contain NUL" in str(getattr(exc, "orig", exc))


def dispose_engines() -> None:
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()


def lock_transaction(s: Session, key: int, table: str, *, shared: bool = False) -> None:
    """Until the session's transaction ends, no other transaction taking the same lock (any
    process) gets past this call: PostgreSQL's advisory lock `key`; on SQLite, a first write
    (to `table`, changing nothing) takes the database's one write lock. What the transaction
    reads after it is what is on file: another holder's writes are committed or not begun.
    `shared`: holders of the shared lock do not wait for each other, only for (and hold off)
    the exclusive one (PostgreSQL; on SQLite every writer is exclusive). The named locks, and
    the order a transaction takes them in, are in models.locks."""
    conn = s.connection()
    if conn.dialect.name == "postgresql":
        kind = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        conn.execute(sa.text(f"SELECT {kind}({int(key)})"))
    else:
        conn.execute(sa.text(f"UPDATE {table} SET id = id WHERE id < 0"))


def one_snapshot(s: Session) -> None:
    """Called first in a session's transaction: every statement of it reads the database as
    it was at its first one (PostgreSQL: REPEATABLE READ, for this transaction only; SQLite:
    a read transaction begun now — the driver begins none before a read on its own). For a
    read of several statements that must add up, e.g. lines before and after finance
    confirms their revision."""
    if s.get_bind().dialect.name == "postgresql":
        s.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        return
    raw = s.connection().connection.driver_connection
    if not raw.in_transaction:
        raw.execute("BEGIN")


_LOCAL_CLAIMS: set[str] = set()
_LOCAL_CLAIMS_LOCK = threading.Lock()


@contextlib.contextmanager
def claimed(url: str, name: str) -> Iterator[bool]:
    """Whether this caller holds the claim `name` on the database at `url` for the block
    (False: another caller, any thread or process, holds it now; nobody waits). Unlike a
    transaction lock it may be held across an outside call, and a holder that dies lets go
    of it: PostgreSQL's session advisory lock, on a connection of its own for the block;
    SQLite: an exclusive flock on a file beside the database (one per claim, in
    `<database>.claims/`), released with the file's descriptor."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1].split("?", 1)[0]
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: one process serves the hub there
            fcntl = None
        if not path or path == ":memory:" or fcntl is None:
            yield from _local_claim(name)
            return
        folder = Path(path + ".claims")
        folder.mkdir(exist_ok=True)
        with open(folder / f"{digest.hex()}.lock", "a") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return
    key = int.from_bytes(digest, "big", signed=True)
    with get_engine(url).connect() as conn:
        won = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        conn.commit()  # the lock is the session's: no transaction stays open meanwhile
        try:
            yield bool(won)
        finally:
            if won:
                try:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
                except sa.exc.DBAPIError:
                    conn.invalidate()  # never back to the pool holding the lock


def _local_claim(name: str) -> Iterator[bool]:
    """An in-memory database: the claim within this process."""
    with _LOCAL_CLAIMS_LOCK:
        won = name not in _LOCAL_CLAIMS
        _LOCAL_CLAIMS.add(name)
    try:
        yield won
    finally:
        if won:
            with _LOCAL_CLAIMS_LOCK:
                _LOCAL_CLAIMS.discard(name)


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


class SchemaMismatch(RuntimeError):
    """The database is not at the schema this release needs: never migrated, older, or made
    by a newer release (rolled back without `migrate --down-to` first)."""


def refuse_newer_schema(url: str) -> None:
    current, known = schema_revision(url), schema_revisions()
    if current is not None and current not in known:
        raise SchemaMismatch(
            f"数据库结构版本为 {current}，比本版本（{known[-1]}）新：回滚发布时须先用新版本运行 "
            f"salesops migrate --down-to {known[-1]}，再启动本版本")


def require_current_schema(url: str) -> None:
    """Refuse to serve a database this release has not migrated (a release upgraded without
    `salesops migrate`): every request would fail on a missing table or column."""
    refuse_newer_schema(url)
    current, head = schema_revision(url), schema_revisions()[-1]
    if current != head:
        raise SchemaMismatch(f"数据库结构版本为 {current or '（未初始化）'}，本版本需要 {head}："
                             "请先运行 salesops migrate，再启动 API")


def migrate(url: str) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command

    refuse_newer_schema(url)
    command.upgrade(_alembic(url), "head")


def downgrade_losses(url: str, revision: str) -> list[str]:
    """What taking the database at `url` back to `revision` would delete: the tables and
    columns the migrations' way back drops (found by taking a scratch SQLite database of the
    same schema down the same way) that hold data here, each with how much, e.g.
    `voucher_number（3 行）`, `customer.finance_code（12 个值）`. Texts a way back narrows
    (0009) are not counted."""
    import tempfile

    from alembic import command

    current = schema_revision(url)
    with tempfile.TemporaryDirectory(prefix="salesops-downgrade-") as tmp:
        scratch = f"sqlite:///{Path(tmp) / 'scratch.db'}"
        try:
            command.upgrade(_alembic(scratch), current or "head")
            before = _shape(scratch)
            command.downgrade(_alembic(scratch), revision)
            after = _shape(scratch)
        finally:
            engine = _ENGINES.pop(scratch, None)
            if engine is not None:
                engine.dispose()
    losses = []
    with get_engine(url).connect() as conn:
        for table in sorted(set(before) - set(after)):
            rows = conn.execute(sa.text(f'SELECT COUNT(*) FROM "{table}"')).scalar()
            if rows:
                losses.append(f"{table}（{rows:,} 行）")
        for table in sorted(set(before) & set(after)):
            for column in sorted(before[table] - after[table]):
                values = conn.execute(sa.text(
                    f'SELECT COUNT("{column}") FROM "{table}"')).scalar()
                if values:
                    losses.append(f"{table}.{column}（{values:,} 个值）")
    return losses


def _shape(url: str) -> dict[str, set[str]]:
    """Table → column names of the database at `url` (Alembic's own table left out)."""
    inspector = sa.inspect(get_engine(url))
    return {t: {c["name"] for c in inspector.get_columns(t)}
            for t in inspector.get_table_names() if t != "alembic_version"}


def downgrade(url: str, revision: str) -> None:
    """Take the schema back to an earlier Alembic revision (an operator's way back)."""
    from alembic import command

    command.downgrade(_alembic(url), revision)

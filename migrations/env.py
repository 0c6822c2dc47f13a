"""Alembic environment: runs against the engine the hub hands over (or the URL)."""
from alembic import context
from sqlmodel import SQLModel

import models  # noqa: F401 - registers every table on SQLModel.metadata

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from models.db import get_engine
        engine = get_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # batch migrations rebuild tables (copy, drop, rename): with foreign keys enforced
            # the drop of a referenced table would fail. The pragma only works outside a
            # transaction; it is checked again at the end.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            # the driver begins a transaction only before INSERT/UPDATE/DELETE: without this
            # each schema statement would commit on its own, and a migrate interrupted
            # halfway would leave a revision half applied under the old version number
            connection.exec_driver_sql("BEGIN")
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=sqlite)
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left dangling foreign keys: {broken[:5]}")
        connection.commit()
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")


run_migrations_online()

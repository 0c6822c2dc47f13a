"""connector_cursor.cursor as text of any length: the drop folder's receivables cursor lists
every export file read with a fingerprint of its content (a corrected export dropped again
under its name is read again), which outgrows 400 characters

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-29 04:00:00
"""
import json

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('connector_cursor') as batch:
        batch.alter_column('cursor', existing_type=sqlmodel.sql.sqltypes.AutoString(length=400),
                           type_=sa.Text(), existing_nullable=True)


def downgrade() -> None:
    # a cursor listing the files read goes back to what the code before read: the name of the
    # last file read (a file corrected since is then not read again, as before)
    cursor = sa.table('connector_cursor', sa.column('name', sa.String),
                      sa.column('cursor', sa.Text))
    conn = op.get_bind()
    for name, value in conn.execute(sa.select(cursor.c.name, cursor.c.cursor)).all():
        if not value or not (value.startswith('{') and value.endswith('}')):
            continue
        try:
            read = json.loads(value)
        except ValueError:
            continue
        last = max(read, default=None) if isinstance(read, dict) else None
        conn.execute(cursor.update().where(cursor.c.name == name).values(cursor=last))
    with op.batch_alter_table('connector_cursor') as batch:
        batch.alter_column('cursor', existing_type=sa.Text(),
                           type_=sqlmodel.sql.sqltypes.AutoString(length=400),
                           existing_nullable=True, postgresql_using='left("cursor", 400)')

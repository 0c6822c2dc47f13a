"""todo.done_by / done_at / outcome / note: a to-do done by a person says by whom, when and how
(the legal qualification review's 通过 / 不通过 and its reason)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 18:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

from models.base import UTCDateTime


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('todo') as batch:
        batch.add_column(sa.Column('done_by', sqlmodel.sql.sqltypes.AutoString(length=40),
                                   nullable=True))
        batch.add_column(sa.Column('done_at', UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=20),
                                   nullable=True))
        batch.add_column(sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('todo') as batch:
        for column in ('note', 'outcome', 'done_at', 'done_by'):
            batch.drop_column(column)

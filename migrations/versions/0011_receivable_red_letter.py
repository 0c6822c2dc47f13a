"""receivable_invoice.reverses (a red-letter invoice's blue invoice) and
receivable_invoice.reversed_in_full (a blue invoice marked 已红冲): a reversed invoice is no
longer due in the payment rate

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 10:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('receivable_invoice') as batch:
        batch.add_column(sa.Column('reverses', sqlmodel.sql.sqltypes.AutoString(length=40),
                                   nullable=True))
        batch.add_column(sa.Column('reversed_in_full', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    # only the red-letter rows: a blue invoice's red ones are found by an index probe even
    # after ANALYZE (a plain index of mostly NULLs reads as matching every row)
    op.create_index('ix_receivable_invoice_reverses', 'receivable_invoice', ['reverses'],
                    unique=False, sqlite_where=sa.text('reverses IS NOT NULL'),
                    postgresql_where=sa.text('reverses IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_receivable_invoice_reverses', table_name='receivable_invoice')
    with op.batch_alter_table('receivable_invoice') as batch:
        batch.drop_column('reversed_in_full')
        batch.drop_column('reverses')

"""customer.finance_code: the customer's code in finance's books (the vouchers' 核算维度)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 12:20:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customer') as batch:
        batch.add_column(sa.Column('finance_code', sqlmodel.sql.sqltypes.AutoString(length=40),
                                   nullable=True))
        batch.create_index('ix_customer_finance_code', ['finance_code'])


def downgrade() -> None:
    with op.batch_alter_table('customer') as batch:
        batch.drop_index('ix_customer_finance_code')
        batch.drop_column('finance_code')

"""customer.status and customer.legal_representative wider: the registry's own words
(登记状态 such as "存续（在营、开业、在册）" or longer local wordings; a partnership's
执行事务合伙人 is a company, often with its 委派代表) did not fit 20 / 60 characters on
PostgreSQL

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 09:40:00
"""
from alembic import op
import sqlmodel


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# column: (before, after)
WIDENED = {'status': (20, 100), 'legal_representative': (60, 100)}


def upgrade() -> None:
    with op.batch_alter_table('customer') as batch:
        for column, (before, after) in WIDENED.items():
            batch.alter_column(column,
                               existing_type=sqlmodel.sql.sqltypes.AutoString(length=before),
                               type_=sqlmodel.sql.sqltypes.AutoString(length=after),
                               existing_nullable=True)


def downgrade() -> None:
    # a longer text is cut to the old width (PostgreSQL would refuse the change otherwise)
    with op.batch_alter_table('customer') as batch:
        for column, (before, after) in WIDENED.items():
            batch.alter_column(column,
                               existing_type=sqlmodel.sql.sqltypes.AutoString(length=after),
                               type_=sqlmodel.sql.sqltypes.AutoString(length=before),
                               existing_nullable=True,
                               postgresql_using=f'left({column}, {before})')

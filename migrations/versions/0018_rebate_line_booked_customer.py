"""rebate_line.booked_customer_id: the customer a settled line's statement and voucher are for

A customer merge moves rebate lines to the surviving file (customer_id, and the bucket keys,
so later settlements see what was paid), but a revision's vouchers are fixed when first
prepared, one per customer: its statements, finance's status and the summaries now read the
customer each line was booked to, which no merge moves. Lines stored before this revision
take their customer_id: the customer they were booked to, unless a merge moved them before
this revision (which file those were booked to was not kept: they stay under the survivor).

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-28 18:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('rebate_line') as batch:
        batch.add_column(sa.Column('booked_customer_id', sa.Integer(), nullable=True))
    line = sa.table('rebate_line', sa.column('customer_id'), sa.column('booked_customer_id'))
    op.execute(line.update().values(booked_customer_id=line.c.customer_id))
    with op.batch_alter_table('rebate_line') as batch:
        batch.alter_column('booked_customer_id', existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key('fk_rebate_line_booked_customer_id_customer', 'customer',
                                 ['booked_customer_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('rebate_line') as batch:
        batch.drop_constraint('fk_rebate_line_booked_customer_id_customer', type_='foreignkey')
        batch.drop_column('booked_customer_id')

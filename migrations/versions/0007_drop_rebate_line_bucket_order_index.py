"""rebate_line's (bucket_key, order_id) index dropped: no query looks lines up by bucket (what
earlier settlements paid is found through the order's index), and each settlement's tens of
thousands of lines paid for keeping it

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 07:00:00
"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_rebate_line_bucket_order', table_name='rebate_line')


def downgrade() -> None:
    op.create_index('ix_rebate_line_bucket_order', 'rebate_line', ['bucket_key', 'order_id'])

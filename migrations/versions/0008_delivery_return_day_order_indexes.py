"""delivery.delivered_on and sales_return.returned_on indexed with the order: the settlement
finds the orders with deliveries or returns in a month from the index alone (the day's
index would read every such delivery row for its order)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 07:10:00
"""
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_delivery_day_order', 'delivery', ['delivered_on', 'order_id'])
    op.drop_index('ix_delivery_delivered_on', table_name='delivery')
    op.create_index('ix_sales_return_day_order', 'sales_return', ['returned_on', 'order_id'])
    op.drop_index('ix_sales_return_returned_on', table_name='sales_return')


def downgrade() -> None:
    op.create_index('ix_sales_return_returned_on', 'sales_return', ['returned_on'])
    op.drop_index('ix_sales_return_day_order', table_name='sales_return')
    op.create_index('ix_delivery_delivered_on', 'delivery', ['delivered_on'])
    op.drop_index('ix_delivery_day_order', table_name='delivery')

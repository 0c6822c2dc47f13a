"""quote.pdf_stock_note: whether the quote's PDF was rendered with the shortage note

A rerun of an order whose stock check now finds it short (or no longer short) renders its
draft quote again, so the customer never gets a PDF that promises what the alert says is
missing. Quotes rendered before this revision were rendered with the note exactly when their
order was flagged short: they take their order's flag.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-29 12:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('quote') as batch:
        batch.add_column(sa.Column('pdf_stock_note', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    quote = sa.table('quote', sa.column('order_id'), sa.column('pdf_path'),
                     sa.column('pdf_stock_note', sa.Boolean()))
    order = sa.table('intent_order', sa.column('id'), sa.column('stock_short', sa.Boolean()))
    op.execute(quote.update().where(quote.c.pdf_path.is_not(None)).values(
        pdf_stock_note=sa.select(order.c.stock_short).where(order.c.id == quote.c.order_id)
        .scalar_subquery()))


def downgrade() -> None:
    with op.batch_alter_table('quote') as batch:
        batch.drop_column('pdf_stock_note')

"""quote.signed_at indexed: the settlement finds the quotes signed in a month without reading
every order

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 17:20:00
"""
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_quote_signed_at', 'quote', ['signed_at'])


def downgrade() -> None:
    op.drop_index('ix_quote_signed_at', table_name='quote')

"""settlement_run.delivery_error: why a revision's vouchers or documents did not go out (finance
refused the batch, or could not be reached), in Chinese, for the finance person who confirmed
it; blank once they are out or while they are being sent

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 09:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('settlement_run') as batch:
        batch.add_column(sa.Column('delivery_error', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('settlement_run') as batch:
        batch.drop_column('delivery_error')

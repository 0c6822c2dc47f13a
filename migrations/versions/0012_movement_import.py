"""movement_import: each import of deliveries or returns, registered before its rows are
written and finished with them; a settlement takes as what it knew no later than the start of
an import still open (its rows are stamped from then but visible only once it commits)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 12:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'movement_import',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('source', sa.String(length=200), nullable=False),
        sa.Column('actor', sa.String(length=100), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('outcome', sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_movement_import_started_at', 'movement_import', ['started_at'])


def downgrade() -> None:
    op.drop_index('ix_movement_import_started_at', table_name='movement_import')
    op.drop_table('movement_import')

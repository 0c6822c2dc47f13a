"""operation_log: indexes on (entity, at) and (entity, entity_id, at) instead of (entity) and
(entity_id): the dated customer profiles read "the customer files' changes recorded since a
day" (the settlement, a region's board: every file's; a preview: one file's). Without table
statistics (SQLite is not ANALYZEd) the planner took the entity index and read every customer
log row ever written

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 15:30:00
"""
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_operation_log_entity_at', 'operation_log', ['entity', 'at'],
                    unique=False)
    op.create_index('ix_operation_log_entity_record_at', 'operation_log',
                    ['entity', 'entity_id', 'at'], unique=False)
    # their first columns serve every lookup by entity, or by entity and record
    op.drop_index('ix_operation_log_entity', table_name='operation_log')
    op.drop_index('ix_operation_log_entity_id', table_name='operation_log')


def downgrade() -> None:
    op.create_index('ix_operation_log_entity_id', 'operation_log', ['entity_id'], unique=False)
    op.create_index('ix_operation_log_entity', 'operation_log', ['entity'], unique=False)
    op.drop_index('ix_operation_log_entity_record_at', table_name='operation_log')
    op.drop_index('ix_operation_log_entity_at', table_name='operation_log')

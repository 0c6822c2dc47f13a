"""rebate lines share their bucket's inputs: rebate_bucket_inputs

Lines stored before this revision keep their whole inputs; settlement.line_inputs() reads
both kinds.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 09:50:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rebate_bucket_inputs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('bucket_key', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('policy_version', sa.Integer(), nullable=False),
    sa.Column('inputs', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['settlement_run.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'bucket_key', 'policy_version')
    )


def downgrade() -> None:
    """Each line gets its bucket's inputs back before the table goes: nothing is lost."""
    import json

    conn = op.get_bind()
    line = sa.table('rebate_line', sa.column('id'), sa.column('run_id'), sa.column('bucket_key'),
                    sa.column('policy_version'), sa.column('inputs'))
    shared = sa.table('rebate_bucket_inputs', sa.column('run_id'), sa.column('bucket_key'),
                      sa.column('policy_version'), sa.column('inputs'))
    rows = conn.execute(sa.select(line.c.id, line.c.inputs, shared.c.inputs).join(shared, sa.and_(
        shared.c.run_id == line.c.run_id, shared.c.bucket_key == line.c.bucket_key,
        shared.c.policy_version == line.c.policy_version))).all()
    for lid, own, bucket in rows:
        conn.execute(line.update().where(line.c.id == lid).values(inputs=json.dumps(
            {**json.loads(bucket), **json.loads(own)}, ensure_ascii=False, sort_keys=True)))
    op.drop_table('rebate_bucket_inputs')

"""voucher_number: the 凭证号 the hub issued to each voucher, continuing within (凭证字,
accounting period) across batches (a month's settlement, its corrections, an earlier month's
late correction booked in the period), unique there

Batches prepared before this revision carry no numbers: the import workbook numbered their
vouchers 1…n in the batch. Those numbers are recorded here, so that the next batch of the
period continues after them; where two such batches of one period used the same numbers
(the clash this table ends), the first batch's are recorded.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 15:00:00
"""
import json

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    numbers = op.create_table(
        'voucher_number',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('word', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('batch_id', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column('voucher_key', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column('issued_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('word', 'period', 'number'),
        sa.UniqueConstraint('voucher_key'),
    )
    op.create_index('ix_voucher_number_batch_id', 'voucher_number', ['batch_id'])
    _record_numbers_already_sent(numbers)


def _record_numbers_already_sent(numbers: sa.Table) -> None:
    """The vouchers of every batch prepared so far, with the numbers they were sent with."""
    conn = op.get_bind()
    effect = sa.table('effect', sa.column('id'), sa.column('kind'), sa.column('business_key'),
                      sa.column('status'), sa.column('result'),
                      sa.column('created_at', sa.DateTime()), sa.column('done_at', sa.DateTime()))
    batches: dict[str, tuple] = {}  # batch id → (vouchers, when prepared)
    # the batch as prepared (kept since the first attempt), else as sent with its reference
    for kind in ('rebate_voucher_batch', 'rebate_vouchers'):
        for key, result, done_at in conn.execute(
                sa.select(effect.c.business_key, effect.c.result,
                          sa.func.coalesce(effect.c.done_at, effect.c.created_at))
                .where(effect.c.kind == kind, effect.c.status == 'done')
                .order_by(effect.c.id)):
            content = json.loads(result or '{}')
            content = content.get('batch', content) if kind == 'rebate_vouchers' else content
            if key not in batches and content.get('vouchers'):
                batches[key] = (content['vouchers'], done_at)
    taken: set[tuple[str, str, int]] = set()
    rows = []

    def record(batch_id, voucher, number, done_at) -> None:
        where = (voucher['word'], voucher['period'], number)
        if where not in taken:
            taken.add(where)
            rows.append({'word': voucher['word'], 'period': voucher['period'],
                         'number': number, 'batch_id': batch_id,
                         'voucher_key': voucher['voucher_key'], 'issued_at': done_at})

    # a batch prepared since this revision (the way back and up again) carries the number
    # each voucher was sent with: those first, as they were; the older ones were numbered
    # 1…n in their workbooks, and a clash with a number already taken is skipped
    numbered = {b: v for b, v in batches.items() if all(x.get('number') for x in v[0])}
    for batch_id, (vouchers, done_at) in numbered.items():
        for voucher in vouchers:
            record(batch_id, voucher, int(voucher['number']), done_at)
    for batch_id, (vouchers, done_at) in batches.items():
        if batch_id not in numbered:
            for number, voucher in enumerate(vouchers, start=1):
                record(batch_id, voucher, number, done_at)
    if rows:
        op.bulk_insert(numbers, rows)


def downgrade() -> None:
    op.drop_index('ix_voucher_number_batch_id', table_name='voucher_number')
    op.drop_table('voucher_number')

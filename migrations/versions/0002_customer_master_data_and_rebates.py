"""customer master data: name keys, branches, suspects, registry changes; rebates: policies, receivables, deliveries, settlements

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 02:42:28.921307
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import models.base


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def _backfill(conn) -> None:
    """Existing rows get their name keys, order dates and alias bookkeeping."""
    import datetime as dt

    from models.base import SHANGHAI
    from models.names import normalize_name

    customer = sa.table('customer', sa.column('id'), sa.column('legal_name'),
                        sa.column('name_key'))
    for cid, name in conn.execute(sa.select(customer.c.id, customer.c.legal_name)).all():
        conn.execute(customer.update().where(customer.c.id == cid)
                     .values(name_key=normalize_name(name)))
    alias = sa.table('customer_alias', sa.column('id'), sa.column('name'), sa.column('key'),
                     sa.column('source'), sa.column('created_at', models.base.UTCDateTime()),
                     sa.column('updated_at', models.base.UTCDateTime()))
    now = dt.datetime.now(dt.timezone.utc)
    for aid, name in conn.execute(sa.select(alias.c.id, alias.c.name)).all():
        conn.execute(alias.update().where(alias.c.id == aid).values(
            key=normalize_name(name), source='manual', created_at=now, updated_at=now))
    order = sa.table('intent_order', sa.column('id'), sa.column('order_date', sa.Date()),
                     sa.column('created_at', models.base.UTCDateTime()))
    for oid, created in conn.execute(sa.select(order.c.id, order.c.created_at)).all():
        conn.execute(order.update().where(order.c.id == oid).values(
            order_date=created.astimezone(SHANGHAI).date()))


def upgrade() -> None:
    op.create_table('connector_cursor',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('cursor', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
    sa.Column('updated_at', models.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('rebate_policy_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('effective_to', sa.Date(), nullable=True),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('spec', sa.Text(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('published_by', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('published_at', models.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code', 'version')
    )
    with op.batch_alter_table('rebate_policy_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rebate_policy_version_code'), ['code'], unique=False)

    op.create_table('settlement_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('as_of', models.base.UTCDateTime(), nullable=False),
    sa.Column('line_count', sa.Integer(), nullable=False),
    sa.Column('total_amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('flow_run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('voucher_batch_id', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
    sa.Column('voucher_ref', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    sa.Column('confirmed_by', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('confirmed_at', models.base.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('month', 'revision')
    )
    with op.batch_alter_table('settlement_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlement_run_month'), ['month'], unique=False)

    op.create_table('receivable_invoice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_no', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('recorded_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('invoice_no')
    )
    with op.batch_alter_table('receivable_invoice', schema=None) as batch_op:
        batch_op.create_index('ix_receivable_customer_due', ['customer_id', 'due_on'], unique=False)

    op.create_table('registry_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('field', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('old_value', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('new_value', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('detected_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('todo_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['todo_id'], ['todo.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('registry_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registry_change_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_registry_change_detected_at'), ['detected_at'], unique=False)

    op.create_table('suspect_name',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('display_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('sightings', sa.Integer(), nullable=False),
    sa.Column('first_seen_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('last_seen_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('last_rep_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('decider_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('escalated_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('deadline_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('todo_id', sa.Integer(), nullable=True),
    sa.Column('suggestions', sa.Text(), nullable=True),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('decided_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['decider_id'], ['staff.id'], ),
    sa.ForeignKeyConstraint(['last_rep_id'], ['staff.id'], ),
    sa.ForeignKeyConstraint(['todo_id'], ['todo.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('suspect_name', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suspect_name_deadline_at'), ['deadline_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_suspect_name_status'), ['status'], unique=False)

    op.create_table('payment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payment_no', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('invoice_no', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('recorded_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['invoice_no'], ['receivable_invoice.invoice_no'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('payment_no', 'invoice_no')
    )
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_invoice_no'), ['invoice_no'], unique=False)

    op.create_table('delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delivery_no', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('order_id', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('delivered_on', sa.Date(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('recorded_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['intent_order.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('delivery_no', 'order_id', 'line_no')
    )
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_delivered_on'), ['delivered_on'], unique=False)
        batch_op.create_index('ix_delivery_order_line', ['order_id', 'line_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_delivery_recorded_at'), ['recorded_at'], unique=False)

    op.create_table('order_rebate',
    sa.Column('order_id', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('computed_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('rate', sa.Numeric(precision=9, scale=6), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('sentence', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['intent_order.id'], ),
    sa.PrimaryKeyConstraint('order_id')
    )
    op.create_table('rebate_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('order_id', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('rep_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('policy_code', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('policy_version', sa.Integer(), nullable=False),
    sa.Column('rule_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('clause', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('bucket_key', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('basis_amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('due_amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('rate', sa.Numeric(precision=9, scale=6), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('explanation', sa.Text(), nullable=False),
    sa.Column('inputs', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['intent_order.id'], ),
    sa.ForeignKeyConstraint(['run_id'], ['settlement_run.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('rebate_line', schema=None) as batch_op:
        batch_op.create_index('ix_rebate_line_bucket_order', ['bucket_key', 'order_id'], unique=False)
        batch_op.create_index('ix_rebate_line_customer_month', ['customer_id', 'month'], unique=False)
        batch_op.create_index(batch_op.f('ix_rebate_line_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_rebate_line_region_month', ['region', 'month'], unique=False)
        batch_op.create_index('ix_rebate_line_rep_month', ['rep_id', 'month'], unique=False)
        batch_op.create_index(batch_op.f('ix_rebate_line_run_id'), ['run_id'], unique=False)

    op.create_table('sales_return',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('return_no', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('order_id', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('returned_on', sa.Date(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('recorded_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['intent_order.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('return_no', 'order_id', 'line_no')
    )
    with op.batch_alter_table('sales_return', schema=None) as batch_op:
        batch_op.create_index('ix_sales_return_order_line', ['order_id', 'line_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_sales_return_recorded_at'), ['recorded_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sales_return_returned_on'), ['returned_on'], unique=False)

    op.create_table('suspect_sighting',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('suspect_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True),
    sa.Column('typed_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('rep_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('seen_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['intent_order.id'], ),
    sa.ForeignKeyConstraint(['suspect_id'], ['suspect_name.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('suspect_id', 'order_id')
    )
    with op.batch_alter_table('suspect_sighting', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suspect_sighting_suspect_id'), ['suspect_id'], unique=False)

    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('uscc_check', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True))
        batch_op.add_column(sa.Column('registry_checked_at', models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('parent_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('merged_into_id', sa.Integer(), nullable=True))
    with op.batch_alter_table('customer_alias', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch_op.add_column(sa.Column('created_at', models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('updated_at', models.base.UTCDateTime(), nullable=True))
    with op.batch_alter_table('intent_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('suspect_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('order_date', sa.Date(), nullable=True))
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mobile', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))

    _backfill(op.get_bind())

    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.alter_column('name_key', existing_type=sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False)
        batch_op.create_index(batch_op.f('ix_customer_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_registry_checked_at'), ['registry_checked_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_updated_at'), ['updated_at'], unique=False)
        batch_op.create_unique_constraint('uq_customer_name_key', ['name_key'])
        batch_op.create_foreign_key('fk_customer_merged_into', 'customer', ['merged_into_id'], ['id'])
        batch_op.create_foreign_key('fk_customer_parent', 'customer', ['parent_id'], ['id'])
    with op.batch_alter_table('customer_alias', schema=None) as batch_op:
        for column in ('key', 'source'):
            batch_op.alter_column(column, existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=False)
        for column in ('created_at', 'updated_at'):
            batch_op.alter_column(column, existing_type=models.base.UTCDateTime(), nullable=False)
        batch_op.create_index(batch_op.f('ix_customer_alias_key'), ['key'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_alias_updated_at'), ['updated_at'], unique=False)
    with op.batch_alter_table('intent_order', schema=None) as batch_op:
        batch_op.alter_column('order_date', existing_type=sa.Date(), nullable=False)
        batch_op.create_index('ix_intent_order_customer_date', ['customer_id', 'order_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_intent_order_order_date'), ['order_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_intent_order_suspect_id'), ['suspect_id'], unique=False)
        batch_op.create_foreign_key('fk_intent_order_suspect', 'suspect_name', ['suspect_id'], ['id'])



def downgrade() -> None:
    op.drop_table('connector_cursor')
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_column('mobile')

    with op.batch_alter_table('intent_order', schema=None) as batch_op:
        batch_op.drop_constraint('fk_intent_order_suspect', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_intent_order_suspect_id'))
        batch_op.drop_index(batch_op.f('ix_intent_order_order_date'))
        batch_op.drop_index('ix_intent_order_customer_date')
        batch_op.drop_column('order_date')
        batch_op.drop_column('suspect_id')

    with op.batch_alter_table('customer_alias', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_alias_updated_at'))
        batch_op.drop_index(batch_op.f('ix_customer_alias_key'))
        batch_op.drop_column('updated_at')
        batch_op.drop_column('created_at')
        batch_op.drop_column('source')
        batch_op.drop_column('key')

    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_constraint('fk_customer_parent', type_='foreignkey')
        batch_op.drop_constraint('fk_customer_merged_into', type_='foreignkey')
        batch_op.drop_constraint('uq_customer_name_key', type_='unique')
        batch_op.drop_index(batch_op.f('ix_customer_updated_at'))
        batch_op.drop_index(batch_op.f('ix_customer_registry_checked_at'))
        batch_op.drop_index(batch_op.f('ix_customer_parent_id'))
        batch_op.drop_column('merged_into_id')
        batch_op.drop_column('parent_id')
        batch_op.drop_column('registry_checked_at')
        batch_op.drop_column('uscc_check')
        batch_op.drop_column('name_key')

    with op.batch_alter_table('suspect_sighting', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_suspect_sighting_suspect_id'))

    op.drop_table('suspect_sighting')
    with op.batch_alter_table('sales_return', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sales_return_returned_on'))
        batch_op.drop_index(batch_op.f('ix_sales_return_recorded_at'))
        batch_op.drop_index('ix_sales_return_order_line')

    op.drop_table('sales_return')
    with op.batch_alter_table('rebate_line', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rebate_line_run_id'))
        batch_op.drop_index('ix_rebate_line_rep_month')
        batch_op.drop_index('ix_rebate_line_region_month')
        batch_op.drop_index(batch_op.f('ix_rebate_line_order_id'))
        batch_op.drop_index('ix_rebate_line_customer_month')
        batch_op.drop_index('ix_rebate_line_bucket_order')

    op.drop_table('rebate_line')
    op.drop_table('order_rebate')
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_recorded_at'))
        batch_op.drop_index('ix_delivery_order_line')
        batch_op.drop_index(batch_op.f('ix_delivery_delivered_on'))

    op.drop_table('delivery')
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_invoice_no'))
        batch_op.drop_index(batch_op.f('ix_payment_customer_id'))

    op.drop_table('payment')
    with op.batch_alter_table('suspect_name', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_suspect_name_status'))
        batch_op.drop_index(batch_op.f('ix_suspect_name_deadline_at'))

    op.drop_table('suspect_name')
    with op.batch_alter_table('registry_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registry_change_detected_at'))
        batch_op.drop_index(batch_op.f('ix_registry_change_customer_id'))

    op.drop_table('registry_change')
    with op.batch_alter_table('receivable_invoice', schema=None) as batch_op:
        batch_op.drop_index('ix_receivable_customer_due')

    op.drop_table('receivable_invoice')
    with op.batch_alter_table('settlement_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settlement_run_month'))

    op.drop_table('settlement_run')
    with op.batch_alter_table('rebate_policy_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rebate_policy_version_code'))

    op.drop_table('rebate_policy_version')

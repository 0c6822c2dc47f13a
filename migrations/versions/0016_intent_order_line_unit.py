"""intent_order_line.unit: the unit each line was ordered in, kept like its price

The quote, the signing page and the delivery/return import read the line's own unit, not the
catalogue's current one: a product moved from 台 to 套 (or a consumable from 盒 to 箱) no
longer changes what signed orders say. Lines stored before this revision take their product's
unit as it is now, the unit their quotes were rendered in unless the catalogue changed since.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-28 16:30:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('intent_order_line') as batch:
        batch.add_column(sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=8),
                                   nullable=True))
    line = sa.table('intent_order_line', sa.column('sku'), sa.column('unit'))
    product = sa.table('product', sa.column('sku'), sa.column('unit'))
    op.execute(line.update().values(unit=sa.select(product.c.unit)
                                    .where(product.c.sku == line.c.sku).scalar_subquery()))
    with op.batch_alter_table('intent_order_line') as batch:
        batch.alter_column('unit', existing_type=sqlmodel.sql.sqltypes.AutoString(length=8),
                           nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('intent_order_line') as batch:
        batch.drop_column('unit')

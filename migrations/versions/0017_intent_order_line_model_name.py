"""intent_order_line.model and .name: the 型号 and 品名 each line was ordered under

The quote, the signing page and the invoice request to finance read the line's own model and
name, not the catalogue's current ones: a product renamed between the quote and the signature
(or the invoice) no longer makes the signing page and the invoice say something the signed
quote does not. Lines stored before this revision take their product's model and name as they
are now, the ones their quotes were rendered with unless the catalogue changed since.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-28 17:30:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

COLUMNS = (('model', 80), ('name', 120))


def upgrade() -> None:
    with op.batch_alter_table('intent_order_line') as batch:
        for column, length in COLUMNS:
            batch.add_column(sa.Column(column, sqlmodel.sql.sqltypes.AutoString(length=length),
                                       nullable=True))
    line = sa.table('intent_order_line', sa.column('sku'), sa.column('model'), sa.column('name'))
    product = sa.table('product', sa.column('sku'), sa.column('model'), sa.column('name'))
    op.execute(line.update().values({
        line.c[column]: sa.select(product.c[column]).where(product.c.sku == line.c.sku)
        .scalar_subquery() for column, _ in COLUMNS}))
    with op.batch_alter_table('intent_order_line') as batch:
        for column, length in COLUMNS:
            batch.alter_column(column,
                               existing_type=sqlmodel.sql.sqltypes.AutoString(length=length),
                               nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('intent_order_line') as batch:
        batch.drop_column('name')
        batch.drop_column('model')

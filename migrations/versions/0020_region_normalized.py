"""Regions normalized (models.staff.normalize_region): '华东大区', ' 华东 ' and full-width
forms are the one region '华东', as every input now stores it; no schema change. The
customers', staff's and rebate lines' regions are rewritten (a 华东 manager then sees the
customers imported as 华东大区, and their rebate lines); each customer and person changed is
logged (`update`, old → new, actor migration:0020). A rebate line keeps its figures: only the
name of the region it is booked to changes, which reads the same (华东大区) everywhere.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29 08:00:00
"""
import datetime as dt
import json

from alembic import op
import sqlalchemy as sa

from models.staff import normalize_region


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

ACTOR = 'migration:0020'
REGION_LENGTH = 20  # the regions' columns
oplog = sa.table('operation_log', sa.column('at', sa.DateTime()), sa.column('actor'),
                 sa.column('entity'), sa.column('entity_id'), sa.column('action'),
                 sa.column('changes'))
# table → logged as (None: a derived record, not logged)
_TABLES = (('customer', 'customer'), ('staff', 'staff'), ('rebate_line', None))


def upgrade() -> None:
    conn = op.get_bind()
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    for name, entity in _TABLES:
        table = sa.table(name, sa.column('id'), sa.column('region'))
        renamed = {old: normalize_region(old) for (old,) in conn.execute(
            sa.select(table.c.region).distinct().where(table.c.region.is_not(None)))}
        for old, new in renamed.items():
            if new == old or len(new) > REGION_LENGTH:  # NFKC may lengthen it: kept as was
                continue
            where = table.c.region == old
            if entity is not None:
                ids = [r[0] for r in conn.execute(sa.select(table.c.id).where(where))]
                changes = json.dumps({'region': [old, new]}, ensure_ascii=False)
                conn.execute(oplog.insert(), [
                    {'at': now, 'actor': ACTOR, 'entity': entity, 'entity_id': str(i),
                     'action': 'update', 'changes': changes} for i in ids])
            conn.execute(table.update().where(where).values(region=new))


def downgrade() -> None:
    # which regions were written with 大区 is not kept: the normalized ones stay (the code
    # before this revision reads them as it reads any region)
    pass

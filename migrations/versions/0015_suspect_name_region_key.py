"""suspect_name: names are keyed however their region is written (models.names.
region_folded_key: 江苏省康达医疗 = 江苏康达医疗 = 康达医疗（江苏）, 苏州市康达 = 苏州康达); no
schema change, the existing rows are re-keyed

Suspects collected apart before this revision that now share a key become one: its sightings
and orders together (the count is theirs), the first spelling seen as its name and its first
sighting's time, the most advanced status (a decision, else an overdue or escalated name with
its decider, deadline and to-do; the other open to-dos of the group are closed, naming the
suspect that goes on). The row kept is the group's newest (its id is never handed out again,
SQLite reuses only the highest); each merge is logged (`merge`, like a customer merge). Two
spellings decided for two different customers are not merged: the later decision keeps its own
key (its spellings are aliases of its customer already). Orders that waited on a name now
decided go on with the next hourly `customer-suspects` run (flows.suspects).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28 16:00:00
"""
import datetime as dt
import json

from alembic import op
import sqlalchemy as sa

from models.names import region_folded_key


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

ACTOR = 'migration:0015'
#: how far a suspect got: a decision beats a deadline missed beats a manager asked
_RANK = {'collecting': 0, 'escalated': 1, 'overdue': 2, 'created': 3, 'merged': 3}
_DECIDED = ('created', 'merged')

suspect = sa.table(
    'suspect_name', sa.column('id'), sa.column('key'), sa.column('display_name'),
    sa.column('status'), sa.column('sightings'), sa.column('first_seen_at', sa.DateTime()),
    sa.column('last_seen_at', sa.DateTime()), sa.column('last_rep_id'), sa.column('decider_id'),
    sa.column('escalated_at', sa.DateTime()), sa.column('deadline_at', sa.DateTime()),
    sa.column('todo_id'), sa.column('suggestions'), sa.column('decided_by'),
    sa.column('decided_at', sa.DateTime()), sa.column('customer_id'))
sighting = sa.table('suspect_sighting', sa.column('id'), sa.column('suspect_id'),
                    sa.column('order_id'))
order = sa.table('intent_order', sa.column('suspect_id'))
todo = sa.table('todo', sa.column('id'), sa.column('status'), sa.column('note'))
oplog = sa.table('operation_log', sa.column('at', sa.DateTime()), sa.column('actor'),
                 sa.column('entity'), sa.column('entity_id'), sa.column('action'),
                 sa.column('changes'))

# what the kept row takes from the suspect that got furthest
_ESCALATION = ('decider_id', 'escalated_at', 'deadline_at', 'todo_id')
_DECISION = ('decided_by', 'decided_at', 'customer_id')


def upgrade() -> None:
    conn = op.get_bind()
    rows = [dict(r._mapping) for r in conn.execute(
        sa.select(suspect).order_by(suspect.c.first_seen_at, suspect.c.id))]
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(region_folded_key(row['key']), []).append(row)
    for key, members in groups.items():
        members = _mergeable(members)
        if len(members) == 1:
            if members[0]['key'] != key:
                _update(conn, members[0], {'key': key})
            continue
        _merge(conn, key, members)


def _mergeable(members: list[dict]) -> list[dict]:
    """The members that may become one: not a decision for another customer than the first
    decision's (earliest first seen)."""
    decided = sorted((m for m in members if m['status'] in _DECIDED),
                     key=lambda m: (m['decided_at'] or dt.datetime.max, m['id']))
    if not decided:
        return members
    customer = decided[0]['customer_id']
    return [m for m in members if m['status'] not in _DECIDED or m['customer_id'] == customer]


def _merge(conn, key: str, members: list[dict]) -> None:
    first = members[0]                                      # the first spelling seen
    lead = max(members, key=lambda m: _RANK[m['status']])   # the earliest of the furthest
    kept = max(members, key=lambda m: m['id'])
    others = [m for m in members if m is not kept]
    other_ids = [m['id'] for m in others]
    # sightings and orders follow (an order seen under two of the spellings counts once)
    seen = set(conn.execute(sa.select(sighting.c.order_id).where(
        sighting.c.suspect_id == kept['id'])).scalars())
    for sid, order_id in conn.execute(sa.select(sighting.c.id, sighting.c.order_id).where(
            sighting.c.suspect_id.in_(other_ids)).order_by(sighting.c.id)).all():
        if order_id is not None and order_id in seen:
            conn.execute(sighting.delete().where(sighting.c.id == sid))
            continue
        seen.add(order_id)
        conn.execute(sighting.update().where(sighting.c.id == sid).values(suspect_id=kept['id']))
    conn.execute(order.update().where(order.c.suspect_id.in_(other_ids))
                 .values(suspect_id=kept['id']))
    count = conn.execute(sa.select(sa.func.count()).select_from(sighting).where(
        sighting.c.suspect_id == kept['id'])).scalar()
    latest = max(members, key=lambda m: (m['last_seen_at'], m['id']))
    values = {
        'display_name': first['display_name'], 'first_seen_at': first['first_seen_at'],
        'last_seen_at': latest['last_seen_at'], 'last_rep_id': latest['last_rep_id'],
        'status': lead['status'], 'sightings': count,
        **{f: lead[f] for f in _ESCALATION + _DECISION},
        'suggestions': next((m['suggestions'] for m in members if m['suggestions']), None),
    }
    # the other open to-dos of the group: the kept suspect's to-do (or decision) answers them
    for m in members:
        if m['todo_id'] and m['todo_id'] != lead['todo_id']:
            conn.execute(todo.update().where(todo.c.id == m['todo_id'], todo.c.status == 'open')
                         .values(status='done', note=(
                             f"与同名写法合并为疑似新客户“{first['display_name']}”"
                             f"（编号 {kept['id']}），请在其页面处理")[:500]))
    conn.execute(suspect.delete().where(suspect.c.id.in_(other_ids)))
    _update(conn, kept, {'key': key, **values})
    _log(conn, kept['id'], 'merge', {
        'survivor': kept['id'], 'merged': other_ids, 'key': key,
        'spellings': [m['display_name'] for m in members], 'sightings': count})
    for m in others:
        _log(conn, m['id'], 'merge', {'merged_into': [None, kept['id']], 'key': [m['key'], key]})


def _update(conn, row: dict, values: dict) -> None:
    diff = {k: [_plain(row[k]), _plain(v)] for k, v in values.items() if row[k] != v}
    if not diff:
        return
    conn.execute(suspect.update().where(suspect.c.id == row['id']).values(**values))
    _log(conn, row['id'], 'update', diff)


def _plain(value):
    return value.replace(tzinfo=dt.timezone.utc).isoformat() \
        if isinstance(value, dt.datetime) else value


def _log(conn, suspect_id: int, action: str, changes: dict) -> None:
    conn.execute(oplog.insert().values(
        at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), actor=ACTOR,
        entity='suspect_name', entity_id=str(suspect_id), action=action,
        changes=json.dumps(changes, ensure_ascii=False)))


def downgrade() -> None:
    """Keys go back to the plain normalised name where that is free (merged suspects stay
    one: their sightings cannot be told apart again)."""
    from models.names import normalize_name

    conn = op.get_bind()
    rows = conn.execute(sa.select(suspect.c.id, suspect.c.key, suspect.c.display_name)
                        .order_by(suspect.c.id)).all()
    taken = {key for _, key, _ in rows if '|' not in key}
    for sid, key, name in rows:
        plain = normalize_name(name)
        if '|' in key and plain not in taken:
            conn.execute(suspect.update().where(suspect.c.id == sid).values(key=plain))
            taken.add(plain)

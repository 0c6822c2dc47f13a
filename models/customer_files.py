"""Keeping one file per customer: exact lookups, new files, aliases, branches and merges.

Every function works inside the caller's session (one transaction per command) and writes
the operation log for each change.
"""
from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from sqlmodel import Session, select

from models.base import SHANGHAI, utcnow
from models.customers import (
    Customer, CustomerAlias, RegistryChange, SuspectName, SuspectStatus,
)
from models.locks import lock_customer_files, lock_customer_merge
from models.names import normalize_name, parse_normalized, region_folded_key
from models.oplog import apply_changes, record_create, record_delete
from models.staff import Staff
from models.uscc import check_uscc, clean_uscc
from models.work import OperationLog


class CustomerFileError(Exception):
    """A change that would break the one-customer-one-file rule (Chinese message)."""


# registry facts a file carries, as plain values (connectors map their records onto these)
REGISTRY_FIELDS = ("uscc", "status", "registered_capital", "legal_representative",
                   "established_on", "province", "city")

# registry statuses of a company that no longer trades (注销 deregistered, 吊销 revoked …)
DEAD_STATUSES = ("注销", "吊销", "撤销", "已注销", "已吊销")


def is_dead_status(status: str | None) -> bool:
    return bool(status) and any(word in status for word in DEAD_STATUSES)


# the end of a registry text cut to fit its column
CUT_MARK = "…"
# registry texts a file keeps as the registry writes them
REGISTRY_TEXTS = ("status", "registered_capital", "legal_representative", "province", "city")


def fit_registry_facts(facts: dict) -> tuple[dict, list[str]]:
    """The registry's facts as a file can keep them, and what had to give (for the log). A
    text longer than its column is cut, ending in CUT_MARK — the same cut every time, so the
    next read finds no change; a USCC or a former name longer than its column is left out (cut,
    it would be another company's). The registry's wording never stops a sync."""
    fitted, notes = dict(facts), []
    columns = Customer.__table__.c
    for field in REGISTRY_TEXTS:
        value, limit = fitted.get(field), columns[field].type.length
        if isinstance(value, str) and len(value) > limit:
            fitted[field] = value[:limit - len(CUT_MARK)] + CUT_MARK
            notes.append(f"{field} cut to the column's {limit} characters "
                         f"(the registry sent {len(value)}): {value!r}")
    uscc, limit = fitted.get("uscc"), columns["uscc"].type.length
    if isinstance(uscc, str) and len(uscc) > limit:
        fitted["uscc"] = None
        notes.append(f"uscc left out: {len(uscc)} characters, the column holds {limit}: {uscc!r}")
    limit = CustomerAlias.__table__.c["name"].type.length
    long_names = [n for n in fitted.get("former_names") or () if len(n) > limit]
    if long_names:
        fitted["former_names"] = tuple(n for n in fitted["former_names"] if len(n) <= limit)
        notes += [f"former name left out: {len(n)} characters, an alias holds {limit}: {n!r}"
                  for n in long_names]
    return fitted, notes


# a file's id and the file it was merged into: built once (an order preview asks every time)
_MERGED_INTO = select(Customer.id, Customer.merged_into_id).where(
    Customer.id == sa.bindparam("id"))


def active_id(session: Session, customer_id: int | None) -> int | None:
    """The id of the file a customer id stands for now: a merged file answers with its
    survivor's; None for no such file."""
    row = session.exec(_MERGED_INTO, params={"id": customer_id}).first() if customer_id else None
    seen = set()
    while row is not None and row.merged_into_id and row.id not in seen:
        seen.add(row.id)
        row = session.exec(_MERGED_INTO, params={"id": row.merged_into_id}).first()
    return row.id if row is not None else None


def active(session: Session, customer_id: int | None) -> Customer | None:
    """The file a customer id stands for now: a merged file answers with its survivor."""
    found = active_id(session, customer_id)
    return session.get(Customer, found) if found is not None else None


def active_for_writing(session: Session, customer_id: int | None) -> Customer | None:
    """`active`, read under the customer-files lock (shared, `models.locks`): for a transaction
    about to write rows that a merge moves to the surviving file (orders, opportunities,
    quotes, to-dos). No merge commits until the transaction ends, and one committed before is
    seen: the rows are written to the survivor, never left on a merged file."""
    lock_customer_files(session)
    return active(session, customer_id)


def held_elsewhere(session: Session, customer: Customer, names) -> dict[str, Customer]:
    """Each of `names` that another active file answers to (its legal name, an alias or its
    USCC), with that file: a name the registry gives `customer` that must not become its
    alias silently (the other file's own name would then match two files)."""
    out: dict[str, Customer] = {}
    for name in names:
        other = next((c for c in exact_matches(session, name) if c.id != customer.id), None)
        if other is not None:
            out[name] = other
    return out


def exact_matches(session: Session, name: str) -> list[Customer]:
    """Active customers whose legal name or an alias is `name`, spelling-insensitively
    (full/half width, spaces, case), or whose USCC it is (a valid code, as systems send it).
    Usually zero or one."""
    key = normalize_name(name)
    if not key:
        return []
    ids = set(session.exec(select(Customer.id).where(Customer.name_key == key)))
    ids |= set(session.exec(select(CustomerAlias.customer_id).where(CustomerAlias.key == key)))
    code = clean_uscc(name)
    if len(code) == 18 and check_uscc(code).ok:
        ids |= set(session.exec(select(Customer.id).where(Customer.uscc == code)))
    found: dict[int, Customer] = {}
    for cid in sorted(ids):
        customer = active(session, cid)
        if customer is not None:
            found[customer.id] = customer
    return list(found.values())


def uscc_flag(uscc: str | None) -> str | None:
    """"ok", the problem code of a malformed USCC (flagged, never refused), or None."""
    if not uscc:
        return None
    return check_uscc(uscc).problem


def add_alias(session: Session, customer: Customer, name: str, kind: str, source: str,
              actor: str) -> CustomerAlias | None:
    """Record another name of `customer`; nothing when it is already its legal name or alias."""
    name = name.strip()
    key = normalize_name(name)
    if not key or key == customer.name_key:
        return None
    if session.exec(select(CustomerAlias.id).where(CustomerAlias.customer_id == customer.id,
                                                   CustomerAlias.key == key)).first():
        return None
    alias = CustomerAlias(customer_id=customer.id, name=name, key=key, kind=kind, source=source)
    session.add(alias)
    record_create(session, alias, actor)
    return alias


def create_customer(session: Session, *, legal_name: str, actor: str, origin: str,
                    former_names: tuple[str, ...] = (), short_names: tuple[str, ...] = (),
                    registry_checked: bool = False, **fields) -> Customer:
    """Open a file. Refused when the legal name (spelling-insensitively) already has one."""
    legal_name = legal_name.strip()
    if session.exec(select(Customer.id).where(
            Customer.name_key == normalize_name(legal_name))).first():
        raise CustomerFileError(f"客户“{legal_name}”已建档，不能重复建档")
    customer = Customer(legal_name=legal_name, origin=origin, **fields)
    customer.uscc_check = uscc_flag(customer.uscc)
    if registry_checked:
        customer.registry_checked_at = utcnow()
    session.add(customer)
    record_create(session, customer, actor)
    for name in short_names:
        add_alias(session, customer, name, "short", origin, actor)
    for name in former_names:
        add_alias(session, customer, name, "former", "registry" if registry_checked else origin,
                  actor)
    if "parent_id" not in fields:
        _link_family(session, customer, actor)
    return customer


def _link_family(session: Session, customer: Customer, actor: str) -> None:
    """A new branch file goes under its head office when that has a file (its legal name or
    an alias, one file only); a new head office takes the branch files that waited for it."""
    key = normalize_name(customer.legal_name)
    parsed = parse_normalized(key)
    if parsed.is_branch:
        parents = [c for c in exact_matches(session, parsed.parent_name) if c.id != customer.id]
        if len(parents) == 1:
            link_branch(session, customer, parents[0], actor)
    waiting = session.exec(select(Customer).where(
        Customer.name_key.startswith(key, autoescape=True), Customer.id != customer.id,
        Customer.parent_id.is_(None), Customer.merged_into_id.is_(None))).all()
    for branch in waiting:
        if parse_normalized(branch.name_key).parent_name == key:
            link_branch(session, branch, customer, actor)


def apply_registry_facts(session: Session, customer: Customer, facts: dict, actor: str,
                         *, record_changes: bool) -> list[RegistryChange]:
    """Bring a file's registry facts up to date (`facts`: REGISTRY_FIELDS, legal_name,
    former_names). With `record_changes`, a watched field that changed (legal name, legal
    representative, status, registered capital) is kept as a RegistryChange; a new legal name
    keeps the old one as a former-name alias. Empty registry values never erase ours."""
    watched = ("legal_name", "legal_representative", "status", "registered_capital")
    changes: list[RegistryChange] = []
    updates = {f: facts[f] for f in REGISTRY_FIELDS if facts.get(f) not in (None, "")}
    new_name = (facts.get("legal_name") or "").strip()
    if new_name and normalize_name(new_name) != customer.name_key:
        # another file's legal name (its survivor's, if merged) or one of its aliases: renamed,
        # this file and that one would both answer to the name (orders typed with it would
        # stop as ambiguous); a merged file's own name stays its own (names are unique)
        holder = session.exec(select(Customer).where(
            Customer.name_key == normalize_name(new_name), Customer.id != customer.id)).first()
        others = sorted({c.id for c in exact_matches(session, new_name)} - {customer.id})
        if holder is not None and not others:
            survivor = active(session, holder.id)
            others = [survivor.id if survivor is not None else holder.id]
        if others:
            where = "、".join(str(i) for i in others)
            if others == [customer.id]:
                raise CustomerFileError(
                    f"工商登记名称已变更为“{new_name}”，但该名称是已并入本档案的客户档案 {holder.id} "
                    f"的工商全称，无法自动改名，请销售运营核实后处理")
            raise CustomerFileError(
                f"工商登记名称已变更为“{new_name}”，但该名称已属于客户档案 {where}：疑似重复档案，"
                f"请合并后再同步")
        updates["legal_name"] = new_name
    if record_changes:
        for field in watched:
            if field in updates and updates[field] != getattr(customer, field):
                old = getattr(customer, field)
                if old is None and field != "legal_name" \
                        and not (field == "status" and is_dead_status(updates[field])):
                    # first time we learn it: not a change — unless it says the company is
                    # gone (an imported file first read by the watch): that is the news
                    continue
                change = RegistryChange(customer_id=customer.id, field=field,
                                        old_value=str(old) if old is not None else None,
                                        new_value=str(updates[field]))
                session.add(change)
                changes.append(change)
    if "uscc" in updates:
        updates["uscc_check"] = uscc_flag(updates["uscc"])
    old_name = customer.legal_name
    apply_changes(session, customer, actor, **updates)
    # bookkeeping, not business data: not worth an operation-log row every day
    customer.registry_checked_at = utcnow()
    session.add(customer)
    session.flush()  # its name_key follows a new legal name: the old one becomes an alias
    former = [old_name] if "legal_name" in updates else []
    for name in former + list(facts.get("former_names") or ()):
        add_alias(session, customer, name, "former", "registry", actor)
    session.flush()
    return changes


def link_branch(session: Session, branch: Customer, parent: Customer, actor: str) -> None:
    if branch.id == parent.id:
        raise CustomerFileError("分支机构不能是自己的上级")
    apply_changes(session, branch, actor, parent_id=parent.id)


# tables whose rows follow a customer into the surviving file on a merge
_MOVED = ("intent_order", "quote", "opportunity", "todo", "suspect_name", "registry_change",
          "receivable_invoice", "payment", "rebate_line")


def merge_customers(session: Session, survivor_id: int, merged_id: int, actor: str) -> dict:
    """Merge file `merged_id` into `survivor_id`: its orders, quotes, to-dos, receivables and
    rebate lines move (a settled line stays booked to the merged file: its revision's
    statement and voucher were for it), its names become aliases of the survivor, its
    branches follow, and the merged file stays (with `merged_into_id`) for the audit trail. A branch is never merged
    into its parent or the parent into its branch; nothing is merged into a file merged
    earlier (the message names its survivor)."""
    lock_customer_merge(session)  # no settlement stored, nor invoices imported, meanwhile
    survivor, merged = active(session, survivor_id), session.get(Customer, merged_id)
    if survivor is None or merged is None:
        raise CustomerFileError(f"客户档案不存在：{survivor_id if survivor is None else merged_id}")
    if merged.merged_into_id:  # named by its survivor now (a chain: A into B, B into C)
        now = active_id(session, merged.id)
        raise CustomerFileError(f"客户档案 {merged_id} 已于此前合并入客户 {now}" + (
            "，无需再合并" if now == survivor_id else ""))
    if survivor.id != survivor_id:  # as `customers set` refuses a merged file: named
        raise CustomerFileError(
            f"客户 {survivor_id} 已并入客户 {survivor.id}，" + (
                f"不能再把客户 {merged.id} 并入客户 {survivor_id}" if survivor.id == merged.id
                else f"请合并到客户 {survivor.id}"))
    if survivor.id == merged.id:
        raise CustomerFileError("不能把客户档案合并到它自己")
    if survivor.parent_id == merged.id or merged.parent_id == survivor.id:
        raise CustomerFileError("分支机构与其总公司是两个客户，不能合并（分支机构保持独立档案并关联总公司）")
    moved: dict[str, int] = {}
    for table in _MOVED:
        t = sa.table(table, sa.column("customer_id"))
        moved[table] = session.exec(sa.update(t).where(t.c.customer_id == merged.id)
                                    .values(customer_id=survivor.id)).rowcount
    # rebate lines are grouped by customer: re-key the moved ones so later settlements see
    # what was already paid — each keeping what its bucket was computed from. The customer
    # each was booked to (booked_customer_id: its revision's statement and voucher) stays
    _rekey_rebate_lines(session, merged.id, survivor.id)
    # each branch moved as any change of a file is (logged, `updated_at`: the name index
    # re-reads it and suggests it under its new head office)
    moved_branches = session.exec(select(Customer).where(Customer.parent_id == merged.id)).all()
    for branch in moved_branches:
        apply_changes(session, branch, actor, parent_id=survivor.id)
    branches = len(moved_branches)
    names = 0
    # the merged file's names move with what they were (kind, where they came from, since
    # when); one the survivor already answers to goes (logged)
    for alias in session.exec(select(CustomerAlias).where(
            CustomerAlias.customer_id == merged.id)).all():
        if alias.key == survivor.name_key or session.exec(select(CustomerAlias.id).where(
                CustomerAlias.customer_id == survivor.id, CustomerAlias.key == alias.key)).first():
            record_delete(session, alias, actor)
            session.delete(alias)
        else:
            apply_changes(session, alias, actor, customer_id=survivor.id)
            names += 1
        session.flush()
    names += bool(add_alias(session, survivor, merged.legal_name, "merged", "merge", actor))
    for field in ("uscc", "legal_representative", "registered_capital", "status",
                  "established_on", "province", "city", "region", "owner_rep_id",
                  "contact_email", "finance_code"):
        if getattr(survivor, field) in (None, "") and getattr(merged, field) not in (None, ""):
            value = getattr(merged, field)
            extra = {"uscc_check": uscc_flag(value)} if field == "uscc" else {}
            apply_changes(session, survivor, actor, **{field: value}, **extra)
    # one company, one verdict: legal's stricter one stays (a rejection is not lifted by a
    # merge; a review still open is the survivor's now, its to-do moved with the others)
    apply_changes(session, survivor, actor,
                  qualification=stricter_verdict(survivor.qualification, merged.qualification))
    apply_changes(session, merged, actor, merged_into_id=survivor.id)
    summary = {"survivor": survivor.id, "merged": merged.id, "names": names,
               "branches": branches, **{k: v for k, v in moved.items() if v}}
    session.add(OperationLog(actor=actor, entity="customer", entity_id=str(merged.id),
                             action="merge", changes=json.dumps(
                                 {"merged_into_id": [None, survivor.id], "moved": summary},
                                 ensure_ascii=False)))
    session.flush()
    return summary


# legal's verdicts on a file (Customer.qualification), the least strict first
_STRICTNESS = {"approved": 0, "pending_review": 1, "rejected": 2}


def stricter_verdict(kept: str | None, other: str | None) -> str | None:
    """Of legal's verdicts on two files of one company, the one the company keeps: the
    stricter (a rejection is not lifted by a merge)."""
    return other if _STRICTNESS.get(other, 0) > _STRICTNESS.get(kept, 0) else kept


def _bucket_customer(key: str) -> str:
    """The customer field of a bucket key (policy|rule|customer|period)."""
    parts = key.split("|")
    return parts[2] if len(parts) == 4 else ""


def _rekey_rebate_lines(session: Session, merged_id: int, survivor_id: int) -> None:
    """The moved rebate lines (already under the survivor) get the survivor's bucket keys,
    so later settlements see what was already paid. Only a key's customer field changes (a
    rule id may be a number too: "2" is no customer). Each line first takes its bucket's
    shared inputs (volume, tier reached …), which are stored by bucket key: under the new key
    it would find none, or the survivor's own bucket of that period. Its own inputs go on top,
    as settlement.line_inputs puts them together; JSON objects joined as text, so the numbers
    stay as written."""
    pattern = f"%|{merged_id}|%"
    lines = [row for row in session.exec(sa.text(
        "SELECT id, run_id, bucket_key, policy_version, inputs FROM rebate_line "
        "WHERE customer_id = :survivor AND bucket_key LIKE :pattern"),
        params={"survivor": survivor_id, "pattern": pattern}).all()
        if _bucket_customer(row[2]) == str(merged_id)]
    if not lines:
        return
    shared = {(run, key, version): text for run, key, version, text in session.exec(sa.text(
        "SELECT run_id, bucket_key, policy_version, inputs FROM rebate_bucket_inputs "
        "WHERE bucket_key LIKE :pattern"), params={"pattern": pattern})
        if _bucket_customer(key) == str(merged_id)}
    updates = []
    for line_id, run, key, version, own in lines:
        code, rule, _, period = key.split("|")
        inputs = own
        bucket = (shared.get((run, key, version)) or "").strip()[1:-1].strip()
        if bucket:
            mine = (own or "{}").strip()[1:-1].strip()
            inputs = "{" + bucket + (", " + mine if mine else "") + "}"
        updates.append({"id": line_id, "inputs": inputs,
                        "key": f"{code}|{rule}|{survivor_id}|{period}"})
    session.connection().execute(
        sa.text("UPDATE rebate_line SET inputs = :inputs, bucket_key = :key WHERE id = :id"),
        updates)


def suspect_key(name: str) -> str:
    """The key a name nobody recognises is collected under: its spellings and the ways of
    writing its region (江苏省康达医疗, 江苏康达医疗, 康达医疗（江苏）) are one suspect."""
    return region_folded_key(normalize_name(name))


def suspect_merged_into(session: Session, suspect_id: int) -> int | None:
    """The suspect a suspect that is no more was merged into (migration 0015 made the
    spellings of one name one suspect), as its merge was logged; None when there is none.
    The links mailed and pushed for it lead there."""
    if session.get(SuspectName, suspect_id) is not None:
        return None
    logged = session.exec(select(OperationLog.changes).where(
        OperationLog.entity == SuspectName.__tablename__,
        OperationLog.entity_id == str(suspect_id), OperationLog.action == "merge")
        .order_by(OperationLog.id.desc())).first()
    into = (json.loads(logged).get("merged_into") or [None, None])[1] if logged else None
    return into if into and session.get(SuspectName, into) is not None else None


def is_overdue(suspect: SuspectName, now: dt.datetime) -> bool:
    return suspect.status == SuspectStatus.overdue or (
        suspect.status == SuspectStatus.escalated and suspect.deadline_at is not None
        and suspect.deadline_at < now)


def overdue_refusal(session: Session, name: str) -> str | None:
    """The Chinese refusal for a submission carrying an overdue suspect name, else None.
    Read by the webhook on every order that carries a name, so: one indexed lookup (and, for
    an overdue name only, the exact lookups that tell whether it has a file by now)."""
    suspect = session.exec(select(SuspectName).where(
        SuspectName.key == suspect_key(name))).first()
    if suspect is None or not is_overdue(suspect, utcnow()):
        return None
    if len(exact_matches(session, name)) == 1:
        # the name got its file meanwhile (an import, a merge): nothing to wait for (a name
        # of two files still waits for the manager to say which)
        return None
    decider = session.get(Staff, suspect.decider_id) if suspect.decider_id else None
    who = f"{decider.name}（{decider.email}）" if decider else "销售运营"
    due = suspect.deadline_at.astimezone(SHANGHAI)
    return (f"客户名称“{name}”未能识别，已于 {suspect.escalated_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M} "
            f"提交 {who} 确认，截止 {due:%Y-%m-%d %H:%M} 仍未决定。在其新建客户档案或将该名称并入"
            f"已有客户之前，含此客户名称的意向单一律拒收，请联系 {who} 处理。")

"""The registry (工商信息) side of customer files: identifying a company exactly, opening a
standard file for a new one with its legal qualification review, and keeping facts fresh —
every change of name, legal representative, status or capital is kept and alerted."""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from sqlmodel import Session, select

from connectors.base import PermanentError
from connectors.registry import RegistryRecord, error_label, lookup_key
from flows.batch import BusinessRefusal
from flows.hub import Hub
from flows.notices import (
    assignee, assignee_or_fallback, manager_of, notify_todo, open_todo, staff,
)
from models import Customer, IntentOrder, Todo, utcnow
from models.base import SHANGHAI
from models.customer_files import (
    CustomerFileError, active, active_for_writing, apply_registry_facts, exact_matches,
    fit_registry_facts, held_elsewhere, is_dead_status,
)
from models.db import session_scope
from models.names import normalize_name, parse_company_name
from models.uscc import looks_like_uscc

ACTOR = "flow:intent-order"
log = logging.getLogger("salesops.flows")

FIELD_LABELS = {"legal_name": "企业名称", "legal_representative": "法定代表人",
                "status": "登记状态", "registered_capital": "注册资本"}


PROVIDER_LABELS = {"tianyancha": "天眼查", "embedded-registry": "本地工商数据集"}


def registry_lookup(hub: Hub, keyword: str) -> RegistryRecord | None:
    """The registry's answer for an order. A refusal (account, balance, configuration, a
    broken dataset) is not the order's fault and no retry mends it: the order stops with a
    reason its people read (the provider's detail goes to the log)."""
    try:
        return hub.registry.lookup(keyword)
    except PermanentError as exc:
        log.error("registry refused a lookup: %s", exc)
        provider = PROVIDER_LABELS.get(exc.provider, exc.provider or "工商信息接口")
        label = error_label(exc.code) if exc.provider == "tianyancha" else None
        said = f"返回“{label}”（错误码 {exc.code}）" if label else (
            f"拒绝了查询（错误码 {exc.code}）" if exc.code else "拒绝了查询")
        raise BusinessRefusal(f"工商信息查询失败：{provider}{said}。这不是意向单本身的问题，"
                              "请联系销售运营检查工商信息接口的账号与配置，处理后重新运行该意向单") from exc


def registry_facts(record: RegistryRecord) -> dict:
    """A registry record as the facts a customer file keeps, each fitting its column (what
    did not fit is logged)."""
    facts = dataclasses.asdict(record)
    facts["former_names"] = tuple(record.former_names)
    facts, cut = fit_registry_facts(facts)
    for note in cut:
        log.warning("registry record %s does not fit the customer file: %s",
                    record.legal_name, note)
    return facts


def new_file_facts(s: Session, record: RegistryRecord) -> dict:
    """`registry_facts` for a new file of a company that has none (`files_of`): a former name
    another file answers to is another company's now (it registered the name since), and is
    not made this file's alias too (the name would then answer to two files)."""
    facts = registry_facts(record)
    facts["former_names"] = tuple(n for n in facts["former_names"] if not exact_matches(s, n))
    return facts


def identifies(record: RegistryRecord | None, typed: str) -> bool:
    """Whether a registry answer is *this* company, not a fuzzy guess of the registry's search."""
    if record is None:
        return False
    key = normalize_name(typed)
    names = {normalize_name(record.legal_name), *(normalize_name(n) for n in record.former_names)}
    return key in names or bool(record.uscc and lookup_key(typed) == lookup_key(record.uscc))


def files_of(s: Session, record: RegistryRecord) -> list[Customer]:
    """Active files of a registry company: its legal name or an alias on file, else its USCC,
    else one of its former names (a file still under a former name, not yet refreshed, is the
    same company: the next refresh renames it and keeps the old name as an alias) — not a
    file whose valid USCC is another one: another company registered the name since."""
    known = exact_matches(s, record.legal_name)
    if not known and record.uscc:
        known = list(s.exec(select(Customer).where(Customer.uscc == record.uscc,
                                                   Customer.merged_into_id.is_(None))))
    for name in record.former_names if not known else ():  # a file kept without its USCC
        known += [c for c in exact_matches(s, name) if c not in known
                  and not (record.uscc and c.uscc and c.uscc_check == "ok"
                           and lookup_key(c.uscc) != lookup_key(record.uscc))]
    return known


def looks_registered(typed: str) -> bool:
    """A full legal name (with an organisation form) or a USCC: worth asking the registry."""
    return bool(parse_company_name(typed).org_form) or looks_like_uscc(lookup_key(typed))


def open_legal_review(hub: Hub, s: Session, customer: Customer, *, order: IntentOrder | None,
                      typed: str, actor: str = ACTOR, round_no: int = 1) -> Todo:
    """The legal qualification review (法务资质初审) of a new standard file; `round_no` > 1:
    a review again (资质复审), asked for by legal (`flows.todos.review_qualification`).
    A BusinessRefusal naming SALESOPS_LEGAL_ASSIGNEE when it names nobody on file."""
    legal = assignee(s, hub.settings, "legal_assignee")
    found = (f"工商登记：{customer.legal_name}，统一社会信用代码 {customer.uscc or '未知'}"
             f"{'（校验未通过，请核实）' if customer.uscc_check not in (None, 'ok') else ''}，"
             f"登记状态 {customer.status or '未知'}，法定代表人 {customer.legal_representative or '未知'}，"
             f"注册资本 {customer.registered_capital or '未知'}。"
             if customer.registry_checked_at else "工商信息未查到，请核实客户名称与资质。")
    rep_id = order.rep_id if order else customer.owner_rep_id
    rep, mgr = staff(s, rep_id), manager_of(s, rep_id)
    origin = (f"销售 {rep.name if rep else rep_id or '未知'} 提交的意向单 {order.id} 涉及新客户“{typed}”"
              if order else f"新客户“{typed}”")
    return open_todo(
        s, actor=actor, kind="legal_review",
        key=f"customer:{customer.id}" + (f":r{round_no}" if round_no > 1 else ""),
        title=(f"新客户资质初审：{customer.legal_name}" if round_no == 1
               else f"客户资质复审（第 {round_no} 次）：{customer.legal_name}"),
        body=(f"{origin}，已按标准模板建档（客户编号 {customer.id}）。\n{found}\n"
              f"请在截止前完成资质初审。"),
        assignee_id=legal, due_hours=hub.settings.todo_due_hours,
        cc=[mgr.id] if mgr else [], order_id=order.id if order else None,
        customer_id=customer.id)


def registry_keyword(customer: Customer) -> str:
    """What to ask the registry for a file: its USCC when that passed the check, else its
    legal name (a mistyped code would find nobody, or somebody else)."""
    return customer.uscc if customer.uscc and customer.uscc_check == "ok" else customer.legal_name


def ensure_registry_fresh(hub: Hub, customer_id: int) -> None:
    """Every order looks at the registry: a file not checked for `registry_max_age_days` is
    refreshed (changes alerted), and a deregistered or revoked company stops the order."""
    with session_scope(hub.db_url) as s:
        customer = s.get(Customer, customer_id)
        checked = customer.registry_checked_at
        keyword = registry_keyword(customer)
    max_age = dt.timedelta(days=hub.settings.registry_max_age_days)
    if checked is None or utcnow() - checked > max_age:
        refresh_from_registry(hub, customer_id, registry_lookup(hub, keyword), ACTOR)
    refuse_if_dead(hub, customer_id)


def same_company(record: RegistryRecord | None, customer: Customer) -> bool:
    """Whether the registry's answer is about this file's company (the USCC, or the legal name
    now or formerly), so that a fuzzy search hit never overwrites our facts. Our USCC decides
    only when it passed the check: a code mistyped at import is corrected by the registry
    instead of hiding the company from every refresh."""
    if record is None:
        return False
    if record.uscc and customer.uscc and customer.uscc_check == "ok":
        return lookup_key(record.uscc) == lookup_key(customer.uscc)
    return identifies(record, customer.legal_name)


def refuse_if_dead(hub: Hub, customer_id: int) -> None:
    """No quote for a company that no longer trades, nor for a customer whose qualification
    review legal did not pass (until legal passes it: `flows.todos.review_qualification`)."""
    with session_scope(hub.db_url) as s:
        customer = active(s, customer_id)  # a file merged away meanwhile: its survivor's say
        if is_dead_status(customer.status):
            raise BusinessRefusal(f"客户“{customer.legal_name}”工商登记状态为“{customer.status}”，"
                                  f"不能继续报价，请核实客户资质")
        if customer.qualification == "rejected":
            review = s.exec(select(Todo).where(
                Todo.kind == "legal_review", Todo.customer_id == customer.id,
                Todo.outcome == "rejected").order_by(Todo.id.desc())).first()
            why = f"（{review.note}）" if review and review.note else ""
            raise BusinessRefusal(f"客户“{customer.legal_name}”资质初审未通过{why}，不能继续报价；"
                                  "资质补齐后请联系法务重新审核")


def refresh_from_registry(hub: Hub, customer_id: int, record: RegistryRecord | None,
                          actor: str) -> list[int]:
    """Apply what the registry says now; alert the owning rep and the risk role about changes
    (old → new, kept as RegistryChange rows and in the operation log). Returns the ids of the
    changes found. A file merged away meanwhile: about its survivor (the changes and their
    to-dos go where the merge moved the file's)."""
    todo_ids, change_ids = [], []
    with session_scope(hub.db_url) as s:
        customer = active_for_writing(s, customer_id)  # no merge until the changes are written
        cc = [customer.owner_rep_id] if customer.owner_rep_id else []

        def alert(key: str, title: str, body: str) -> int | None:
            """A to-do for the risk role (the owning rep in copy): SALESOPS_RISK_ASSIGNEE
            naming nobody on file, for `fallback_person`, told which setting to correct.
            None when nobody on file can get it (logged: the facts are kept all the same)."""
            risk, note = assignee_or_fallback(s, hub.settings, "risk_assignee")
            if risk is None:
                log.error("registry alert %s has nobody on file to go to: %s", key, title)
                return None
            todo = open_todo(s, actor=actor, kind="registry_change", key=key, title=title,
                             body=body + note, assignee_id=risk, cc=cc,
                             due_hours=hub.settings.todo_due_hours, customer_id=customer.id)
            todo_ids.append(todo.id)
            return todo.id

        changes = []
        about_it = same_company(record, customer)
        if about_it:
            facts = registry_facts(record)
            # a former name another file answers to is not made this one's alias: reported
            taken = held_elsewhere(s, customer, facts.get("former_names") or ())
            facts["former_names"] = [n for n in facts.get("former_names") or ()
                                     if n not in taken]
            for name, other in taken.items():
                alert(f"customer:{customer.id}:former-name-clash:{normalize_name(name)}",
                      f"疑似重复客户档案：{customer.legal_name}",
                      f"工商登记显示客户“{customer.legal_name}”（客户编号 {customer.id}）的曾用名"
                      f"“{name}”是另一客户档案“{other.legal_name}”（客户编号 {other.id}）的名称："
                      "可能是同一公司的重复档案，也可能该名称后来由另一家公司使用。系统未将其记为本"
                      "客户的曾用名；请核实，如为同一公司请合并两个档案。")
            try:
                changes = apply_registry_facts(s, customer, facts, actor, record_changes=True)
            except CustomerFileError as exc:
                # the registry's new name is another file's name: two files, one company
                alert(f"customer:{customer.id}:name-clash:{normalize_name(record.legal_name)}",
                      f"疑似重复客户档案：{customer.legal_name}", str(exc))
                # the name waits for the merge; a revocation or a new legal representative
                # must not wait with it
                changes = apply_registry_facts(s, customer, {**facts, "legal_name": None},
                                               actor, record_changes=True)
        if not changes:
            # bookkeeping (no operation-log row); a survivor the registry was asked about by
            # the name of a file merged into it meanwhile was not read
            if about_it or customer.id == customer_id:
                customer.registry_checked_at = utcnow()
                s.add(customer)
        else:
            lines = [f"{FIELD_LABELS[c.field]}：{c.old_value or '（空）'} → {c.new_value}"
                     for c in changes]
            when = changes[0].detected_at.astimezone(SHANGHAI)
            s.flush()  # the changes' ids: one alert per read that found changes
            todo_id = alert(
                f"customer:{customer.id}:change:{changes[0].id}",
                f"客户工商信息变更：{customer.legal_name}",
                f"客户“{customer.legal_name}”（客户编号 {customer.id}）的工商登记信息发生变更"
                f"（{when:%Y-%m-%d} 核查发现）：\n" + "\n".join(f"- {x}" for x in lines)
                + "\n请核实对在途订单、授信与合同的影响。")
            for change in changes:
                change.todo_id = todo_id
                s.add(change)
            change_ids = [c.id for c in changes]
    for todo_id in todo_ids:
        notify_todo(hub, todo_id)
    return change_ids

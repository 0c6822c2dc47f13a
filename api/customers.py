"""Customer master data doors: the suggest-only customer field, customer files, and the
decisions on suspected new customers."""
from __future__ import annotations

import json
import logging
import re

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import select

from api.auth import current_staff
from api.errors import MAX_ID, ApiError
from api.pages import (
    STAFF_HEADERS, cross_site, refused_cross_site, staff_for_page, staff_message, staff_page,
    wants_html,
)
from api.staff_pages import decision_result, suspect_page
from connectors.base import PermanentError, TransientError
from flows.customer_index import customer_index
from flows.errors import Refusal
from flows.hub import current_hub
from flows.suspects import ACTOR as SUSPECTS_ACTOR
from flows.suspects import (
    DECIDED_BY_FILE, STATUS_LABELS, choose_customer_for_order, decide_create, decide_merge,
    may_decide,
)
from models import (
    Customer, CustomerAlias, IntentOrder, Staff, SuspectName, SuspectSighting, SuspectStatus,
    utcnow,
)
from models.base import SHANGHAI
from models.customer_files import suspect_merged_into
from models.db import session_scope
from models.name_input import check_customer_name

router = APIRouter(tags=["customers"])
log = logging.getLogger("salesops.api")


def _index(request: Request):
    st = request.app.state.settings
    return customer_index(st.db_url, st.customer_index_refresh_seconds)


def suggestions(request: Request, q: str, limit: int) -> dict:
    index = _index(request)
    result = index.find(q, limit=limit)
    files = index.files
    out = []
    for c in result.candidates[:limit]:
        parent_id = files.get(c.customer_id, (None, None))[1]
        out.append({"customer_id": c.customer_id, "legal_name": c.legal_name,
                    "matched_alias": c.matched_alias, "matched_kind": c.matched_kind,
                    "score": round(c.score, 1), "reasons": list(c.reasons),
                    "parent": ({"customer_id": parent_id, "legal_name": files[parent_id][0]}
                               if parent_id in files else None)})
    return {"query": q, "decision": result.decision, "candidates": out}


@router.get("/customers/suggest", summary="客户名称联想（表单只接受客户编号）")
async def suggest_customers(request: Request, q: str = Query("", max_length=1000),
                            limit: int = Query(5, ge=1, le=20),
                            _: Staff = Depends(current_staff)):
    """Every form's customer field: type a few characters, pick one of these, send its
    `customer_id`. `decision` says whether the best one is certain (`auto`)."""
    problem = check_customer_name(q, what="查询内容")
    if problem:
        raise ApiError(422, "invalid_query", problem.message,
                       [{"field": "q", "problem": problem.code}])
    return await run_in_threadpool(suggestions, request, q.strip(), limit)


def customer_view(db_url: str, customer_id: int) -> dict | None:
    with session_scope(db_url) as s:
        c = s.get(Customer, customer_id)
        if c is None:
            return None
        aliases = s.exec(select(CustomerAlias).where(CustomerAlias.customer_id == c.id)
                         .order_by(CustomerAlias.id)).all()
        parent = s.get(Customer, c.parent_id) if c.parent_id else None
        branches = s.exec(select(Customer).where(Customer.parent_id == c.id,
                                                 Customer.merged_into_id.is_(None))
                          .order_by(Customer.id)).all()
        return {
            "customer_id": c.id, "legal_name": c.legal_name, "merged_into": c.merged_into_id,
            "uscc": c.uscc, "uscc_check": c.uscc_check, "status": c.status,
            "registered_capital": c.registered_capital,
            "legal_representative": c.legal_representative,
            "established_on": c.established_on.isoformat() if c.established_on else None,
            "registry_checked_at": c.registry_checked_at.isoformat()
            if c.registry_checked_at else None,
            "tier": c.tier, "region": c.region, "province": c.province, "city": c.city,
            "owner_rep_id": c.owner_rep_id, "qualification": c.qualification, "origin": c.origin,
            "parent": {"customer_id": parent.id, "legal_name": parent.legal_name}
            if parent else None,
            "branches": [{"customer_id": b.id, "legal_name": b.legal_name} for b in branches],
            "aliases": [{"name": a.name, "kind": a.kind, "source": a.source} for a in aliases],
        }


def suspect_view(s, suspect: SuspectName, only_rep: str | None = None) -> dict:
    """A suspect as JSON; with `only_rep`, the orders listed are that rep's own (a rep sees
    his sightings of a name, not his colleagues' orders)."""
    query = select(SuspectSighting).where(SuspectSighting.suspect_id == suspect.id)
    if only_rep is not None:
        query = query.where(SuspectSighting.rep_id == only_rep)
    sightings = s.exec(query.order_by(SuspectSighting.id)).all()

    def local(at):
        return at.astimezone(SHANGHAI).isoformat() if at else None
    return {"suspect_id": suspect.id, "name": suspect.display_name, "status": suspect.status,
            "status_label": STATUS_LABELS[suspect.status], "sightings": suspect.sightings,
            "decider": suspect.decider_id, "deadline_at": local(suspect.deadline_at),
            "decided_by": suspect.decided_by, "customer_id": suspect.customer_id,
            "suggestions": json.loads(suspect.suggestions or "[]"),
            # how the name was written (江苏省康达医疗, 康达医疗（江苏） … are one suspect)
            "spellings": list(dict.fromkeys(
                [suspect.display_name, *(x.typed_name.strip() for x in sightings)])),
            "orders": [{"order_id": x.order_id, "typed_name": x.typed_name, "rep_id": x.rep_id,
                        "seen_at": local(x.seen_at)} for x in sightings]}


def sees_every_sighting(person: Staff, suspect: SuspectName, s) -> bool:
    """Sales-ops, admins and whoever may decide see every order that carried the name."""
    return person.role in ("admin", "sales_ops") or may_decide(person, suspect, s)


def list_suspects(db_url: str, person: Staff, include_closed: bool) -> list[dict]:
    with session_scope(db_url) as s:
        query = select(SuspectName).order_by(SuspectName.id)
        if not include_closed:
            query = query.where(SuspectName.status.in_(SuspectStatus.OPEN))
        # the names this person's own orders carried (he may open those: may_view_suspect)
        own = set(s.exec(select(SuspectSighting.suspect_id).where(
            SuspectSighting.rep_id == person.id)))
        out = []
        for x in s.exec(query).all():
            if sees_every_sighting(person, x, s):
                out.append(suspect_view(s, x))
            elif x.id in own or person.id == x.last_rep_id:
                out.append(suspect_view(s, x, only_rep=person.id))
        return out


@router.get("/customers/suspects", summary="疑似新客户列表")
async def get_suspects(request: Request, all: bool = False,  # noqa: A002 - query name
                       person: Staff = Depends(current_staff)):
    return await run_in_threadpool(list_suspects, request.app.state.settings.db_url, person, all)


class CreateDecision(BaseModel):
    legal_name: str | None = Field(default=None, max_length=1000,
                                   description="工商全称；不填则按疑似名称查询工商信息")


class MergeDecision(BaseModel):
    customer_id: int = Field(gt=0, le=MAX_ID)


class OrderCustomer(BaseModel):
    customer_id: int = Field(gt=0, le=MAX_ID)


async def run_decision(request: Request, fn, *args):
    """A decision from the JSON API or a page's form; its refusals come back as ApiError, so
    the page can show them."""
    try:
        result = await run_in_threadpool(fn, current_hub(), *args)
    except Refusal as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    except TransientError as exc:
        raise ApiError(503, "registry_unavailable", "工商信息查询暂不可用，请稍后重试") from exc
    except PermanentError as exc:  # e.g. the registry refused our account: not the caller's fault
        log.error("registry refused a lookup for a decision: %s", exc)
        raise ApiError(503, "registry_failed",
                       "工商信息查询失败（接口配置或账号问题），请联系销售运营处理") from exc
    request.app.state.dispatcher.poke()  # released orders go on now
    return result


@router.post("/customers/suspects/{suspect_id}/create", summary="疑似新客户：新建客户档案")
async def create_from_suspect(body: CreateDecision, request: Request,
                              suspect_id: int = Path(le=MAX_ID),
                              person: Staff = Depends(current_staff)):
    if body.legal_name is not None:
        problem = check_customer_name(body.legal_name, what="工商全称")
        if problem:
            raise ApiError(422, "invalid_field", problem.message,
                           [{"field": "legal_name", "problem": problem.code}])
    return await run_decision(request, decide_create, suspect_id, person, body.legal_name)


@router.post("/customers/suspects/{suspect_id}/merge", summary="疑似新客户：并入已有客户")
async def merge_suspect(body: MergeDecision, request: Request,
                        suspect_id: int = Path(le=MAX_ID),
                        person: Staff = Depends(current_staff)):
    return await run_decision(request, decide_merge, suspect_id, person, body.customer_id)


@router.post("/orders/{order_id}/customer", tags=["orders"],
             summary="为待确认客户的意向单选择客户")
async def choose_order_customer(order_id: str, body: OrderCustomer, request: Request,
                                person: Staff = Depends(current_staff)):
    return await run_decision(request, choose_customer_for_order, order_id, person,
                           body.customer_id)


# --- one suspect: JSON for programs, a page for the manager's phone -----------------------

def may_view_suspect(person: Staff, suspect: SuspectName, s) -> bool:
    """Who sees a suspect: whoever sees it in the list, and every rep whose order carried it."""
    if person.role in ("admin", "sales_ops") or person.id == suspect.last_rep_id \
            or may_decide(person, suspect, s):
        return True
    return s.exec(select(SuspectSighting.id).where(SuspectSighting.suspect_id == suspect.id,
                                                   SuspectSighting.rep_id == person.id)
                  ).first() is not None


def suspect_detail(db_url: str, suspect_id: int, person: Staff) -> dict:
    with session_scope(db_url) as s:
        suspect = s.get(SuspectName, suspect_id)
        if suspect is None:
            raise ApiError(404, "unknown_suspect", f"疑似新客户记录不存在：{suspect_id}")
        if not may_view_suspect(person, suspect, s):
            raise ApiError(403, "forbidden", "该疑似新客户与您无关，无权查看")
        return suspect_view(s, suspect, None if sees_every_sighting(person, suspect, s)
                            else person.id)


def suspect_page_data(db_url: str, suspect_id: int, person: Staff) -> dict | None:
    """What the suspect page shows `person`; None when there is no such suspect."""
    with session_scope(db_url) as s:
        suspect = s.get(SuspectName, suspect_id)
        if suspect is None:
            return None
        only_rep = None if sees_every_sighting(person, suspect, s) else person.id
        query = select(SuspectSighting, IntentOrder.status).outerjoin(
            IntentOrder, IntentOrder.id == SuspectSighting.order_id).where(
            SuspectSighting.suspect_id == suspect.id)
        if only_rep is not None:  # a rep: his own orders, not his colleagues'
            query = query.where(SuspectSighting.rep_id == only_rep)
        rows = s.exec(query.order_by(SuspectSighting.id)).all()
        orders = [{"order_id": x.order_id, "typed_name": x.typed_name, "rep_id": x.rep_id,
                   "seen_at": x.seen_at, "status": status} for x, status in rows]
        people = {suspect.decider_id, suspect.decided_by, *(o["rep_id"] for o in orders)}
        names = {p.id: p.name for p in s.exec(select(Staff).where(Staff.id.in_(
            [i for i in people if i]))).all()}
        customer = s.get(Customer, suspect.customer_id) if suspect.customer_id else None
        view = suspect_view(s, suspect, only_rep)
        if view["decided_by"] == SUSPECTS_ACTOR:  # decided by its file, not by a person
            view["decided_by"] = DECIDED_BY_FILE
        return {"view": view, "names": names, "orders": orders,
                "deadline_at": suspect.deadline_at, "decided_at": suspect.decided_at,
                "customer": {"customer_id": customer.id, "legal_name": customer.legal_name}
                if customer else None,
                "may_view": may_view_suspect(person, suspect, s),
                "may_decide": suspect.status in SuspectStatus.OPEN
                and may_decide(person, suspect, s)}


def page_candidates(request: Request, stored: list[dict], name: str, limit: int = 6
                    ) -> list[dict]:
    """The matcher's suggestions kept with the suspect, then what it finds for the name now
    (customer files opened since), without repeats."""
    found = list(stored)
    if check_customer_name(name) is None:
        found += suggestions(request, name.strip(), limit)["candidates"]
    unique: dict[int, dict] = {}
    for c in found:
        unique.setdefault(c["customer_id"], c)
    return list(unique.values())[:limit]


async def suspect_page_response(request: Request, suspect_id: int, person: Staff, *,
                                error: str = "", status: int = 200,
                                legal_name: str | None = None) -> HTMLResponse:
    settings = request.app.state.settings
    data = await run_in_threadpool(suspect_page_data, settings.db_url, suspect_id, person)
    if data is None:
        return staff_message(404, "记录不存在", f"疑似新客户记录不存在：{suspect_id}，"
                             "可能链接有误。")
    if not data["may_view"]:
        return staff_message(403, "无权查看", "该疑似新客户与您无关，无权查看。"
                             "如需处理，请联系销售运营。")
    data["legal_name"] = legal_name
    candidates = await run_in_threadpool(page_candidates, request, data["view"]["suggestions"],
                                         data["view"]["name"])
    title, content, script_html = suspect_page(data, candidates, now=utcnow(),
                                               threshold=settings.suspect_threshold,
                                               error=error)
    return staff_page(status, title, content, script_html)


@router.get("/customers/suspects/{suspect_id}", summary="疑似新客户（浏览器打开为确认页面）",
            responses={200: {"content": {"text/html": {}}}})
async def get_suspect(request: Request, response: Response, suspect_id: int = Path(le=MAX_ID)
                      ) -> Response:
    """JSON (as an item of `GET /customers/suspects`); a browser (Accept: text/html) gets
    the manager's page with the two decisions."""
    response.headers["Vary"] = "Accept"  # one address, two representations
    html = wants_html(request)
    person = await (staff_for_page(request) if html else current_staff(request))
    if not isinstance(person, Staff):
        return person
    db_url = request.app.state.settings.db_url
    into = await run_in_threadpool(merged_suspect, db_url, suspect_id)
    if into is not None:  # a spelling merged into another (a link mailed before): go there
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"/customers/suspects/{into}{query}", status_code=307,
                                headers=STAFF_HEADERS if html else {"Vary": "Accept"})
    if html:
        return await suspect_page_response(request, suspect_id, person)
    return await run_in_threadpool(suspect_detail, db_url, suspect_id, person)


def merged_suspect(db_url: str, suspect_id: int) -> int | None:
    with session_scope(db_url) as s:
        return suspect_merged_into(s, suspect_id)


def form_id(text: str) -> int | None:
    """A positive record id typed into or chosen in a form; None when it is not one."""
    text = (text or "").strip()
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) and int(text) > 0 else None


def suspect_name(db_url: str, suspect_id: int) -> dict:
    with session_scope(db_url) as s:
        return {"suspect_id": suspect_id, "name": s.get(SuspectName, suspect_id).display_name}


@router.post("/customers/suspects/{suspect_id}/decide", response_class=HTMLResponse,
             summary="疑似新客户：确认页面的表单提交（并入或新建）")
async def decide_suspect_form(request: Request, suspect_id: int = Path(le=MAX_ID),
                              action: str = Form(""),
                              customer_id: str = Form(""),
                              legal_name: str | None = Form(None)) -> Response:
    person = await staff_for_page(request, from_link=False)
    if not isinstance(person, Staff):
        return person
    if cross_site(request):
        return refused_cross_site()

    async def again(error: str, status: int) -> HTMLResponse:
        return await suspect_page_response(request, suspect_id, person, error=error, status=status,
                                     legal_name=legal_name if action == "create" else None)

    if action == "merge":
        chosen = form_id(customer_id)
        if chosen is None:
            return await again("请先选择要并入的客户", 422)
        fn, args = decide_merge, (suspect_id, person, chosen)
    elif action == "create":
        problem = check_customer_name(legal_name, what="工商全称")
        if problem:
            return await again(problem.message, 422)
        fn, args = decide_create, (suspect_id, person, legal_name.strip())
    else:
        return await again("请选择“并入已有客户”或“新建客户档案”后再提交", 422)
    try:
        result = await run_decision(request, fn, *args)
    except ApiError as exc:
        return await again(exc.message, exc.status)
    db_url = request.app.state.settings.db_url
    customer = await run_in_threadpool(customer_view, db_url, result["customer_id"])
    v = await run_in_threadpool(suspect_name, db_url, suspect_id)
    title, content = decision_result(v, result, customer)
    return staff_page(200, title, content)


class ProfileChange(BaseModel):
    """What sales-ops re-rates: any of the three (at least one)."""
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    tier: str | None = Field(default=None, max_length=20, description="客户等级，如 A、B、C")
    region: str | None = Field(default=None, max_length=200, description="大区，如 华东")
    owner: str | None = Field(default=None, max_length=200, description="负责销售的人员编号")


@router.patch("/customers/{customer_id}", summary="修改客户等级、大区或负责销售（销售运营）")
async def change_customer_profile(body: ProfileChange, request: Request,
                                  customer_id: int = Path(le=MAX_ID),
                                  person: Staff = Depends(current_staff)):
    """Re-rating by sales-ops or an admin, logged old → new (the settlement counts the new
    tier and region for orders from the day it is recorded). Values already on the file are
    no change: the answer lists what changed."""
    from flows.customer_import import set_customer_fields

    db_url = request.app.state.settings.db_url
    changes = await run_in_threadpool(
        set_customer_fields, db_url, customer_id, person.id, tier=body.tier,
        region=body.region, owner=body.owner, actor=f"staff:{person.id}", unchanged_ok=True)
    return {"customer": await run_in_threadpool(customer_view, db_url, customer_id),
            "changes": [{"field": c.field, "label": c.label, "old": c.old, "new": c.new}
                        for c in changes]}


@router.get("/customers/{customer_id}", summary="客户档案")
async def get_customer(request: Request, customer_id: int = Path(le=MAX_ID),
                       _: Staff = Depends(current_staff)):
    view = await run_in_threadpool(customer_view, request.app.state.settings.db_url, customer_id)
    if view is None:
        raise ApiError(404, "unknown_customer", f"客户档案不存在：{customer_id}")
    return view

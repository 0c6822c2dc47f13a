"""Customer master data doors: the suggest-only customer field, customer files, and the
decisions on suspected new customers."""
from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlmodel import select

from api.auth import current_staff
from api.errors import ApiError
from flows.customer_index import customer_index
from flows.hub import current_hub
from flows.suspects import (
    STATUS_LABELS, choose_customer_for_order, decide_create, decide_merge, may_decide,
)
from models import Customer, CustomerAlias, Staff, SuspectName, SuspectSighting, SuspectStatus
from models.base import SHANGHAI
from models.db import session_scope
from models.name_input import check_customer_name

router = APIRouter(tags=["customers"])


def _index(request: Request):
    st = request.app.state.settings
    return customer_index(st.db_url, st.customer_index_refresh_seconds)


def suggestions(request: Request, q: str, limit: int) -> dict:
    index = _index(request)
    result = index.search(q, limit=limit)
    files = index.files
    out = []
    for c in result.candidates:
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
        branches = s.exec(select(Customer).where(Customer.parent_id == c.id)).all()
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


def suspect_view(s, suspect: SuspectName) -> dict:
    sightings = s.exec(select(SuspectSighting).where(
        SuspectSighting.suspect_id == suspect.id).order_by(SuspectSighting.id)).all()

    def local(at):
        return at.astimezone(SHANGHAI).isoformat() if at else None
    return {"suspect_id": suspect.id, "name": suspect.display_name, "status": suspect.status,
            "status_label": STATUS_LABELS[suspect.status], "sightings": suspect.sightings,
            "decider": suspect.decider_id, "deadline_at": local(suspect.deadline_at),
            "decided_by": suspect.decided_by, "customer_id": suspect.customer_id,
            "suggestions": json.loads(suspect.suggestions or "[]"),
            "orders": [{"order_id": x.order_id, "typed_name": x.typed_name, "rep_id": x.rep_id,
                        "seen_at": local(x.seen_at)} for x in sightings]}


def list_suspects(db_url: str, person: Staff, include_closed: bool) -> list[dict]:
    with session_scope(db_url) as s:
        query = select(SuspectName).order_by(SuspectName.id)
        if not include_closed:
            query = query.where(SuspectName.status.in_(SuspectStatus.OPEN))
        return [suspect_view(s, x) for x in s.exec(query).all()
                if person.role in ("admin", "sales_ops") or may_decide(person, x, s)
                or person.id == x.last_rep_id]


@router.get("/customers/suspects", summary="疑似新客户列表")
async def get_suspects(request: Request, all: bool = False,  # noqa: A002 - query name
                       person: Staff = Depends(current_staff)):
    return await run_in_threadpool(list_suspects, request.app.state.settings.db_url, person, all)


class CreateDecision(BaseModel):
    legal_name: str | None = Field(default=None, max_length=1000,
                                   description="工商全称；不填则按疑似名称查询工商信息")


class MergeDecision(BaseModel):
    customer_id: int = Field(gt=0)


class OrderCustomer(BaseModel):
    customer_id: int = Field(gt=0)


async def _decision(request: Request, fn, *args):
    result = await run_in_threadpool(fn, current_hub(), *args)
    request.app.state.dispatcher.poke()  # released orders go on now
    return result


@router.post("/customers/suspects/{suspect_id}/create", summary="疑似新客户：新建客户档案")
async def create_from_suspect(suspect_id: int, body: CreateDecision, request: Request,
                              person: Staff = Depends(current_staff)):
    if body.legal_name is not None:
        problem = check_customer_name(body.legal_name, what="工商全称")
        if problem:
            raise ApiError(422, "invalid_field", problem.message,
                           [{"field": "legal_name", "problem": problem.code}])
    return await _decision(request, decide_create, suspect_id, person, body.legal_name)


@router.post("/customers/suspects/{suspect_id}/merge", summary="疑似新客户：并入已有客户")
async def merge_suspect(suspect_id: int, body: MergeDecision, request: Request,
                        person: Staff = Depends(current_staff)):
    return await _decision(request, decide_merge, suspect_id, person, body.customer_id)


@router.post("/orders/{order_id}/customer", tags=["orders"],
             summary="为待确认客户的意向单选择客户")
async def choose_order_customer(order_id: str, body: OrderCustomer, request: Request,
                                person: Staff = Depends(current_staff)):
    return await _decision(request, choose_customer_for_order, order_id, person,
                           body.customer_id)


@router.get("/customers/{customer_id}", summary="客户档案")
async def get_customer(customer_id: int, request: Request, _: Staff = Depends(current_staff)):
    view = await run_in_threadpool(customer_view, request.app.state.settings.db_url, customer_id)
    if view is None:
        raise ApiError(404, "unknown_customer", f"客户档案不存在：{customer_id}")
    return view

"""Rebate doors: the preview at order entry, the policies, the board and its drill-down,
finance's confirmation of a settlement."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, field_validator
from sqlmodel import select

from api.auth import current_staff
from api.errors import ApiError
from flows.policies import publish_policy
from flows.rebate_board import board, board_scope, figure_orders, order_detail
from flows.rebate_data import policy_book
from flows.rebate_preview import ItemIn, preview_items
from flows.settlement import confirm_settlement
from models import RebatePolicyVersion, Staff
from models.db import session_scope
from models.rebates.policy import PolicyDocumentError

router = APIRouter(tags=["rebates"])


class PreviewLineIn(BaseModel):
    sku: str = Field(min_length=1, max_length=40)
    quantity: int = Field(gt=0, le=1_000_000)
    unit_price: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)

    @field_validator("quantity", mode="before")
    @classmethod
    def whole_units(cls, v):
        if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
            raise ValueError("quantity must be a whole number")
        return v


class PreviewIn(BaseModel):
    customer_id: int = Field(gt=0)
    lines: list[PreviewLineIn] = Field(min_length=1, max_length=200)
    order_date: dt.date | None = None


def _preview(db_url: str, body: PreviewIn) -> dict:
    result = preview_items(db_url, body.customer_id,
                           [ItemIn(ln.sku, ln.quantity, ln.unit_price) for ln in body.lines],
                           order_date=body.order_date)
    return result.detail()


@router.post("/rebates/preview", summary="意向单返利预估（录入即显示）")
async def preview_rebate(body: PreviewIn, request: Request, _: Staff = Depends(current_staff)):
    """The rate and amount the order would earn, per rule with the policy version and clause
    that produced it and the inputs used; the rules that do not apply and why; and per
    product line the change against last month's rate."""
    return await run_in_threadpool(_preview, request.app.state.settings.db_url, body)


def _policies(db_url: str) -> list[dict]:
    with session_scope(db_url) as s:
        book = policy_book(s)
        rows = s.exec(select(RebatePolicyVersion).order_by(RebatePolicyVersion.code,
                                                           RebatePolicyVersion.version)).all()
    windows = {(w.code, w.version): w for w in book.windows()}
    return [{"code": r.code, "version": r.version, "name": r.name,
             "effective_from": r.effective_from.isoformat(),
             "effective_to": r.effective_to.isoformat() if r.effective_to else None,
             "governs": ({"from": windows[(r.code, r.version)].start.isoformat(),
                          "to": windows[(r.code, r.version)].end.isoformat()
                          if windows[(r.code, r.version)].end else None}
                         if (r.code, r.version) in windows else None),
             "published_by": r.published_by, "published_at": r.published_at.isoformat(),
             "sha256": r.sha256} for r in rows]


@router.get("/rebates/policies", summary="已发布的返利政策版本")
async def list_policies(request: Request, _: Staff = Depends(current_staff)):
    return await run_in_threadpool(_policies, request.app.state.settings.db_url)


@router.post("/rebates/policies", summary="发布返利政策（YAML 或 JSON 文档）", status_code=201)
async def publish(request: Request, person: Staff = Depends(current_staff),
                  document: str = Body(..., media_type="text/plain", max_length=200_000)):
    """The body is the policy document as the clerk wrote it. Problems are listed per field;
    nothing is published unless the whole document is valid."""
    try:
        done = await run_in_threadpool(publish_policy, request.app.state.settings.db_url,
                                       document, person)
    except PolicyDocumentError as exc:
        raise ApiError(422, "invalid_policy", "返利政策文档有误，未发布",
                       [{"field": p.field, "problem": "invalid", "message": p.message}
                        for p in exc.problems]) from exc
    return {"code": done.code, "version": done.version, "name": done.name,
            "effective_from": done.effective_from.isoformat(), "supersedes": done.supersedes}


def _scope(request: Request, person: Staff, rep: str | None, region: str | None):
    return board_scope(request.app.state.settings.db_url, person, rep, region)


@router.get("/rebates/board/data", summary="返利看板数据")
async def board_data(request: Request, rep: str | None = None, region: str | None = None,
                     person: Staff = Depends(current_staff)):
    scope = await run_in_threadpool(_scope, request, person, rep, region)
    return await run_in_threadpool(board, request.app.state.settings.db_url, scope)


@router.get("/rebates/board/orders", summary="看板数字对应的订单")
async def board_orders(request: Request,
                       status: str = Query(pattern="^(confirmed|pending|expected)$"),
                       month: str | None = Query(None, pattern=r"^\d{4}-\d{2}$"),
                       rep: str | None = None, region: str | None = None,
                       person: Staff = Depends(current_staff)):
    scope = await run_in_threadpool(_scope, request, person, rep, region)
    return await run_in_threadpool(figure_orders, request.app.state.settings.db_url, scope,
                                   status, None, month)


@router.get("/rebates/orders/{order_id}", summary="订单返利明细、客户与政策原文")
async def rebate_order(order_id: str, request: Request, rep: str | None = None,
                       region: str | None = None, person: Staff = Depends(current_staff)):
    scope = await run_in_threadpool(_scope, request, person, rep, region)
    detail = await run_in_threadpool(order_detail, request.app.state.settings.db_url, scope,
                                     order_id)
    if detail is None:
        raise ApiError(404, "unknown_order", f"意向单不存在：{order_id}")
    return detail


@router.post("/rebates/settlements/{month}/{revision}/confirm", summary="财务确认结算版本")
async def confirm(month: str, revision: int, request: Request,
                  person: Staff = Depends(current_staff)):
    run = await run_in_threadpool(confirm_settlement, request.app.state.settings.db_url, month,
                                  revision, person)
    return {"month": run.month, "revision": run.revision, "status": run.status,
            "confirmed_by": run.confirmed_by}

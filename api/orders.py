"""Read side of intent orders: what happened to an order, for the sender and for ops."""
from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from sqlmodel import select

from api.errors import ApiError
from models import (
    STAGE_LABELS, Customer, IntentOrder, Opportunity, OrderRebate, Quote, Stage, Todo,
)
from models.db import session_scope

router = APIRouter()


def order_view(db_url: str, order_id: str) -> dict | None:
    with session_scope(db_url) as s:
        order = s.get(IntentOrder, order_id)
        if order is None:
            return None
        quote = s.exec(select(Quote).where(Quote.order_id == order_id)).first()
        opp = s.exec(select(Opportunity).where(Opportunity.order_id == order_id)).first()
        customer = s.get(Customer, order.customer_id) if order.customer_id else None
        todos = s.exec(select(Todo).where(Todo.order_id == order_id).order_by(Todo.id)).all()
        rebate = s.get(OrderRebate, order_id)
        return {
            "order_id": order.id, "status": order.status, "error": order.error,
            "customer": {"id": customer.id, "legal_name": customer.legal_name,
                         "qualification": customer.qualification} if customer else None,
            "stock_short": order.stock_short,
            "stage": opp.stage if opp else None,
            "stage_label": STAGE_LABELS.get(Stage(opp.stage)) if opp else None,
            "quote": {"code": quote.code, "status": quote.status,
                      "total_amount": str(quote.total_amount),
                      "valid_until": quote.valid_until.isoformat(),
                      "pdf_sha256": quote.pdf_sha256,
                      "signed_pdf_sha256": quote.signed_pdf_sha256} if quote else None,
            "todos": [{"kind": t.kind, "title": t.title, "assignee": t.assignee_id,
                       "status": t.status, "due_at": t.due_at.isoformat()} for t in todos],
            "rebate": {"rate": str(rebate.rate), "amount": str(rebate.amount),
                       "sentence": rebate.sentence, "detail": json.loads(rebate.detail)}
            if rebate else None,
            "last_flow_run_id": order.last_flow_run_id,
        }


@router.get("/orders/{order_id}", tags=["orders"], summary="意向单处理进度")
async def get_order(order_id: str, request: Request):
    view = await run_in_threadpool(order_view, request.app.state.settings.db_url, order_id)
    if view is None:
        raise ApiError(404, "unknown_order", f"意向单不存在：{order_id}")
    return view

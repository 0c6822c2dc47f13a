"""Intent orders, their quotes and the opportunity they advance."""
from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, business_date, utcnow
from models.catalog import MODEL_MAX_LENGTH, NAME_MAX_LENGTH, UNIT_MAX_LENGTH


class OrderStatus(str, enum.Enum):
    received = "received"        # stored, waiting for a flow run to claim it
    processing = "processing"    # claimed by a flow run (lease in claimed_until)
    quoted = "quoted"            # quote sent, waiting for the signature
    signed = "signed"
    invoicing = "invoicing"      # finance asked to prepare the invoice
    on_hold = "on_hold"          # the customer name is not recognised: waits for a decision
    failed = "failed"            # a step gave up on a transient error: will be retried
    blocked = "blocked"          # a permanent error: a person must act (see to-dos)


# what people read for each status
ORDER_STATUS_LABELS = {
    OrderStatus.received: "已接收，排队处理中",
    OrderStatus.processing: "处理中",
    OrderStatus.quoted: "已报价，待客户签署",
    OrderStatus.signed: "客户已签署",
    OrderStatus.invoicing: "开票准备中",
    OrderStatus.on_hold: "待确认客户",
    OrderStatus.failed: "处理失败，系统将自动重试",
    OrderStatus.blocked: "已暂停，需人工处理",
}


class IntentOrder(SQLModel, table=True):
    __tablename__ = "intent_order"
    # a customer's orders by date: rebate previews and settlements read them this way
    __table_args__ = (sa.Index("ix_intent_order_customer_date", "customer_id", "order_date"),)

    id: str = Field(primary_key=True, max_length=24)
    event_id: str = Field(max_length=80)
    sender_id: str = Field(max_length=40)
    customer_name: str = Field(max_length=200)  # as the rep typed it
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    # set while the order waits for a decision on an unrecognised customer name
    suspect_id: int | None = Field(default=None, foreign_key="suspect_name.id", index=True)
    # business date (Asia/Shanghai) of its arrival: the date rebate policies look at
    order_date: dt.date = Field(default_factory=lambda: business_date(), index=True)
    rep_id: str | None = Field(default=None, foreign_key="staff.id", max_length=40)
    contact_name: str | None = Field(default=None, max_length=40)
    contact_phone: str | None = Field(default=None, max_length=30)
    contact_email: str | None = Field(default=None, max_length=120)
    wanted_delivery_date: dt.date | None = None
    note: str | None = Field(default=None, max_length=500)
    status: str = Field(default=OrderStatus.received.value, max_length=12, index=True)
    stock_short: bool = False
    error: str | None = Field(default=None, max_length=2000)
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_flow_run_id: str | None = Field(default=None, max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IntentOrderLine(SQLModel, table=True):
    __tablename__ = "intent_order_line"
    __table_args__ = (sa.UniqueConstraint("order_id", "line_no"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="intent_order.id", index=True, max_length=24)
    line_no: int
    sku: str = Field(foreign_key="product.sku", max_length=40)
    # the model (型号) and name (品名) the line was ordered under (its product's when the order
    # came in): the quote, the signing page and the invoice request read these, not the
    # catalogue's current ones (a product may be renamed before the order is signed)
    model: str = Field(max_length=MODEL_MAX_LENGTH)
    name: str = Field(max_length=NAME_MAX_LENGTH)
    quantity: int
    # the unit the quantity was ordered in (its product's when the order came in), kept like
    # the price: the quote, the signing page and the delivery/return checks read this one,
    # not the catalogue's current unit (a product may move from 台 to 套 later)
    unit: str = Field(max_length=UNIT_MAX_LENGTH)
    unit_price: Decimal = Field(sa_type=sa.Numeric(14, 2))  # tax included
    tax_rate: Decimal = Field(sa_type=sa.Numeric(5, 4))


class QuoteStatus(str, enum.Enum):
    draft = "draft"
    sent = "sent"
    signed = "signed"
    expired = "expired"


class Quote(SQLModel, table=True):
    __tablename__ = "quote"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=24, sa_column_kwargs={"unique": True})
    order_id: str = Field(foreign_key="intent_order.id", max_length=24,
                          sa_column_kwargs={"unique": True})
    customer_id: int = Field(foreign_key="customer.id")
    total_amount: Decimal = Field(sa_type=sa.Numeric(14, 2))  # tax included
    tax_amount: Decimal = Field(sa_type=sa.Numeric(14, 2))
    valid_until: dt.date
    status: str = Field(default=QuoteStatus.draft.value, max_length=10, index=True)
    pdf_path: str | None = Field(default=None, max_length=400)
    pdf_sha256: str | None = Field(default=None, max_length=64)
    # whether the PDF was rendered with the shortage note (部分物料库存不足…): a draft whose
    # order's shortage changed since is rendered again (flows.order_steps.render_quote)
    pdf_stock_note: bool = False
    signing_provider: str | None = Field(default=None, max_length=20)
    signing_ref: str | None = Field(default=None, max_length=80)  # provider's flow id
    signing_url: str | None = Field(default=None, max_length=400)
    signed_pdf_path: str | None = Field(default=None, max_length=400)
    signed_pdf_sha256: str | None = Field(default=None, max_length=64)
    evidence_path: str | None = Field(default=None, max_length=400)
    # indexed: the settlement looks up the quotes signed in a month
    signed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SigningToken(SQLModel, table=True):
    """Single-use token of the built-in signing page. Only its hash is stored."""

    __tablename__ = "signing_token"

    token_hash: str = Field(primary_key=True, max_length=64)
    quote_id: int = Field(foreign_key="quote.id", index=True)
    expires_at: dt.datetime = Field(sa_type=UTCDateTime)
    used_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class Stage(str, enum.Enum):
    intent = "intent"
    quoted = "quoted"
    signed = "signed"
    invoicing = "invoicing"
    invoiced = "invoiced"


STAGE_LABELS = {
    Stage.intent: "意向",
    Stage.quoted: "已报价",
    Stage.signed: "已签约",
    Stage.invoicing: "开票中",
    Stage.invoiced: "已开票",
}
STAGE_ORDER = list(Stage)


class Opportunity(SQLModel, table=True):
    __tablename__ = "opportunity"

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="intent_order.id", max_length=24,
                          sa_column_kwargs={"unique": True})
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    rep_id: str | None = Field(default=None, max_length=40)
    stage: str = Field(default=Stage.intent.value, max_length=12, index=True)
    amount: Decimal | None = Field(default=None, sa_type=sa.Numeric(14, 2))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

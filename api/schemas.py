"""What outside systems send us."""
from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator

_NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"


def whole_number(v):
    """JSON true is not 1, nor 2.5 (or NaN) a count: refused before pydantic's lax int."""
    if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
        raise ValueError("应为整数")
    return v


class CustomerIn(BaseModel):
    """The customer of an order: its id from the suggest-only field (forms), or, from systems
    that only have a name, the name as typed (checked by the matcher)."""

    model_config = ConfigDict(str_strip_whitespace=True)

    id: int | None = Field(default=None, gt=0)
    # what a name may contain is checked by models.name_input (specific error codes)
    name: str | None = Field(default=None, max_length=1000)
    contact_name: str | None = Field(default=None, max_length=40, pattern=_NO_CONTROL)
    contact_phone: str | None = Field(default=None, max_length=30, pattern=r"^[0-9+\- ()]*$")
    contact_email: str | None = Field(default=None, max_length=120,
                                      pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    _whole_id = field_validator("id", mode="before")(whole_number)

    @field_validator("contact_email")
    @classmethod
    def _deliverable(cls, v):
        """Our mail goes out without SMTPUTF8: a Chinese or full-width mailbox, or two
        addresses in one, cannot be delivered (the order would block later)."""
        if v is not None and (not v.isascii() or any(ch in v for ch in ',;<>()[]\\"')):
            raise ValueError("邮箱地址只能由英文字母、数字和常用符号组成（如 name@example.com），"
                             "中文、全角字符或多个地址无法投递")
        return v


class OrderLineIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    sku: str = Field(min_length=1, max_length=40)
    quantity: int = Field(gt=0, le=1_000_000)

    _whole_units = field_validator("quantity", mode="before")(whole_number)


class IntentOrderIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    event_id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._:\-]+$")
    customer: CustomerIn
    rep_id: str | None = Field(default=None, max_length=40)
    lines: list[OrderLineIn] = Field(min_length=1, max_length=200)
    wanted_delivery_date: dt.date | None = None
    note: str | None = Field(default=None, max_length=500)

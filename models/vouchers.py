"""Voucher numbers (凭证号): issued by the hub, once, continuing within (凭证字, accounting period).

Finance's books (K/3 Cloud, U8) know a voucher by its 凭证字 and 凭证号 in its accounting period
and refuse (or merge) a second voucher of the same number there. A period receives vouchers
from several batches — a month's settlement, its correction revisions, an earlier month's
late correction booked in this period — so a batch's numbers continue after the highest one
issued in the period, and a number, once issued to a voucher, is that voucher's for good (a
batch sent again carries the same numbers). One deployment books into one 账簿
(SALESOPS_KINGDEE_ACCOUNT_BOOK): numbers run per (凭证字, period) of it.

The callers issue numbers while holding the settlements' lock (`flows.settlement.
lock_settlements`); the unique key on (word, period, number) refuses a second issue of a
number whatever happens.
"""
from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, select

from models.base import UTCDateTime, utcnow
from models.work import OperationLog


class VoucherNumber(SQLModel, table=True):
    """The 凭证号 issued to one voucher of a batch."""

    __tablename__ = "voucher_number"
    __table_args__ = (sa.UniqueConstraint("word", "period", "number"),
                      sa.UniqueConstraint("voucher_key"))

    id: int | None = Field(default=None, primary_key=True)
    word: str = Field(max_length=10)                      # 凭证字, 记
    period: str = Field(max_length=7)                     # accounting period YYYY-MM
    number: int                                           # 凭证号, 1, 2, … in (word, period)
    batch_id: str = Field(max_length=60, index=True)      # RB-2026-10-r1
    voucher_key: str = Field(max_length=120)              # RB-2026-10-r1-C000123
    issued_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def issue_voucher_numbers(s: Session, batch_id: str,
                          vouchers: Sequence[tuple[str, str, str]], actor: str) -> dict[str, int]:
    """The 凭证号 of each voucher (voucher_key, word, period) of a batch, in the batch's order:
    those issued before (the batch prepared again) as they were, the others continuing after
    the highest number of their (word, period). The caller holds the settlements' lock."""
    issued = dict(s.exec(select(VoucherNumber.voucher_key, VoucherNumber.number).where(
        VoucherNumber.batch_id == batch_id)).all())
    new = [(key, word, period) for key, word, period in vouchers if key not in issued]
    if not new:
        return issued
    highest = {(word, period): s.exec(select(sa.func.max(VoucherNumber.number)).where(
        VoucherNumber.word == word, VoucherNumber.period == period)).one() or 0
        for word, period in {(w, p) for _, w, p in new}}
    rows, ranges = [], defaultdict(list)
    for key, word, period in new:
        highest[(word, period)] += 1
        number = highest[(word, period)]
        rows.append(VoucherNumber(word=word, period=period, number=number, batch_id=batch_id,
                                  voucher_key=key))
        ranges[f"{word} {period}"].append(number)
        issued[key] = number
    s.add_all(rows)
    # one entry per batch (a month's batch has thousands of vouchers): the ranges issued
    s.add(OperationLog(actor=actor, entity=VoucherNumber.__tablename__, entity_id=batch_id,
                       action="create", changes=json.dumps(
                           {where: [None, f"{min(ns)}-{max(ns)}"] for where, ns in ranges.items()},
                           ensure_ascii=False)))
    s.flush()
    return issued

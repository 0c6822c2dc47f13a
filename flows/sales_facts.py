"""What rebates are computed from, besides the orders: receivables and payments (回款) from
finance, deliveries and returns (发货 / 退货 / 换货) from the ERP.

Files are read with the shared tabular reader; every import is one transaction that either
stores all of a file or nothing, and names each problem's row and column in Chinese.
Re-importing the same file changes nothing (rows are keyed by their document numbers); a
row whose document changed is updated and counts as recorded now (`recorded_at`), so that the
settlement sees the correction as late news. Every import (a file, a page of the finance
sync that carries records) is registered before it writes (`registered_import`): a
settlement reading while it is open leaves its rows as news for the next one. Invoices are
keyed by `invoice_key` (发票代码 and an old-style 8-digit 发票号码 together, else the number);
a file or page is authoritative for the allocations of every 回款单号 it lists (see
`store_receivables`), and a deliveries or returns file for the lines of every 发货单号 /
退货单号 it lists (see `_drop_unlisted_lines`).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from prefect import flow, get_run_logger
from sqlmodel import Session, select

from connectors.base import PermanentError
from connectors.finance import (
    INVOICE_COLUMNS, PAYMENT_COLUMNS, PaymentRecord, ReceivableRecord, ReceivablesPage,
    invoice_code_problem, invoice_key, invoice_label, no_duplicates, parse_voided,
    read_receivables_file,
)
from connectors.tabular import (
    HEADER_SEARCH_ROWS, INVALID, MAX_PROBLEMS, REPEATED_ROW, UNIT_KINDS, CellError, Column,
    Problem, Table,
    TableError, convert_rows, header_key, header_unit, load_sheets, normalize_header,
    parse_code, parse_date, parse_int, parse_text,
)
from flows.hub import Hub, current_hub
from models import (
    ConnectorCursor,
    Customer,
    Delivery,
    IntentOrder,
    IntentOrderLine,
    MovementImport,
    Payment,
    Quote,
    ReceivableInvoice,
    SalesReturn,
    utcnow,
)
from models.base import business_date
from models.catalog import same_unit
from models.customer_files import active, active_id, exact_matches
from models.names import HALF_WIDTH
from models.db import session_scope
from models.locks import lock_customer_files, lock_movements, lock_receivables
from models.money import yuan
from models.oplog import apply_changes, record_create, record_delete


class ImportRefused(Exception):
    """The file cannot be imported; `problems` say where (nothing was written): the first
    MAX_PROBLEMS of them, then a line counting the `more` left out."""

    def __init__(self, problems: list[Problem] | list[str], *, more: int = 0) -> None:
        self.more = more + max(0, len(problems) - MAX_PROBLEMS)
        self.problems = list(problems[:MAX_PROBLEMS])
        if self.more:
            self.problems.append(f"……另有 {self.more} 处问题未列出")
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def count(self) -> int:
        """How many problems were found, listed or not."""
        return len(self.problems) - (1 if self.more else 0) + self.more


@dataclass
class ImportSummary:
    """What an import did. `removed`: payment rows taken off an invoice the export no longer
    lists for that payment (delivery / return lines a re-sent document no longer has); `moved`
    says, per payment (or re-keyed invoice, or document), what changed; `skipped`: records not
    imported and why (unknown customers; delivery / return lines with nothing shipped);
    `notes`: how the file was read where the clerk should know (an invoice's amount taken as
    金额 + 税额)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)
    removed: int = 0
    moved: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, other: ImportSummary) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.skipped += other.skipped
        self.removed += other.removed
        self.moved += other.moved
        self.notes += other.notes

    def as_dict(self) -> dict:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "skipped": self.skipped, "removed": self.removed, "moved": self.moved,
                "notes": self.notes}


def _change(s: Session, row, actor: str, **values) -> bool:
    """Bring a stored fact to `values` (operation log `update`): one that changed is recorded
    anew (`recorded_at`: the settlement's late news). Whether it changed."""
    if not apply_changes(s, row, actor, **values):
        return False
    row.recorded_at = utcnow()
    return True


def _upsert(s: Session, existing, make, values: dict, summary: ImportSummary, actor: str) -> None:
    """Create the row (`make(**values)`), or bring the existing one to `values` (`_change`);
    counted."""
    if existing is None:
        row = make(**values)
        s.add(row)
        record_create(s, row, actor)
        summary.created += 1
    elif _change(s, existing, actor, **values):
        summary.updated += 1
    else:
        summary.unchanged += 1


@contextmanager
def registered_import(db_url: str, kind: str, source: str, actor: str
                      ) -> Iterator[Callable[[Session], None]]:
    """An import of deliveries or returns, or of invoices and payments (`kind` receivables:
    an export file, or one page of the finance sync), registered (committed) before any of
    its rows is written: a settlement reading the facts meanwhile knows that rows stamped
    from its start may still come (`news_horizon`). Yields `finish(s)`, called in the
    import's transaction just before it commits, so that the registration closes with the
    rows; an import that ends otherwise is closed right after, as refused or failed."""
    with session_scope(db_url) as s:
        ticket = MovementImport(kind=kind, source=source[:200], actor=actor[:100])
        s.add(ticket)
        s.flush()
        ticket_id = ticket.id

    def finish(s: Session) -> None:
        s.execute(sa.update(MovementImport).where(MovementImport.id == ticket_id)
                  .values(finished_at=utcnow(), outcome="stored"))

    outcome = "failed"
    try:
        yield finish
        outcome = "stored"
    except ImportRefused:
        outcome = "refused"
        raise
    finally:
        if outcome != "stored":
            with session_scope(db_url) as s:
                s.execute(sa.update(MovementImport).where(
                    MovementImport.id == ticket_id, MovementImport.finished_at.is_(None))
                    .values(finished_at=utcnow(), outcome=outcome))


# --- receivables ---------------------------------------------------------------------------

def _customer_for(s: Session, uscc: str | None, name: str) -> Customer | None:
    if uscc:
        found = s.exec(select(Customer).where(Customer.uscc == uscc)).first()
        if found is not None:
            return active(s, found.id)
    matches = exact_matches(s, name)
    return matches[0] if len(matches) == 1 else None


def _unknown_customer(key: str, name: str) -> str:
    return f"发票 {invoice_label(key)}：客户“{name}”未建档"


def _unknown_invoice(payment_no: str, key: str) -> str:
    return f"回款 {payment_no}：发票 {invoice_label(key)} 不存在"


def _invoice(s: Session, key: str) -> ReceivableInvoice | None:
    return s.exec(select(ReceivableInvoice).where(ReceivableInvoice.invoice_no == key)).first()


def store_receivables(s: Session, invoices: tuple[ReceivableRecord, ...],
                      payments: tuple[PaymentRecord, ...], *, source: str, actor: str,
                      skip_unknown: bool) -> ImportSummary:
    """Upsert invoices (by `invoice_key`) and payments (by payment number and invoice) in the
    caller's transaction. An invoice of a customer not on file is an error, or skipped.

    The payments given are all the allocations of every payment number among them (the
    export is authoritative for the 回款单号 it lists): a stored row of such a payment on an
    invoice not listed now — finance moved the money to another invoice — is deleted (op log
    `delete`; counted in `removed`, described in `moved`); so is every stored row of a
    payment listed as voided (作废), whatever invoices its records name — when the stored one
    is the payment voided, not another 账套's or year's of the same number (`_void_payment`).
    A payment with an invoice not known is an error, or skipped whole: its stored allocations
    stay as they are until every invoice it lists is known, so its money is never counted on
    two invoices, nor lost.

    Refused too: an invoice issued, or a payment received, after today (a mistyped year
    would count as paid late, or not yet due); more money on a blue invoice than is due on
    it (`_over_allocated`)."""
    summary, problems = ImportSummary(), []
    problems += _future_dates(invoices, payments)
    summary.notes += _tax_added(invoices)
    voided = []  # invoices finance voided: taken out once the payments are stored
    # blue invoices first: a red-letter invoice's blue one may be in the same export
    blues = [r for r in invoices if not r.reverses or r.voided]
    reds = [r for r in invoices if r.reverses and not r.voided]
    reversed_now: dict[str, ReceivableRecord] = {}  # blue key → the last record touching it
    # blue key → the last payment record allocating to it (`_over_allocated`)
    allocated_now: dict[str, PaymentRecord] = {}
    # red key → the last record touching it: what was given back on it (`_over_refunded`)
    refunded_now: dict[str, ReceivableRecord | PaymentRecord] = {}
    # the customers are looked up first; then no merge commits until this transaction does,
    # and a file merged since its lookup stands for its survivor (models.locks)
    looked_up = {id(r): _customer_for(s, r.customer_uscc, r.customer_name)
                 for r in blues + reds if not r.voided}
    lock_customer_files(s)
    survivors: dict[int, int | None] = {}
    for record in blues + reds:
        if record.voided:
            voided.append(record)
            continue
        customer = looked_up[id(record)]
        if customer is not None:
            if customer.id not in survivors:
                survivors[customer.id] = active_id(s, customer.id)
            survivor = survivors[customer.id]
            customer = s.get(Customer, survivor) if survivor is not None else None
        if customer is None:
            what = _unknown_customer(record.key, record.customer_name)
            if skip_unknown:
                summary.skipped.append(what)
            else:
                problems.append(_at(record, "客户名称", what))
            continue
        values = dict(customer_id=customer.id, issued_on=record.issued_on,
                      due_on=record.due_on, amount=record.amount, reverses=record.reverses,
                      reversed_in_full=record.reversed_in_full)
        if record.reverses:
            refused = _red_letter_problem(s, record, customer.id)
            if refused == "unknown" and skip_unknown:
                summary.skipped.append(_unknown_blue(record))
                continue
            if refused:
                problems.append(_at(record, record.original_from or "原发票号码",
                                    _unknown_blue(record) if refused == "unknown" else refused))
                continue
            reversed_now[record.reverses] = record
            refunded_now[record.key] = record
        else:
            reversed_now[record.key] = record
        row = _invoice(s, record.key)
        if row is None and record.invoice_code:
            row = _adopt_uncoded(s, record, customer.id, summary, actor)
        was = row.customer_id if row is not None else customer.id
        _upsert(s, row, lambda **v: ReceivableInvoice(invoice_no=record.key, source=source, **v),
                values, summary, actor)
        if was != customer.id:
            _move_payments(s, row, was, summary, actor)
    s.flush()
    problems += _over_reversed(s, reversed_now)
    allocations: dict[str, list[PaymentRecord]] = defaultdict(list)
    for record in payments:
        allocations[record.payment_no].append(record)
    for payment_no, records in allocations.items():
        if any(r.voided for r in records):
            if not all(r.voided for r in records):
                problems.append(_at(records[0], "作废状态", f"回款 {payment_no}：部分行标记作废、"
                                    "部分行未作废（回款单须整单作废）"))
                continue
            _void_payment(s, payment_no, records, summary, problems, actor, skip_unknown)
            continue
        date_problem = _two_dates(payment_no, records)
        if date_problem:
            problems.append(date_problem)
            continue
        found = {r.invoice_key: _invoice(s, r.invoice_key) for r in records}
        unknown = [key for key, invoice in found.items() if invoice is None]
        if unknown:
            if not skip_unknown:
                problems += [_at(r, "发票号", _unknown_invoice(payment_no, r.invoice_key))
                             for r in records if r.invoice_key in unknown]
                continue
            # the invoices it lists that are known wait with it
            whole = "（该回款单其余各行一并暂不登记）" if len(found) > len(unknown) else ""
            summary.skipped += [_unknown_invoice(payment_no, key) + whole for key in unknown]
            continue
        clash = _two_payments(s, payment_no, records, found)
        if clash:
            problems.append(clash)
            continue
        _drop_moved(s, payment_no, list(found), summary, actor)
        for record in records:
            invoice = found[record.invoice_key]
            if invoice.amount < 0:
                refunded_now[invoice.invoice_no] = record
            else:
                allocated_now[invoice.invoice_no] = record
            values = dict(customer_id=invoice.customer_id, paid_on=record.paid_on,
                          amount=record.amount)
            row = s.exec(select(Payment).where(Payment.payment_no == payment_no,
                                               Payment.invoice_no == invoice.invoice_no)).first()
            _upsert(s, row, lambda **v: Payment(payment_no=payment_no,
                                                invoice_no=invoice.invoice_no, source=source,
                                                **v),
                    values, summary, actor)
    s.flush()
    problems += _over_refunded(s, refunded_now)
    problems += _over_allocated(s, allocated_now)
    for record in voided:
        _drop_voided_invoice(s, record, summary, problems, actor, skip_unknown)
    if problems:
        raise ImportRefused(problems)
    return summary


# Two 收款单 may share a 回款单号: two 账套 (or bank accounts) each number theirs from 1, and
# numbering often restarts every year. An export is authoritative for the numbers it lists
# (a payment moved to another invoice), so a second 收款单 of a stored number would silently
# take the first one's allocations away. What cannot be one payment — two customers, or dates
# in two years, in one export; against the stored one, another customer on another day, or
# another year — is refused, naming the rows; the export has to tell the two apart (a 账套 or year
# prefix on the number). Another customer on the same day is finance correcting the booking.
_PREFIX_ACCOUNT = "若是两个账套（或银行账户）各自编号的收款单，请在导出时给回款单号加上账套前缀"


def _move_payments(s: Session, invoice: ReceivableInvoice, was: int, summary: ImportSummary,
                   actor: str) -> None:
    """An invoice finance moved to another customer (booked to the wrong one at first) takes
    the payments on it along, in the import's transaction: a payment row is its invoice's
    customer's (as stored by `store_receivables`). Left with the old customer, a receipt
    would count in that customer's payment rate, and finance correcting its date later would
    read as another customer's 回款单 on another day (`_another_payment`). Each row moved is
    logged (`update`) and recorded anew (`_change`); the summary says so in `moved`."""
    paid = s.exec(select(Payment).where(Payment.invoice_no == invoice.invoice_no)
                  .order_by(Payment.payment_no)).all()
    for payment in paid:
        _change(s, payment, actor, customer_id=invoice.customer_id)
    if paid:
        summary.moved.append(
            f"发票 {invoice_label(invoice.invoice_no)}：客户由“{_name(s, was)}”改为"
            f"“{_name(s, invoice.customer_id)}”，其上的回款 {'、'.join(p.payment_no for p in paid)} "
            "随之转入")


def _first_row(record: PaymentRecord, other: PaymentRecord) -> str:
    """Where `other` (an earlier row of the same export) is, as `record`'s message says it."""
    if other.at is None:
        return "本页另一条记录中"
    return f"{'本表' if record.at and record.at[0] == other.at[0] else other.at[0]}第{other.at[1]}行"


def _two_dates(payment_no: str, records: list[PaymentRecord]) -> Problem | str | None:
    """Rows of one number dated in two years are two 收款单 (numbering restarts every year).
    Within a year the dates may differ: an export of 核销 records dates each by its 核销."""
    first = records[0]
    for record in records[1:]:
        if record.paid_on.year != first.paid_on.year:
            return _at(record, "回款日期", (
                f"回款单号 {payment_no} 在{_first_row(record, first)}的回款日期是 {first.paid_on}，"
                f"此行是 {record.paid_on}，不在同一年：不是同一张回款单。若是两张收款单（不同账套、"
                f"银行账户或年度各自编号），请在导出时给回款单号加上账套或年度前缀（如 A-{payment_no}、"
                f"{record.paid_on.year}-{payment_no}）后再导入"))
    return None


def _two_payments(s: Session, payment_no: str, records: list[PaymentRecord],
                  found: dict[str, ReceivableInvoice]) -> Problem | str | None:
    """The export's rows of a number against each other (one customer) and against the
    stored 回款单 of that number (the same customer, the same year): else two payments."""
    return (_two_customers(s, payment_no, records, found)
            or _another_payment(s, payment_no, records[0],
                                found[records[0].invoice_key].customer_id,
                                _stored_payment(s, payment_no)))


def _two_customers(s: Session, payment_no: str, records: list[PaymentRecord],
                   found: dict[str, ReceivableInvoice | None]) -> Problem | str | None:
    """Rows of one number whose (known) invoices are of two customers: two payments."""
    known = [r for r in records if found.get(r.invoice_key) is not None]
    if not known:
        return None
    first = known[0]
    owner = found[first.invoice_key].customer_id
    for record in known[1:]:
        if found[record.invoice_key].customer_id != owner:
            return _at(record, "回款单号", (
                f"回款单号 {payment_no} 在{_first_row(record, first)}是客户“{_name(s, owner)}”的回款，"
                f"此行是客户“{_name(s, found[record.invoice_key].customer_id)}”的：一张回款单只属于"
                f"一个客户。若是两个账套（或银行账户）各自编号的两张收款单，请在导出时给回款单号加上"
                f"账套前缀（如 A-{payment_no}、B-{payment_no}）后再导入"))
    return None


def _stored_payment(s: Session, payment_no: str) -> list[Payment]:
    """The stored allocations of a number: one payment (the import never stores two)."""
    return list(s.exec(select(Payment).where(Payment.payment_no == payment_no)
                       .order_by(Payment.invoice_no)).all())


def _stored_said(s: Session, payment_no: str, stored: list[Payment]) -> str:
    was = stored[0]
    return (f"回款单号 {payment_no} 已登记为客户“{_name(s, was.customer_id)}”{was.paid_on} 的回款"
            f"（核销发票 {_labels(stored)}），")


def _not_the_same(was_owner: int | None, was_on: dt.date, owner: int | None, on: dt.date
                  ) -> str | None:
    """Why a 回款单 of customer `owner` received `on` is not one of customer `was_owner`
    received `was_on` of the same number (a customer None: not known): "customer" (another
    customer on another day) or "year"; None when it may be that one. This is what identifies
    a 回款单 here: the hub keeps no 账套, so a number is one payment of one customer in one
    year (see `_PREFIX_ACCOUNT`); finance correcting the customer a 回款单 was booked to keeps
    its date, and may correct its date within the year."""
    if None not in (owner, was_owner) and owner != was_owner and on != was_on:
        return "customer"
    if on.year != was_on.year:
        return "year"
    return None


def _another_payment(s: Session, payment_no: str, first: PaymentRecord, owner: int | None,
                     stored: list[Payment], this: str = "此行") -> Problem | str | None:
    """Whether the payment of `first` (of customer `owner`, None when its invoices are not
    known) is not the stored payment of its number (`stored`): `_not_the_same`."""
    if not stored:
        return None
    was = stored[0]
    why = _not_the_same(was.customer_id, was.paid_on, owner, first.paid_on)
    if why is None:
        return None
    said = _stored_said(s, payment_no, stored)
    if why == "customer":
        return _at(first, "回款单号", (
            f"{said}{this}是客户“{_name(s, owner)}”{first.paid_on} 的：不是同一张回款单。"
            f"{_PREFIX_ACCOUNT}"
            f"（如 A-{payment_no}、B-{payment_no}）后再导入"))
    return _at(first, "回款日期", (
        f"{said}{this}的回款日期是 {first.paid_on}，不在同一年：不是同一张回款单。若收款单号按"
        f"年度重新编号，请在导出时给回款单号加上年度前缀（如 {first.paid_on.year}-{payment_no}）"
        "后再导入"))


def _void_payment(s: Session, payment_no: str, records: list[PaymentRecord],
                  summary: ImportSummary, problems: list, actor: str, skip: bool) -> None:
    """A voided 回款单 (作废): none of its money counts, whatever invoices it settled (known or
    not), so the stored allocations of its number are deleted — but only when they are the
    payment voided. A 回款单号 is unique only within a 账套 and a year; the hub keeps no 账套,
    and knows a payment by its number, its customer and its year, as an import in force does
    (`_two_payments`): a voided one of another customer on another day, or of another year,
    is another 账套's (or year's) 回款单, and is refused as an import in force would be,
    rather than taking the stored one's money away. A voided one whose invoices are all
    unknown (no customer to compare) and dated otherwise in the year cannot be told apart:
    refused, or skipped (`skip`) until its invoice is known, like a payment of an unknown
    invoice."""
    date_problem = _two_dates(payment_no, records)
    if date_problem:
        problems.append(date_problem)
        return
    found = {r.invoice_key: _invoice(s, r.invoice_key) for r in records}
    clash = _two_customers(s, payment_no, records, found)
    if clash:
        problems.append(clash)
        return
    stored = _stored_payment(s, payment_no)
    if not stored:
        return  # never stored (or voided before): nothing counts already
    first = records[0]
    owner = next((found[r.invoice_key].customer_id for r in records
                  if found[r.invoice_key] is not None), None)
    clash = _another_payment(s, payment_no, first, owner, stored, this="此作废行")
    if clash:
        problems.append(clash)
        return
    if owner is None and first.paid_on != stored[0].paid_on:
        was = stored[0]
        what = (f"回款 {payment_no}：已作废，但所列发票 {'、'.join(invoice_label(k) for k in found)} "
                f"不存在，无法确认它就是已登记的回款单 {payment_no}（客户“{_name(s, was.customer_id)}”"
                f"{was.paid_on} 的回款，核销发票 {_labels(stored)}；此作废行的回款日期是 {first.paid_on}）")
        if skip:
            summary.skipped.append(f"{what}，暂不撤销")
        else:
            problems.append(_at(first, "发票号", (
                f"{what}：请先导入该发票；若是两个账套（或银行账户）各自编号的收款单，请在导出时给"
                f"回款单号加上账套前缀（如 A-{payment_no}、B-{payment_no}）后再导入")))
        return
    gone = _drop_allocations(s, payment_no, [], actor)
    summary.removed += len(gone)
    summary.moved.append(f"回款 {payment_no}：已作废，撤销对发票 {_labels(gone)} 的核销")


def _name(s: Session, customer_id: int) -> str:
    customer = s.get(Customer, customer_id)
    return customer.legal_name if customer else str(customer_id)


def _unknown_blue(record: ReceivableRecord) -> str:
    return (f"红字发票 {invoice_label(record.key)}：冲销的蓝字发票 {invoice_label(record.reverses)} "
            "未找到（请先导入该蓝字发票，或把它与红字发票放在同一文件中）")


def _red_letter_problem(s: Session, record: ReceivableRecord, customer_id: int) -> str | None:
    """What is wrong with a red-letter invoice against the blue one it names: "unknown" when
    that is not on file, else a message, or None."""
    blue = _invoice(s, record.reverses)
    if blue is None:
        return "unknown"
    if blue.reverses is not None:
        return (f"红字发票 {invoice_label(record.key)}：原发票 {invoice_label(record.reverses)}"
                "本身是红字发票，原发票号码须填被冲销的蓝字发票")
    if blue.customer_id != customer_id:
        return (f"红字发票 {invoice_label(record.key)} 的客户“{record.customer_name}”与蓝字发票 "
                f"{invoice_label(record.reverses)} 的客户“{_name(s, blue.customer_id)}”不同")
    return None


def _over_reversed(s: Session, touched: dict[str, ReceivableRecord]) -> list:
    """A blue invoice whose red-letter invoices (stored and of this import) reverse more than
    its amount, named at the row that touched it last."""
    problems = []
    for key, record in touched.items():
        blue = _invoice(s, key)
        if blue is None or blue.reverses is not None:
            continue
        red = s.exec(select(ReceivableInvoice).where(ReceivableInvoice.reverses == key)
                     .order_by(ReceivableInvoice.invoice_no)).all()
        total = -sum((r.amount for r in red), Decimal("0"))
        if total > blue.amount:
            problems.append(_at(record, record.amount_from, (
                f"红字发票 {'、'.join(invoice_label(r.invoice_no) for r in red)} 冲销蓝字发票 "
                f"{invoice_label(key)} 合计 {yuan(total)}，超过该发票金额 {yuan(blue.amount)}"
                "：红冲金额不能超过原蓝字发票金额")))
    return problems


def _over_refunded(s: Session, touched: dict[str, ReceivableRecord | PaymentRecord]) -> list:
    """A red-letter invoice with more money allocated to it (stored and of this import) than
    its amount, named at the row that touched it last. Money on a red invoice is given back
    to the customer for the part of the blue invoice it reverses (see
    `models.rebates.payment_rate`): finance's 核销 of a 收款退款单 against a red 应收单 is
    bounded by it, so more is a wrong allocation, not a larger refund."""
    problems = []
    for key, record in touched.items():
        red = _invoice(s, key)
        if red is None or red.amount >= 0:
            continue
        paid = s.exec(select(Payment).where(Payment.invoice_no == key)
                      .order_by(Payment.payment_no)).all()
        total = sum((p.amount for p in paid), Decimal("0"))
        if total > -red.amount:
            problems.append(_at(record, record.amount_from, (
                f"回款 {'、'.join(p.payment_no for p in paid)} 核销红字发票 {invoice_label(key)} "
                f"合计 {yuan(total)}，超过该红字发票金额 {yuan(-red.amount)}：核销在红字发票上的是"
                "退给客户的款项，不能超过红字发票冲销的金额（多收的款项请核销到其他发票或转预收）")))
    return problems


def _over_allocated(s: Session, touched: dict[str, PaymentRecord]) -> list:
    """A blue invoice with more money allocated to it (stored and of this import, less what
    was refunded through its red-letter invoices) than is due on it (its amount less its
    red-letter invoices; nothing when marked reversed in full, 已红冲, as the payment rate
    counts it), named at the payment row that touched it last. A 收款单 settling
    several invoices allocates each its share (本次核销金额); its total on every invoice
    would count the money once per invoice, and overpaid invoices raise the payment rate.
    Money on an invoice due nothing would count nowhere: it was moved to another invoice, or
    given back through the red-letter invoice, which the export must then bring."""
    problems = []
    for key, record in touched.items():
        blue = _invoice(s, key)
        if blue is None or blue.reverses is not None:
            continue
        reds = s.exec(select(ReceivableInvoice.invoice_no, ReceivableInvoice.amount)
                      .where(ReceivableInvoice.reverses == key)).all()
        due = (Decimal("0") if blue.reversed_in_full
               else blue.amount + sum((amount for _, amount in reds), Decimal("0")))
        paid = s.exec(select(Payment).where(Payment.invoice_no == key)
                      .order_by(Payment.payment_no)).all()
        refunded = sum(s.exec(select(Payment.amount).where(
            Payment.invoice_no.in_([no for no, _ in reds]))).all(), Decimal("0"))
        total = sum((p.amount for p in paid), Decimal("0")) - refunded
        if total > due:
            less = f"（已扣除红字发票上退回的 {yuan(refunded)}）" if refunded else ""
            if blue.reversed_in_full:
                after, advice = (f"（蓝字发票 {yuan(blue.amount)} 已红冲）", (
                    "已红冲的发票不再应收，其上的回款请改核销到其他发票，或与红字发票及退回款项的"
                    "核销（收款退款单）一并导入"))
            else:
                after = f"（蓝字发票 {yuan(blue.amount)}，扣除红字发票后）" if reds else ""
                advice = ("一张收款单核销多张发票时，每张发票只计本次核销金额（请导出「本次核销金额」"
                          "列），多收的款项请核销到其他发票或转预收")
            problems.append(_at(record, record.amount_from, (
                f"回款 {'、'.join(p.payment_no for p in paid)} 核销发票 {invoice_label(key)} "
                f"合计 {yuan(total)}{less}，超过该发票金额 {yuan(due)}{after}：{advice}")))
    return problems


def _after_today(column: str, on: dt.date, advice: str) -> str | None:
    """What is said of a fact dated `on` after today's business date — a mistyped year
    (2062 for 2026, 9999-12-31) — in its date column; None when it is not. Invoices,
    payments, deliveries and returns are all facts of the past."""
    today = business_date()
    if on <= today:
        return None
    return f"{column} {on} 晚于今天（{today}）：{advice}"


def _future_dates(invoices: tuple[ReceivableRecord, ...],
                  payments: tuple[PaymentRecord, ...]) -> list:
    """Invoices issued and payments received after today's business date (voided ones
    count nowhere): `_after_today`. An invoice's 到期日 may be later."""
    found = [(r, "开票日期", _after_today("开票日期", r.issued_on, "发票不能在将来开具，请核对年份后"
                                        "再导入（到期日可以是将来的日期）"))
             for r in invoices if not r.voided]
    found += [(r, "回款日期", _after_today("回款日期", r.paid_on, "尚未收到的款项不能登记为回款，"
                                         "请核对年份后再导入"))
              for r in payments if not r.voided]
    # a file's row is named by `_at`; a record of a sync page by its number
    return [_at(r, column, message if r.at else f"{_record_label(r)}：{message}")
            for r, column, message in found if message]


def _record_label(record: ReceivableRecord | PaymentRecord) -> str:
    if isinstance(record, PaymentRecord):
        return f"回款 {record.payment_no}（发票 {invoice_label(record.invoice_key)}）"
    return f"发票 {invoice_label(record.key)}"


def _tax_added(invoices: tuple[ReceivableRecord, ...]) -> list[str]:
    """What the summary says of files whose invoices are due 金额 + 税额 (no 价税合计)."""
    counts: dict[str, int] = defaultdict(int)
    for record in invoices:
        if record.tax_added:
            counts[record.at[0] if record.at else ""] += 1
    return [f"{source or '本次导入'}：没有「价税合计」列，{n} 张发票的应收金额按「金额」（不含税）+"
            "「税额」计算" for source, n in counts.items()]


def _drop_voided_invoice(s: Session, record: ReceivableRecord, summary: ImportSummary,
                         problems: list, actor: str, skip: bool) -> None:
    """A voided invoice (作废) is due no more: its stored row is deleted (op log `delete`).
    Payments still allocated to it (after this import's payments) would lose their invoice:
    refused — or skipped (`skip`, the sync: the export moving them may come in a later page,
    which a refusal would never let it read) — until finance re-allocates or voids them.
    One never stored is ignored, whatever its customer."""
    row = _invoice(s, record.key)
    if row is None:
        return
    paid = s.exec(select(Payment.payment_no).where(Payment.invoice_no == row.invoice_no)
                  .order_by(Payment.payment_no)).all()
    if paid:
        what = f"发票 {invoice_label(record.key)}：已作废，但回款 {'、'.join(paid)} 仍核销在该发票上"
        if skip:
            summary.skipped.append(f"{what}，暂不撤销该发票")
        else:
            problems.append(_at(record, "作废状态",
                                f"{what}：请先导入这些回款单改核销到其他发票（或已作废）的记录"))
        return
    record_delete(s, row, actor)
    s.delete(row)
    s.flush()
    summary.moved.append(f"发票 {invoice_label(record.key)}：已作废，不再计入应收")


def _at(record: ReceivableRecord | PaymentRecord, column: str, message: str) -> Problem | str:
    """A problem of a record, at its file, row and column when it was read from a file."""
    return Problem(*record.at, column, message) if record.at else message


def _drop_allocations(s: Session, payment_no: str, keep: list[str], actor: str
                      ) -> list[Payment]:
    """Delete (op log `delete`) the stored allocations of a payment to invoices other than
    `keep`; returns them."""
    stale = s.exec(select(Payment).where(Payment.payment_no == payment_no,
                                         Payment.invoice_no.not_in(keep))
                   .order_by(Payment.invoice_no)).all()
    for row in stale:
        record_delete(s, row, actor)
        s.delete(row)
    s.flush()
    return list(stale)


def _labels(rows: list[Payment]) -> str:
    return "、".join(invoice_label(r.invoice_no) for r in rows)


def _drop_moved(s: Session, payment_no: str, listed: list[str], summary: ImportSummary,
                actor: str) -> None:
    """Delete the stored allocations of a payment to invoices other than `listed`."""
    stale = _drop_allocations(s, payment_no, listed, actor)
    if not stale:
        return
    summary.removed += len(stale)
    summary.moved.append(
        f"回款 {payment_no}：不再核销发票 {_labels(stale)}，"
        f"现核销发票 {'、'.join(invoice_label(key) for key in listed)}")


def _adopt_uncoded(s: Session, record: ReceivableRecord, customer_id: int,
                   summary: ImportSummary, actor: str) -> ReceivableInvoice | None:
    """An old-style invoice stored before its 发票代码 was read (keyed by the bare 8-digit
    number) of the same customer is this one: it is stored again under its full key and its
    payments follow (new row, payments moved, old row deleted: the keys are foreign keys)."""
    old = s.exec(select(ReceivableInvoice).where(
        ReceivableInvoice.invoice_no == record.invoice_no,
        ReceivableInvoice.customer_id == customer_id)).first()
    if old is None:
        return None
    row = ReceivableInvoice(**old.model_dump(exclude={"id", "invoice_no"}),
                            invoice_no=record.key)
    s.add(row)
    record_create(s, row, actor)
    for payment in s.exec(select(Payment).where(Payment.invoice_no == old.invoice_no)).all():
        apply_changes(s, payment, actor, invoice_no=row.invoice_no)
    s.flush()
    record_delete(s, old, actor)
    s.delete(old)
    s.flush()
    summary.moved.append(f"发票 {record.invoice_no}：补记发票代码 {record.invoice_code}"
                         "（此前按号码登记，已改按发票代码+号码登记，其回款随之转入）")
    return row


def import_receivables_file(db_url: str, path: Path, actor: str, skip_unknown: bool = False
                            ) -> ImportSummary:
    """A finance export file, all of it or nothing. A refusal lists every problem of the file
    at once: bad cells, and also duplicates and unknown customers or invoices, which the strict
    read only gets to once every cell is good."""
    try:
        invoices, payments = read_receivables_file(path)
    except PermanentError as exc:
        if not isinstance(exc.__cause__, TableError):
            raise ImportRefused([str(exc)]) from exc
        with session_scope(db_url) as s:
            found = [*exc.__cause__.problems, *_record_problems(s, path, skip_unknown)]
        found = sorted(dict.fromkeys(found), key=lambda p: (p.source, p.row or 0))
        # the strict read lists its first problems and counts the others
        raise ImportRefused(found, more=exc.__cause__.more) from exc
    with (registered_import(db_url, "receivables", Path(path).name, actor) as finish,
          session_scope(db_url) as s):
        lock_receivables(s)
        summary = store_receivables(s, invoices, payments, source="import", actor=actor,
                                    skip_unknown=skip_unknown)
        finish(s)
    return summary


def _raw_key(r) -> str:
    return invoice_key(r["发票代码"].translate(HALF_WIDTH) or None,
                       r["发票号"].translate(HALF_WIDTH))


# the tables of an export, the columns a record needs for its key, and its key
_RECORD_KEYS = ((INVOICE_COLUMNS, ("发票号",), _raw_key),
                (PAYMENT_COLUMNS, ("回款单号", "发票号"), lambda r: (r["回款单号"], _raw_key(r))))


def _record_problems(s: Session, path: Path, skip_unknown: bool) -> list[Problem]:
    """From the raw cells of an export whose strict read failed: numbers given twice in a
    table, invoices of customers not on file, payments of invoices known nowhere (the last
    two only when they are errors, not skipped). Rows without their key, with a 发票代码
    that does not go with the number, or with a NUL character (which no query may carry) are
    the strict read's problem already."""
    problems: list[Problem] = []
    invoice_keys: set[str] = set()
    payments = []
    try:
        sheets = load_sheets(path)
    except TableError:
        return []  # already the strict read's problem
    for sheet in sheets:
        for columns, key_columns, key in _RECORD_KEYS:
            try:
                table = sheet.table(columns)
            except TableError:
                continue  # another kind of table, or a header problem already reported
            rows = tuple(r for r in table.rows if all(r[c] for c in key_columns)
                         and not r.has_nul
                         and invoice_code_problem(r["发票号"], r["发票代码"]) is None)
            try:
                no_duplicates(dataclasses.replace(table, rows=rows), rows, key,
                              key_columns[0])
            except TableError as exc:
                problems += exc.problems
            if columns is PAYMENT_COLUMNS:
                payments += rows
                continue
            invoice_keys.update(_raw_key(r) for r in rows)
            problems += [Problem(r.source, r.number, "客户名称",
                                 _unknown_customer(_raw_key(r), r["客户名称"]))
                         for r in rows if not skip_unknown and r["客户名称"]
                         and not _says_voided(r) and _customer_for(
                             s, r["统一社会信用代码"].upper() or None, r["客户名称"]) is None]
    problems += [Problem(r.source, r.number, "发票号", _unknown_invoice(r["回款单号"], _raw_key(r)))
                 for r in payments if not skip_unknown and _raw_key(r) not in invoice_keys
                 and not _says_voided(r) and _invoice(s, _raw_key(r)) is None]
    return problems


def _says_voided(row) -> bool:
    """A payment row marked voided (its invoice need not be known); a bad mark is the strict
    read's problem."""
    try:
        return parse_voided(row["作废状态"])
    except CellError:
        return False


class SyncUnfinished(Exception):
    """A receivables sync stopped at a page it could not store (`sync_unfinished`)."""


def sync_unfinished(exc: Exception) -> str | None:
    """What the clerk at `salesops receivables sync` and the engineer looking at the flow run
    read when the sync stopped at a refused page — finance's system sent records that cannot
    be read (PermanentError `bad-body`, its problems listed) or the hub refused them
    (ImportRefused) —: the problems, that nothing of the page was written, and how to go on.
    None for other failures (finance unreachable, the token refused …)."""
    if isinstance(exc, ImportRefused):
        cause = (f"财务系统发来的一页记录有 {exc.count} 处问题，本页未导入："
                 + "".join(f"\n  - {p}" for p in exc.problems))
    elif isinstance(exc, PermanentError) and exc.code == "bad-body":
        cause = str(exc)  # in Chinese, a problem a line
    else:
        return None
    return (f"应收/回款同步未完成：{cause}\n本页未写入任何数据，此前读取的页（如有）已保存。"
            "请财务系统更正上述记录后重新同步（salesops receivables sync，或重新运行 "
            "receivables-sync 流程）：会重新读取本页，已保存的记录不会重复。")


def sync_receivables_or_say(hub: Hub, actor: str = "flow:receivables-sync") -> ImportSummary:
    """sync_receivables, a stop at a refused page raised as SyncUnfinished saying it
    (`sync_unfinished`): what the flow and the CLI run."""
    try:
        return sync_receivables(hub, actor)
    except (ImportRefused, PermanentError) as exc:
        said = sync_unfinished(exc)
        if said is None:
            raise
        raise SyncUnfinished(said) from exc


@flow(name="receivables-sync")
def sync_receivables_flow() -> dict:
    """Daily: new receivables and payments from finance (they feed the payment rate)."""
    summary = sync_receivables_or_say(current_hub())
    logger = get_run_logger()
    logger.info("receivables: %s", summary.as_dict())
    if summary.skipped:
        logger.warning("skipped %d records (read again next time):\n%s",
                       len(summary.skipped), "\n".join(summary.skipped))
    return summary.as_dict()


SYNC_RETRY = "（下次同步会重新读取，客户建档、发票到达或回款改核销后即补录）"


def sync_receivables(hub: Hub, actor: str = "flow:receivables-sync") -> ImportSummary:
    """Pull new receivables pages through the finance connector; each page is stored in one
    transaction together with the cursor after it, so a crash repeats at most one page.

    A page that skips records (an invoice of a customer not on file yet, a payment of an
    invoice not known yet) keeps the stored cursor before it: the pages after it are read and
    stored all the same, and every later sync reads again from that page until nothing of it
    is skipped. Of what a sync reads, only the last version of each invoice and of each 回款单
    is stored (`_sync_pass`; a 回款单 replaced only by a later listing of the same payment, not
    by another 收款单 reusing its number): an earlier page's version of a receipt that a later
    page moved to another invoice never comes back, not even for a moment. The skipped records are
    listed each time.

    When records were skipped and later pages of the same sync brought new ones (the day's
    payments read before the day's invoices: 回款 sorts before 应收), the pages are read once
    more from the held position, so that those payments are stored now, not a day later."""
    name = f"receivables:{hub.finance.__class__.__name__}"
    total, news_after_hold = _sync_pass(hub, name, actor)
    if total.skipped and news_after_hold:
        again, _ = _sync_pass(hub, name, actor)
        # the second pass re-reads what the first one stored (unchanged, not counted twice)
        total = ImportSummary(created=total.created + again.created,
                              updated=total.updated + again.updated,
                              unchanged=total.unchanged, skipped=again.skipped,
                              removed=total.removed + again.removed,
                              moved=total.moved + again.moved,
                              notes=total.notes + again.notes)
    return total


def _sync_pass(hub: Hub, name: str, actor: str) -> tuple[ImportSummary, bool]:
    """Read every page after the stored cursor, then store them in order, each page with the
    records whose last version it holds (an invoice by its key, a 回款单 whole: see
    `_replaced_later`): pages read again behind a held cursor hold older versions of what
    later pages changed since (a receipt moved to another invoice, that invoice paid in full
    by another receipt since), which would move money back and forth, or be refused — every
    day, the sync stuck at that page. Each page's transaction takes the receivables lock
    first (`lock_receivables`); a pass that then finds the stored cursor moved by another
    sync (the daily one and a clerk's at once) stops there: that sync stored what it read.
    Also whether anything was created or updated after the first page that skipped records."""
    with session_scope(hub.db_url) as s:
        row = s.get(ConnectorCursor, name)
        cursor = row.cursor if row else None
    on_file = cursor  # the stored cursor as this pass left it
    pages: list[ReceivablesPage] = []
    stopped: Exception | None = None  # a page that could not be read: those before it kept
    while True:
        try:
            page = hub.finance.fetch_receivables(cursor)
        except Exception as exc:  # noqa: BLE001 - raised once the pages read are stored
            stopped = exc
            break
        pages.append(page)
        if page.cursor is None or page.cursor == cursor:
            break
        cursor = page.cursor
    last_invoice = {r.key: i for i, page in enumerate(pages) for r in page.invoices}
    latest = {r.key: r for page in pages for r in page.invoices}  # each invoice's last version
    listed: dict[str, list[int]] = defaultdict(list)  # 回款单号 → the pages listing it, in order
    for i, page in enumerate(pages):
        for payment_no in dict.fromkeys(r.payment_no for r in page.payments):
            listed[payment_no].append(i)
    total = ImportSummary()
    news_after_hold = held = False
    for i, page in enumerate(pages):
        invoices = tuple(r for r in page.invoices if last_invoice[r.key] == i)
        # a page without records (the last one) writes no facts: a settlement has nothing to
        # wait for, the cursor alone is not news
        with (registered_import(hub.db_url, "receivables", name, actor)
              if page.invoices or page.payments else nullcontext(lambda s: None) as finish,
              session_scope(hub.db_url) as s):
            lock_receivables(s)
            row = s.get(ConnectorCursor, name)
            if (row.cursor if row else None) != on_file:
                total.notes.append("另一次应收/回款同步已在本次读取期间保存了这些记录，本次不再重复写入")
                finish(s)
                break
            replaced = _replaced_later(s, pages, i, listed, latest)
            payments = tuple(r for r in page.payments if r.payment_no not in replaced)
            done = store_receivables(s, invoices, payments, source="finance",
                                     actor=actor, skip_unknown=True)
            # a page stores its invoices before its payments: only later pages can bring
            # the invoice of a payment skipped
            news_after_hold = news_after_hold or (held and bool(done.created + done.updated))
            held = held or bool(done.skipped)
            if page.cursor is not None and not held:
                row = row or ConnectorCursor(name=name)
                row.cursor, row.updated_at = page.cursor, utcnow()
                s.add(row)
                on_file = page.cursor
            finish(s)
        done.skipped = [f"{item}{SYNC_RETRY}" for item in done.skipped]
        total.add(done)
    if stopped is not None:
        raise stopped
    return total, news_after_hold


def _replaced_later(s: Session, pages: list[ReceivablesPage], i: int,
                    listed: dict[str, list[int]], latest: dict[str, ReceivableRecord]
                    ) -> set[str]:
    """The 回款单号 of page `i` whose next listing (`listed`: the pages listing each number) is
    the same 回款单 (`_not_the_same`; each the customer of its invoices by `_sync_owner`):
    that later version replaces this one, which is not stored. A later listing of another
    回款单 of the number (another year, another customer on another day) replaces nothing:
    this one is stored and the later one refused against it, as when the two pages are read
    by two syncs — no payment is dropped without a word."""
    mine: dict[str, list[PaymentRecord]] = defaultdict(list)
    for record in pages[i].payments:
        mine[record.payment_no].append(record)
    replaced = set()
    for payment_no, records in mine.items():
        after = [j for j in listed[payment_no] if j > i]
        if not after:
            continue
        later = [r for r in pages[after[0]].payments if r.payment_no == payment_no]
        if _not_the_same(_sync_owner(s, records, latest), records[0].paid_on,
                         _sync_owner(s, later, latest), later[0].paid_on) is None:
            replaced.add(payment_no)
    return replaced


def _sync_owner(s: Session, records: list[PaymentRecord],
                latest: dict[str, ReceivableRecord]) -> int | None:
    """The customer of a 回款单's records read by a sync: the first of its invoices' whose
    customer is known, as the last version of the invoice the sync read says (its customer
    on file), else as stored; None when none is known."""
    for record in records:
        invoice = latest.get(record.invoice_key)
        if invoice is None:
            stored = _invoice(s, record.invoice_key)
            if stored is not None:
                return stored.customer_id
        elif not invoice.voided:
            customer = _customer_for(s, invoice.customer_uscc, invoice.customer_name)
            if customer is not None:
                return customer.id
    return None


# --- deliveries and returns --------------------------------------------------------------

# The quantity that moved. ERP exports of a 发货单 / 销售出库单 (用友 U8, 金蝶 K/3 Cloud) carry
# 应发数量 (to ship, as ordered) and 实发数量 (what left the warehouse), sometimes only the
# latter; a 退货单 has 应退数量 / 实退数量. A rebate counts what moved: 实发数量 when the file
# has it, else 数量 (which, beside 应发数量, is the actual one); 应发数量 never counts.
#
# The quantity is counted in the order line's unit (kept on the line when it was ordered,
# whatever the catalogue says now): the import converts nothing, so a line whose export says
# another unit is refused. The unit of the quantity is
# the column its header names (`实发数量(基本单位)`: the 基本单位 column), else 单位 / 计量单位 /
# 主计量单位 (U8's 数量 is in its 主计量单位), else 库存单位 (K/3 Cloud's 实发数量 / 实退数量 are
# in its 库存单位; U8's 库存单位 is the auxiliary unit of 件数, hence last). Otherwise not read:
# 基本单位, 销售单位, 计价单位 …, each the unit of another quantity of the line (K/3 Cloud's
# 基本数量 / 销售数量 / 计价数量).
UNIT_COLUMNS = (
    Column("单位", required=False, aliases=("计量单位", "主计量单位", "unit")),
    *(Column(kind, required=False) for kind in sorted(UNIT_KINDS)),
)
DELIVERY_COLUMNS = (
    Column("发货单号", aliases=("出库单号", "delivery_no")),
    Column("意向单号", aliases=("订单号", "order_id")),
    Column("行号", required=False, aliases=("line_no",)),
    Column("物料编码", required=False, aliases=("sku",)),
    Column("实发数量", required=False, aliases=("实际发货数量", "实际出库数量", "shipped_quantity")),
    Column("应发数量", required=False, aliases=("应出库数量", "应发货数量", "quantity_to_ship")),
    Column("数量", required=False, aliases=("发货数量", "quantity")),
    Column("发货日期", aliases=("出库日期", "delivered_on")),
    *UNIT_COLUMNS,
)
RETURN_COLUMNS = (
    Column("退货单号", aliases=("换货单号", "return_no")),
    Column("意向单号", aliases=("订单号", "order_id")),
    Column("行号", required=False, aliases=("line_no",)),
    Column("物料编码", required=False, aliases=("sku",)),
    Column("实退数量", required=False, aliases=("实际退货数量", "returned_quantity")),
    Column("应退数量", required=False, aliases=("申请退货数量", "退货申请数量", "应退货数量",
                                                "quantity_to_return")),
    Column("数量", required=False, aliases=("退货数量", "quantity")),
    Column("退货日期", aliases=("日期", "returned_on")),
    Column("类型", required=False, aliases=("退货类型", "kind")),
    Column("原因", required=False, aliases=("reason",)),
    *UNIT_COLUMNS,
)
# 退货补货: K/3 Cloud's 退货类型 of a return whose goods are replaced (an exchange)
RETURN_KINDS = {"退货": "return", "换货": "exchange", "退货补货": "exchange", "return": "return",
                "exchange": "exchange"}
# a blank 类型 is the document's: an exchange where its number is headed 换货单号
EXCHANGE_NUMBER_HEADERS = frozenset({header_key("换货单号")})


@dataclass(frozen=True)
class _Movement:
    row: int
    number: str
    order_id: str
    line_no: int | None
    sku: str | None
    quantity: int  # 0: nothing moved on this line (`not_moved` says so), not stored
    on: dt.date | None
    kind: str = "return"
    reason: str | None = None
    source: str = ""  # the file, or file[worksheet], it was read from
    not_moved: str | None = None  # why the line is no delivery / return (import summary)
    # the unit the file says the quantity is in: (column, unit, how the file says it)
    units: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class _Quantities:
    """Which columns of a sheet hold the quantity that moved (`actual`) and the one that was to
    move (`planned`, or None). `moved_only`: the file tells the two apart, so a line with
    nothing moved is a line not (yet) shipped or returned, skipped; without that, 数量 may be
    either, and 0 is an error as ever."""

    actual: str
    planned: str | None
    moved_only: bool


def _quantities(present: tuple[str, ...] | set[str], returns: bool) -> _Quantities:
    actual, planned = ("实退数量", "应退数量") if returns else ("实发数量", "应发数量")
    if actual in present:
        # beside 实发数量, a plain 数量 is the quantity to ship (only read when 实发数量 is blank)
        other = planned if planned in present else ("数量" if "数量" in present else None)
        return _Quantities(actual, other, True)
    if planned in present:
        return _Quantities("数量", planned, True)
    return _Quantities("数量", None, False)


def _quantity_column_problem(table, returns: bool) -> Problem | None:
    """The sheet has no column of the quantity that moved: missing, or only the planned one."""
    actual, planned = ("实退数量", "应退数量") if returns else ("实发数量", "应发数量")
    if actual in table.columns or "数量" in table.columns:
        return None
    columns = RETURN_COLUMNS if returns else DELIVERY_COLUMNS
    spell = {c.name: c for c in columns}
    if planned in table.columns:
        meant, moved = ("申请退货", "退回") if returns else ("计划发货", "出库")
        return Problem(table.source, table.header_row, planned,
                       f"只有{planned}（{meant}的数量），没有{actual}：返利按实际{moved}的数量计算，"
                       f"不能用{planned}代替；请从 ERP 导出含{actual}的单据后再导入"
                       f"{table.unread(actual, '数量')}")
    also = "、".join((*spell[actual].aliases, "数量", *spell["数量"].aliases))
    return Problem(table.source, table.header_row, actual,
                   f"缺少必填列（也可写作：{also}）{table.unread(actual, '数量')}")


def _movement(row, table: Table, number_column: str, date_column: str, returns: bool
              ) -> _Movement:
    line_no = row.get("行号", lambda t: parse_int(t, minimum=1)) if row["行号"] else None
    sku = row.get("物料编码", parse_text) if row["物料编码"] else None
    if line_no is None and sku is None:
        row.fail("行号", "须填写行号或物料编码")
    kind, reason = "return", None
    if returns:
        kind = RETURN_KINDS.get(row["类型"].strip()) if row["类型"].strip() else (
            "exchange" if header_key(table.headers.get("退货单号", ""))
            in EXCHANGE_NUMBER_HEADERS else "return")
        if kind is None:
            row.fail("类型", f"类型须为“退货”“换货”或“退货补货”：{row['类型']!r}")
        reason = row.get("原因", lambda t: parse_text(t, max_length=200)) if row["原因"] else None
    number = row.get(number_column, lambda t: parse_code(t, max_length=40))
    order_id = row.get("意向单号", parse_text)
    q = _quantities(table.columns, returns)
    not_moved = _not_moved(row, q, returns) if q.moved_only else None
    if not_moved is not None:
        # not a delivery / return: its date is not needed, but the note names the line
        on = row.get(date_column, _movement_date) if row[date_column] else None
        where = f"第 {line_no} 行" if line_no else f"物料 {sku}"
        note = (f"{row.source} 第{row.number}行：{'退货' if returns else '发货'}单 {number} "
                f"意向单 {order_id} {where}{not_moved}")
        return _Movement(row.number, number, order_id, line_no, sku, 0, on, kind, reason,
                         not_moved=note)
    quantity = row.get(q.actual, _returned_quantity if returns else _delivered_quantity)
    on = row.get(date_column, _movement_date)
    if on is not INVALID:
        late = _after_today(date_column, on, f"尚未{'退回' if returns else '发出'}的货物不能登记为"
                                             f"{'退货' if returns else '发货'}，请核对年份后再导入")
        if late:
            on = row.fail(date_column, late)
    return _Movement(row.number, number, order_id, line_no, sku, quantity, on, kind, reason,
                     units=_said_units(row, table, q.actual))


def _movement_date(text: str) -> dt.date:
    # warehouse and e-commerce ERPs write 出库日期 / 发货日期 with the time the goods left (an
    # Excel date-time, `2026/10/12 14:35` in a CSV), local time: the date is what counts, as
    # for the receivables' 开票日期 / 到账时间
    return parse_date(text, time_of_day=True)


def _said_units(row, table: Table, quantity: str) -> tuple[tuple[str, str, str], ...]:
    """The units the row says its quantity is in: the unit column's cell (blank: the order's
    unit, as without the column; see `UNIT_COLUMNS` for which column) and a counting unit in
    the quantity's header (`实发数量(个)`; a kind of unit, `实发数量(基本单位)`, names none
    but the column to read)."""
    said = []
    header = table.headers.get(quantity, "")
    unit = header_unit(normalize_header(header))
    kind = unit.suffix if unit is not None and unit.suffix in UNIT_KINDS else None
    column = next((c for c in (kind, "单位", "库存单位") if c in table.columns), None)
    if column is not None and row[column]:
        said.append((column, row[column], f"的单位是“{row[column]}”"))
    if unit is not None and unit.counting:
        said.append((quantity, unit.counting, f"按表头「{header}」以“{unit.counting}”计"))
    return tuple(said)


def _not_moved(row, q: _Quantities, returns: bool) -> str | None:
    """Why the line moved nothing (its note, e.g. `实发数量为 0（应发数量 5）：未发货，不计入`;
    '' when the row is refused for its quantities), or None when it moved something (or its
    quantity is an error the parser will name). A blank
    actual quantity is 0 when the planned one is above 0 (U8 and Kingdee reports leave zeros
    blank); blank with nothing planned is an error: nothing says whether the line shipped."""
    text = row[q.actual]
    if text:
        try:
            if parse_int(text) != 0:
                return None
        except CellError:
            return None  # the quantity parser names it
    planned = None
    if q.planned and row[q.planned]:
        planned = row.get(q.planned, lambda t: parse_int(t, minimum=0))
    what = "未退回" if returns else "未发货"
    if not text and not planned and planned is not INVALID:
        row.fail(q.actual, f"不能为空（{what}的行请填 0）")
    if row.problems:
        return ""  # the row is refused (its quantities named): nothing more to parse or say
    besides = f"（{q.planned} {planned}）" if planned is not None else ""
    return f"{q.actual}为{'空' if not text else ' 0'}{besides}：{what}，不计入"


def _delivered_quantity(text: str) -> int:
    value = parse_int(text)
    if value < 0:
        # U8 and Kingdee list a return as a 红字 (negative) delivery
        raise CellError(f"发货数量须大于零：{text!r}（负数是红字发货单/退货：请从 ERP 导出退货单，"
                        "用 salesops returns import 导入）")
    if value < 1:
        raise CellError(f"发货数量须大于零：{text!r}")
    return value


def _returned_quantity(text: str) -> int:
    value = parse_int(text)
    if value < 0:  # a return exported the red-ink way: the quantity is what came back
        raise CellError(f"退货数量请填正数（退回的数量）：{text!r}")
    if value < 1:
        raise CellError(f"退货数量须大于零：{text!r}")
    return value


def _read_movements(path: Path, returns: bool) -> tuple[str, list[_Movement], list[str]]:
    """Every worksheet of the export (an ERP writes one per month, or a clerk adds one): a
    sheet whose header rows (`Sheet.header_rows`: where `Sheet.table` searches, the first 10
    non-empty rows) hold no document-number column (a cover or notes sheet) is skipped and
    said (the notes returned), any other sheet must be a good table; all problems of all
    sheets at once. A workbook with a hidden worksheet holding data is refused
    (`load_sheets`)."""
    columns = RETURN_COLUMNS if returns else DELIVERY_COLUMNS
    number, date = ("退货单号", "退货日期") if returns else ("发货单号", "发货日期")
    try:
        sheets = load_sheets(path)
    except TableError as exc:
        raise ImportRefused(list(exc.problems), more=exc.more) from exc
    found: list[_Movement] = []
    problems, more, read = [], 0, 0
    passed: list[str] = []
    for sheet in sheets:
        # looked for where `Sheet.table` looks for the header: a sheet passed over is one it
        # could not read either; it is said, so that a sheet of deliveries under too long a
        # title block is not lost without a word
        if len(sheets) > 1 and not sheet.names_any(columns[:1]):
            passed.append(f"{Path(path).name}：工作表“{sheet.title}”的前 {HEADER_SEARCH_ROWS} 个非空行中没有"
                          f"「{number}」列（表头），未作为{'退货' if returns else '发货'}数据读取")
            continue
        read += 1
        try:
            table = sheet.table(columns)
            missing = _quantity_column_problem(table, returns)
            if missing is not None:
                problems.append(missing)
                continue
            moves = convert_rows(table.rows, lambda r: _movement(r, table, number, date,
                                                                 returns))
        except TableError as exc:
            problems += exc.problems
            more += exc.more
            continue
        found += [dataclasses.replace(m, source=table.source) for m in moves]
    if not read:  # no sheet has the column: say what the first one lacks
        try:
            sheets[0].table(columns)
        except TableError as exc:
            problems += exc.problems
    if problems:
        raise ImportRefused(problems, more=more)
    return Path(path).name, found, passed


def import_movements(db_url: str, path: Path, actor: str, *, returns: bool) -> ImportSummary:
    """Deliveries (`returns=False`) or returns/exchanges of signed orders. Checked against the
    order: it exists and is signed, the line exists (by number or SKU), nothing is delivered
    beyond what was ordered (plus the replacements of exchanges) and nothing returned beyond
    what was delivered by that date; nothing is dated after today (`_after_today`). A row is
    keyed by (document number, order, order line); the file lists whole documents: a stored
    line of a listed document that the file no longer lists is deleted (`_drop_unlisted_lines`). The quantity is 实发数量 / 实退数量 when
    the file has it (see `_quantities`), counted in the order line's unit: a moved line the
    file says is in another unit (`UNIT_COLUMNS`, or `实发数量(个)`) is refused; a line that
    moved nothing (0, or blank beside a planned quantity) is no delivery / return: skipped
    and said in `summary.skipped`, and a stored line of its document is deleted like one the
    document no longer lists."""
    source, moves, passed = _read_movements(path, returns)
    what = "退货" if returns else "发货"
    problems: list[Problem] = []

    def fail(m: _Movement, column: str, message: str) -> None:
        problems.append(Problem(m.source, m.row, column, message))

    summary = ImportSummary(notes=passed)
    applied: set[tuple[str, int]] = set()
    # where the file lists each (order, line): (date, file or sheet, row), for the checks
    placed: dict[tuple[str, int], list[tuple[dt.date, str, int]]] = defaultdict(list)
    # the (order, line) rows of each document as the file lists them: the whole document
    listed: dict[str, set[tuple[str, int]]] = defaultdict(set)
    # one row per (document, order, line): a second row would overwrite the first one's
    # quantity (two lots of one line on a delivery note), so it is refused, not kept; one
    # that repeats the first in everything read is the same row given twice (delete it: its
    # quantity added would count goods that never moved)
    first_row: dict[tuple[str, str, int], _Movement] = {}
    number_column = "退货单号" if returns else "发货单号"
    table = SalesReturn if returns else Delivery
    with (registered_import(db_url, "returns" if returns else "deliveries", source, actor)
          as finish, session_scope(db_url) as s):
        lock_movements(s)  # the quantity checks below read every other import's rows committed
        orders = {o.id: o for o in s.exec(select(IntentOrder).where(
            IntentOrder.id.in_({m.order_id for m in moves})))}
        lines = defaultdict(dict)
        for ln in s.exec(select(IntentOrderLine).where(
                IntentOrderLine.order_id.in_(list(orders)))):
            lines[ln.order_id][ln.line_no] = ln
        signed = {q.order_id: q.signed_at for q in s.exec(select(Quote).where(
            Quote.order_id.in_(list(orders)), Quote.signed_at.is_not(None)))}
        for m in moves:
            if m.not_moved is not None:
                # no delivery / return, but its document is listed: a line of it stored before
                # (shipped then, 0 now) is dropped by `_drop_unlisted_lines`
                listed.setdefault(m.number, set())
                summary.skipped.append(m.not_moved)
                continue
            if m.order_id not in orders:
                fail(m, "意向单号", f"意向单不存在：{m.order_id}")
                continue
            if m.order_id not in signed:
                fail(m, "意向单号", f"意向单 {m.order_id} 尚未签署，不能登记{what}")
                continue
            by_sku = [ln for ln in lines[m.order_id].values() if ln.sku == m.sku]
            line = lines[m.order_id].get(m.line_no) if m.line_no else (
                by_sku[0] if len(by_sku) == 1 else None)
            if line is None:
                fail(m, "行号" if m.line_no else "物料编码",
                     f"意向单 {m.order_id} 没有{'第 ' + str(m.line_no) + ' 行' if m.line_no else '唯一的物料 ' + str(m.sku)}")
                continue
            if m.sku and line.sku != m.sku:
                fail(m, "物料编码", f"第 {line.line_no} 行的物料是 {line.sku}，不是 {m.sku}")
                continue
            mismatches = _unit_mismatches(m, line, what)
            if mismatches:
                problems += mismatches
                continue
            if returns and m.on < business_date(signed[m.order_id]):
                fail(m, "退货日期", "退货日期早于签署日期")
                continue
            seen = first_row.setdefault((m.number, m.order_id, line.line_no), m)
            if seen is not m:
                where = "" if seen.source == m.source else seen.source + " "
                same = f"同一{number_column}、意向单第 {line.line_no} 行"
                if _same_read(seen, m):
                    fail(m, number_column,
                         f"与{where}第{seen.row}行完全相同（{same}，数量 {m.quantity}，"
                         f"日期 {m.on:%Y-%m-%d}）：{REPEATED_ROW}")
                else:
                    fail(m, number_column,
                         f"与{where}第{seen.row}行重复（{same}）："
                         "同一单据的同一行请合并为一行（数量相加）后再导入")
                continue
            number_field = table.return_no if returns else table.delivery_no
            existing = s.exec(select(table).where(number_field == m.number,
                                                  table.order_id == m.order_id,
                                                  table.line_no == line.line_no)).first()
            applied.add((m.order_id, line.line_no))
            placed[(m.order_id, line.line_no)].append((m.on, m.source, m.row))
            listed[m.number].add((m.order_id, line.line_no))
            values = dict(quantity=m.quantity, **(
                {"returned_on": m.on, "kind": m.kind, "reason": m.reason} if returns
                else {"delivered_on": m.on}))
            keys = {"return_no" if returns else "delivery_no": m.number,
                    "order_id": m.order_id, "line_no": line.line_no}
            _upsert(s, existing, lambda **v: table(**keys, **v), values, summary, actor)
        s.flush()
        if not problems:
            applied |= _drop_unlisted_lines(s, table, listed, summary, actor)
        problems += _quantity_problems(s, source, applied, placed)
        if problems:
            s.rollback()
            raise ImportRefused(problems)
        finish(s)
    return summary


def _same_read(first: _Movement, other: _Movement) -> bool:
    """Two rows that read the same in everything but where they are."""
    return dataclasses.replace(first, row=0, source="") == dataclasses.replace(other, row=0,
                                                                               source="")


def _unit_mismatches(m: _Movement, line: IntentOrderLine, what: str) -> list[Problem]:
    """The row's quantity said to be in another unit than the order line's (the unit it was
    ordered in, whatever the catalogue says now): no conversion is known, so 120 个 on a line
    ordered in 箱 is refused, not counted as 120 箱."""
    unit = line.unit
    return [Problem(m.source, m.row, column,
                    f"{what}单 {m.number} 意向单 {m.order_id} 第 {line.line_no} 行（物料 {line.sku}）"
                    f"{said}，订单按“{unit}”订购：导入不做单位换算，不能把 {m.quantity} {given}当作 "
                    f"{m.quantity} {unit}计入；请在 ERP 中按订单的单位“{unit}”（销售单位）导出数量后再导入")
            for column, given, said in m.units if not same_unit(given, unit)]


def _drop_unlisted_lines(s: Session, table, listed: dict[str, set[tuple[str, int]]],
                         summary: ImportSummary, actor: str) -> set[tuple[str, int]]:
    """A file is authoritative for every document (发货单号 / 退货单号) it lists: a stored row of
    such a document on an (order, line) the file no longer lists is deleted (operation log
    `delete`; counted in `removed`, said in `moved`). The ERP re-sends a corrected document
    whole, and a line moved to another order line or order (the wrong SKU or order picked at
    first) would otherwise stay beside its correction and count twice. The settlement finds
    the deleted rows' orders in the operation log. Returns the (order, line) pairs touched."""
    returns = table is SalesReturn
    number_field = table.return_no if returns else table.delivery_no
    what = "退货单" if returns else "发货单"
    numbers = sorted(listed)
    touched: set[tuple[str, int]] = set()
    for i in range(0, len(numbers), 500):
        stored = s.exec(select(table).where(number_field.in_(numbers[i:i + 500]))
                        .order_by(number_field, table.order_id, table.line_no)).all()
        for row in stored:
            number = row.return_no if returns else row.delivery_no
            if (row.order_id, row.line_no) in listed[number]:
                continue
            on = row.returned_on if returns else row.delivered_on
            record_delete(s, row, actor)
            s.delete(row)
            touched.add((row.order_id, row.line_no))
            summary.removed += 1
            summary.moved.append(f"{what} {number}：已不含意向单 {row.order_id} 第 {row.line_no} 行"
                                 f"（原数量 {row.quantity}，{on:%Y-%m-%d}），该行已删除")
    s.flush()
    return touched


def _quantity_problems(s: Session, source: str, touched: set[tuple[str, int]],
                       placed: dict[tuple[str, int], list[tuple[dt.date, str, int]]]
                       ) -> list[Problem]:
    """After the file is applied (inside the transaction), per touched line: at every delivery
    date, delivered so far ≤ ordered + exchanged so far (an exchange's replacement is shipped
    again; the rebates' net quantity, delivered − returned, then never exceeds the order); at
    every return date, returned so far ≤ delivered so far. Each problem at the file's row of
    that line and date (`placed`), else its first row of that line."""
    problems = []

    def at(order_id: str, line_no: int, day: dt.date, message: str) -> Problem:
        rows = placed.get((order_id, line_no), [])
        on_day = [(src, row) for d, src, row in rows if d == day]
        src, row = (on_day or [(src, row) for _, src, row in rows] or [(source, None)])[0]
        return Problem(src, row, "数量", message)

    for order_id, line_no in sorted(touched):
        ordered = s.exec(select(IntentOrderLine.quantity).where(
            IntentOrderLine.order_id == order_id, IntentOrderLine.line_no == line_no)).one()
        deliveries = s.exec(select(Delivery.delivered_on, Delivery.quantity).where(
            Delivery.order_id == order_id, Delivery.line_no == line_no)).all()
        returns_ = s.exec(select(SalesReturn.returned_on, SalesReturn.quantity, SalesReturn.kind,
                                 SalesReturn.return_no)
                          .where(SalesReturn.order_id == order_id,
                                 SalesReturn.line_no == line_no)
                          .order_by(SalesReturn.returned_on, SalesReturn.return_no)).all()
        for day in sorted({d for d, _ in deliveries}):
            out = sum(q for d, q in deliveries if d <= day)
            swapped = sum(q for d, q, kind, _ in returns_ if kind == "exchange" and d <= day)
            if out > ordered + swapped:
                plus = f" 与截至该日的换货数量 {swapped} 之和" if swapped else ""
                # a replacement shipped before its exchanged goods came back
                later = [(no, d) for d, _, kind, no in returns_ if kind == "exchange" and d > day]
                hint = (f"；换货单 {later[0][0]} 的退回日期 {later[0][1]} 晚于该日：换货的补发须在"
                        "货物退回之后，请核对补发或退回日期") if later else ""
                problems.append(at(order_id, line_no, day,
                                   f"意向单 {order_id} 第 {line_no} 行截至 {day} 累计发货 "
                                   f"{out}，超过订购数量 {ordered}{plus}{hint}"))
                break
        back = 0
        for day, qty, _, _ in returns_:
            back += qty
            out = sum(q for d, q in deliveries if d <= day)
            if back > out:
                problems.append(at(order_id, line_no, day,
                                   f"意向单 {order_id} 第 {line_no} 行截至 {day} 累计退货 {back}，"
                                   f"超过已发货 {out}"))
                break
    return problems


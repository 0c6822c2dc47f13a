"""Reading what the rebate engine needs from the database: the published policies, the
customers' profiles and payment rates, and order lines with their net quantities as of a date.

The line queries are the heavy part of a settlement: plain SQL over the order-date index, one
row per order line, net quantities summed per line in the database."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Session, select

from models import Customer
from models.base import SHANGHAI
from models.rebates.engine import CustomerProfile, ItemClass, SaleLine
from models.rebates.payment_rate import InvoiceFact, PaymentFact, PaymentRates
from models.rebates.policy import PolicyBook, PolicySpec, PublishedVersion
from models.rebates.tables import RebatePolicyVersion

_IN_CHUNK = 500  # ids per IN (...) list


_BOOKS: dict[tuple[str, int, int], PolicyBook] = {}


def policy_book(session: Session, extra: Iterable[PublishedVersion] = ()) -> PolicyBook:
    """Every published version (plus `extra`, e.g. a draft being replayed). Versions are never
    edited, so the book of the published ones is kept per process until a version is added."""
    extra = list(extra)
    stamp = session.exec(select(sa.func.count(), sa.func.max(RebatePolicyVersion.id))).one()
    key = (str(session.get_bind().url), stamp[0], stamp[1] or 0)
    if not extra and key in _BOOKS:
        return _BOOKS[key]
    rows = session.exec(select(RebatePolicyVersion)).all()
    versions = [PublishedVersion(r.code, r.version, PolicySpec.from_json(r.spec), r.published_at)
                for r in rows]
    book = PolicyBook([*versions, *extra])
    if not extra:
        _BOOKS.clear()  # only the newest book of a database is worth keeping
        _BOOKS[key] = book
    return book


def customer_profiles(session: Session, ids: Iterable[int]) -> dict[int, CustomerProfile]:
    out: dict[int, CustomerProfile] = {}
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), _IN_CHUNK):
        for c in session.exec(select(Customer).where(
                Customer.id.in_(wanted[start:start + _IN_CHUNK]))):
            out[c.id] = CustomerProfile(c.id, c.tier, c.region, c.uscc, c.legal_name)
    return out


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(day: dt.date, n: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def quarter_start(day: dt.date) -> dt.date:
    return dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1)


def quarter_end(day: dt.date) -> dt.date:
    return add_months(quarter_start(day), 3) - dt.timedelta(days=1)


def payment_rates(session: Session, customer_ids: Iterable[int], first_month: dt.date,
                  last_month: dt.date) -> PaymentRates:
    """Rates for orders dated from `first_month` to `last_month`: invoices due in the three
    months before each, and their payments (one query per 500 customers, read raw)."""
    ids = sorted(set(customer_ids))
    lo, hi = add_months(month_start(first_month), -3), month_start(last_month)
    invoices, payments = [], []
    conn = session.connection()
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start:start + _IN_CHUNK]
        names = {f"c{i}": cid for i, cid in enumerate(chunk)}
        marks = ", ".join(f":{n}" for n in names)
        params = {**names, "lo": lo, "hi": hi}
        dates = (sa.bindparam("lo", type_=sa.Date), sa.bindparam("hi", type_=sa.Date))
        invoices += [InvoiceFact(no, cid, _date(due), _money(amount)) for no, cid, due, amount
                     in conn.execute(sa.text(
                         "SELECT invoice_no, customer_id, due_on, amount FROM receivable_invoice "
                         f"WHERE customer_id IN ({marks}) AND due_on >= :lo AND due_on < :hi"
                     ).bindparams(*dates), params).cursor.fetchall()]
        payments += [PaymentFact(no, _date(paid), _money(amount)) for no, paid, amount
                     in conn.execute(sa.text(
                         "SELECT p.invoice_no, p.paid_on, p.amount FROM payment p "
                         "JOIN receivable_invoice i ON i.invoice_no = p.invoice_no "
                         f"WHERE i.customer_id IN ({marks}) AND i.due_on >= :lo AND i.due_on < :hi"
                     ).bindparams(*dates), params).cursor.fetchall()]
    return PaymentRates(invoices, payments)


def _date(value) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _money(value) -> Decimal:
    """Driver money (Decimal on PostgreSQL; float or int on SQLite, whole fen) as Decimal."""
    return Decimal(value) if isinstance(value, Decimal) else Decimal(str(value)).quantize(
        Decimal("0.01"))


def shanghai_midnight_after(day: dt.date) -> dt.datetime:
    """The first instant after `day` ends in Shanghai, in UTC: "signed by the end of `day`"."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), SHANGHAI).astimezone(
        dt.timezone.utc)


@dataclass(frozen=True)
class Window:
    """Orders dated `start` … `end` (of `customer_ids`, or of everyone when None)."""

    start: dt.date
    end: dt.date
    customer_ids: frozenset[int] | None = None


def window_filter(window: Window, ids: Sequence[int] | None):
    where = "o.order_date BETWEEN :start AND :end"
    params = {"start": window.start, "end": window.end}
    if ids is not None:
        names = [f"c{i}" for i in range(len(ids))]
        where += f" AND o.customer_id IN ({', '.join(':' + n for n in names)})"
        params.update(zip(names, ids))
    return where, params


def id_chunks(window: Window):
    if window.customer_ids is None:
        yield None
        return
    ids = sorted(window.customer_ids)
    for start in range(0, len(ids), _IN_CHUNK):
        yield ids[start:start + _IN_CHUNK]


# net quantity of a line as the settlement counts it: delivered by `cut` minus returned by `cut`
DELIVERED_NET = """
    COALESCE((SELECT SUM(d.quantity) FROM delivery d
              WHERE d.order_id = l.order_id AND d.line_no = l.line_no
                AND d.delivered_on <= :cut), 0)
  - COALESCE((SELECT SUM(r.quantity) FROM sales_return r
              WHERE r.order_id = l.order_id AND r.line_no = l.line_no
                AND r.returned_on <= :cut), 0)"""
# … and as a preview counts it: ordered minus returned by `cut` (delivered or not); an
# exchange does not change what was ordered (its replacement ships against the same line)
ORDERED_NET = """
    l.quantity - COALESCE((SELECT SUM(r.quantity) FROM sales_return r
              WHERE r.order_id = l.order_id AND r.line_no = l.line_no
                AND r.kind = 'return' AND r.returned_on <= :cut), 0)"""


def lines_sql(net: str, where: str, extra: str = "") -> str:
    return f"""
SELECT o.id, l.line_no, o.customer_id, o.order_date, l.sku, p.product_line, l.unit_price,
       o.rep_id, {net} AS net{extra}
FROM intent_order o
JOIN quote q ON q.order_id = o.id
JOIN intent_order_line l ON l.order_id = o.id
JOIN product p ON p.sku = l.sku
WHERE q.signed_at IS NOT NULL AND q.signed_at < :signed_before AND {where}"""


def lines_query(sql: str, dates: Sequence[str] = ("cut", "start", "end"),
                datetimes: Sequence[str] = ("signed_before",)) -> sa.TextClause:
    """A line query with its date and instant parameters typed (SQLite compares them as
    text: they must be written as the columns are)."""
    return sa.text(sql).bindparams(*(sa.bindparam(n, type_=sa.Date) for n in dates),
                                   *(sa.bindparam(n, type_=sa.DateTime) for n in datetimes))


def cursor_rows(conn: sa.Connection, query: sa.TextClause, params: dict):
    """Rows straight from the driver's cursor, a batch at a time (no per-row processing)."""
    cursor = conn.execute(query, params).cursor
    while rows := cursor.fetchmany(10000):
        yield from rows


class _Dates(dict):
    """Each distinct date value converted once (SQLite answers dates of raw SQL as text)."""

    def __missing__(self, value):
        day = self[value] = dt.date.fromisoformat(value) if isinstance(value, str) else value
        return day


class _Prices(dict):
    """Each distinct price converted once to an exact Decimal."""

    def __missing__(self, value):
        price = self[value] = Decimal(str(value))
        return price


# the settlement's rows: the lines of an order summed per item class (see item_classes) in
# the database, each line's negative net counted as 0 first; lines of a per-line class apart
_CLASS_TABLE = "rebate_item_class"


def summed_lines_sql(net: str, where: str, dialect: sa.Dialect) -> str:
    """Each line's net is computed once (its two subqueries are most of the cost): in a
    materialized CTE, where the database has them (PostgreSQL 12, SQLite 3.35), as the
    planner would otherwise copy the expression into every aggregate that reads it."""
    sqlite = dialect.name == "sqlite"
    greatest = "MAX" if sqlite else "GREATEST"
    materialized = "" if sqlite and dialect.dbapi.sqlite_version_info < (3, 35) \
        else "MATERIALIZED "
    return f"""
WITH x AS {materialized}(
  SELECT o.id, l.line_no, o.customer_id, o.order_date, o.rep_id, c.class_no,
         CASE WHEN c.per_line = 1 THEN l.line_no ELSE 0 END AS part,
         CAST(ROUND(l.unit_price * 100) AS BIGINT) AS fen, {greatest}({net}, 0) AS net
  FROM intent_order o
  JOIN quote q ON q.order_id = o.id
  JOIN intent_order_line l ON l.order_id = o.id
  JOIN {_CLASS_TABLE} c ON c.sku = l.sku
  WHERE q.signed_at IS NOT NULL AND q.signed_at < :signed_before AND {where})
SELECT x.id AS order_id, MIN(x.line_no) AS line_no, MIN(x.customer_id) AS customer_id,
       MIN(x.order_date) AS order_date, x.class_no AS class_no, MIN(x.rep_id) AS rep_id,
       SUM(x.net) AS quantity, SUM(x.net * x.fen) AS amount_fen, MIN(x.fen) AS unit_fen,
       COUNT(*) AS lines
FROM x GROUP BY x.id, x.class_no, x.part"""


def _fill_class_table(conn: sa.Connection, classes: Mapping[str, ItemClass]) -> None:
    """The classes as a temporary table of this connection (emptied and filled again)."""
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_CLASS_TABLE} "
                         "(sku VARCHAR(40) PRIMARY KEY, class_no INTEGER NOT NULL, "
                         "per_line INTEGER NOT NULL)")
    conn.exec_driver_sql(f"DELETE FROM {_CLASS_TABLE}")
    conn.execute(sa.text(f"INSERT INTO {_CLASS_TABLE} (sku, class_no, per_line) "
                         "VALUES (:sku, :no, :per)"),
                 [{"sku": sku, "no": c.number, "per": int(c.per_line)}
                  for sku, c in classes.items()])


def summed_sale_lines(conn: sa.Connection, windows: Sequence[Window], cut: dt.date,
                      classes: Mapping[str, ItemClass]) -> tuple[list[SaleLine], int]:
    """What sale_lines() would give for a settlement (delivered − returned as of `cut`), with
    the lines of an order summed per item class by the database: rows that evaluate exactly
    like the lines they stand for, a fraction as many for Python to read. Products no rule
    takes are left out. Also returns how many order lines the rows stand for."""
    out: list[SaleLine] = []
    if not classes:
        return out, 0
    _fill_class_table(conn, classes)
    append = out.append
    by_no = {c.number: c for c in classes.values()}
    signed_before = shanghai_midnight_after(cut).replace(tzinfo=None)
    days = _Dates()
    count = 0
    for window in windows:
        for ids in id_chunks(window):
            where, params = window_filter(window, ids)
            query = lines_query(summed_lines_sql(DELIVERED_NET, where, conn.dialect))
            for oid, no, cid, day, cls, rep, qty, amount, fen, n in cursor_rows(
                    conn, query, {**params, "cut": cut, "signed_before": signed_before}):
                c = by_no[cls]
                count += n
                if c.per_line:
                    append(SaleLine(oid, no, cid, days[day], c.sku, c.product_line,
                                    Decimal(int(fen)).scaleb(-2), int(qty), rep))
                else:
                    append(SaleLine(oid, no, cid, days[day], c.sku, c.product_line, None,
                                    int(qty), rep, int(amount)))
    return out, count


def ordered_lines_twice(conn: sa.Connection, window: Window, cut: dt.date, earlier: dt.date,
                        exclude_order: str | None = None) -> tuple[list[SaleLine], list[SaleLine]]:
    """sale_lines(delivered=False) of `window` as of `cut`, and of its orders dated up to
    `earlier` as of `earlier`, in one read (a preview's period and last month's lines, when
    both lie in one quarter: most of the rows are the same)."""
    if not window.start <= earlier <= cut:
        raise ValueError("`earlier` must lie between the window's start and `cut`")
    where, params = window_filter(window, sorted(window.customer_ids)
                                  if window.customer_ids is not None else None)
    if exclude_order:
        where += " AND o.id <> :exclude"
        params["exclude"] = exclude_order
    extra = (f", {ORDERED_NET.replace(':cut', ':earlier')} AS net_before, "
             "CASE WHEN q.signed_at < :signed_earlier THEN 1 ELSE 0 END AS known_before")
    query = lines_query(lines_sql(ORDERED_NET, where, extra),
                        dates=("cut", "earlier", "start", "end"),
                        datetimes=("signed_before", "signed_earlier"))
    now: list[SaleLine] = []
    before: list[SaleLine] = []
    days, prices = _Dates(), _Prices()
    for oid, no, cid, day, sku, pl, price, rep, net, net_before, known in cursor_rows(
            conn, query, {**params, "cut": cut, "earlier": earlier,
                          "signed_before": shanghai_midnight_after(cut).replace(tzinfo=None),
                          "signed_earlier": shanghai_midnight_after(earlier).replace(
                              tzinfo=None)}):
        when, amount = days[day], prices[price]
        now.append(SaleLine(oid, no, cid, when, sku, pl, amount, int(net), rep))
        if known and when <= earlier:
            before.append(SaleLine(oid, no, cid, when, sku, pl, amount, int(net_before), rep))
    return now, before


def sale_lines(conn: sa.Connection, windows: Sequence[Window], cut: dt.date, *,
               delivered: bool = True, exclude_order: str | None = None) -> list[SaleLine]:
    """Lines of orders signed by the end of `cut`, in the windows, with their net quantity as
    of `cut` (delivered − returned; or, with `delivered=False`, ordered − returned). The
    windows must not overlap.

    Rows are read from the database cursor directly and dates and prices converted once per
    distinct value: a quarter is a few hundred thousand rows."""
    out: list[SaleLine] = []
    append = out.append
    signed_before = shanghai_midnight_after(cut).replace(tzinfo=None)
    days, prices = _Dates(), _Prices()
    for window in windows:
        for ids in id_chunks(window):
            where, params = window_filter(window, ids)
            if exclude_order:
                where += " AND o.id <> :exclude"
                params["exclude"] = exclude_order
            query = lines_query(lines_sql(DELIVERED_NET if delivered else ORDERED_NET, where))
            for oid, no, cid, day, sku, pl, price, rep, net in cursor_rows(
                    conn, query, {**params, "cut": cut, "signed_before": signed_before}):
                append(SaleLine(oid, no, cid, days[day], sku, pl, prices[price], int(net), rep))
    return out

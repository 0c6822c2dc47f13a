"""Reading what the rebate engine needs from the database: the published policies, the
customers' profiles and payment rates, and order lines with their net quantities as of a date.

The line queries are the heavy part of a settlement and of a large customer's preview: plain
SQL over the order-date index, net quantities summed per line and the lines of an order summed
per item class in the database (sale_lines, one row per line, is the reference the property
tests hold the summed rows to)."""
from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from decimal import Decimal
from itertools import pairwise

import sqlalchemy as sa
from sqlmodel import Session, select

from models import Customer, OperationLog, Product
from models.base import SHANGHAI
from models.rebates.engine import (
    CustomerProfile, DatedProfiles, ItemClasses, SaleLine, named_skus,
)
from models.rebates.payment_rate import PaymentRates
from models.rebates.policy import PolicyBook, PolicySpec, PublishedVersion
from models.rebates.tables import RebatePolicyVersion
from models.staff import normalize_region

_IN_CHUNK = 500  # ids per IN (...) list


_BOOKS: dict[tuple[str, int, int], PolicyBook] = {}
# statements a preview runs on every call, built once: building and keying a statement costs
# SQLAlchemy more than SQLite takes to answer these (a preview's budget is milliseconds)
_BOOK_STAMP = select(sa.func.count(), sa.func.max(RebatePolicyVersion.id))
_PROFILE_ROWS = sa.select(Customer.id, Customer.tier, Customer.region, Customer.uscc,
                          Customer.legal_name).where(
    Customer.id.in_(sa.bindparam("ids", expanding=True)))


def policy_book(session: Session, extra: Iterable[PublishedVersion] = ()) -> PolicyBook:
    """Every published version (plus `extra`, e.g. a draft being replayed). Versions are never
    edited, so the book of the published ones is kept per process until a version is added."""
    extra = list(extra)
    stamp = session.exec(_BOOK_STAMP).one()
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


def named_products(session: Session, book: PolicyBook) -> list[tuple[str, str]]:
    """(sku, product line) of the catalogue's products some rule of the book names."""
    skus = sorted(named_skus(book))
    out: list[tuple[str, str]] = []
    for start in range(0, len(skus), _IN_CHUNK):
        rows = session.exec(select(Product.sku, Product.product_line).where(
            Product.sku.in_(skus[start:start + _IN_CHUNK])))
        out += [(sku, line) for sku, line in rows]  # plain tuples: item_classes keys on them
    return out


def customer_profiles(session: Session, ids: Iterable[int], since: dt.date | None = None
                      ) -> dict[int, CustomerProfile]:
    """The profiles of the customers `ids` (the five columns the rules read: no ORM objects,
    whose building cost more than the query for the thousands of a month).

    `since`: for orders dated `since` or later, evaluated with the profile each customer had
    on its order date (a DatedProfiles): the tier and region changes recorded after that day
    ended are read from the operation log (one query) and undone, newest first, from the
    current row. Without it: the current profiles, for every date (the names vouchers and
    the board's order rows show)."""
    out: dict[int, CustomerProfile] = {}
    wanted = sorted(set(ids))
    conn = session.connection()
    for start in range(0, len(wanted), _IN_CHUNK):
        for cid, tier, region, uscc, legal_name in conn.execute(
                _PROFILE_ROWS, {"ids": wanted[start:start + _IN_CHUNK]}):
            out[cid] = CustomerProfile(cid, tier, region, uscc, legal_name)
    if since is None:
        return out
    return DatedProfiles(out, profile_changes(conn, out, since))


_PROFILE_FIELDS = ("tier", "region")  # what a change of the profile undoes


def profile_changes(conn: sa.Connection, profiles: Mapping[int, CustomerProfile],
                    since: dt.date) -> dict[int, list[tuple[dt.date, CustomerProfile]]]:
    """DatedProfiles.changes of `profiles` (the current ones) for orders dated `since` or
    later: each customer whose tier or region changed after `since` ended (Shanghai), with
    the profile it had from each business date on. The recorded time decides: a change logged
    on a business day counts for that day's orders and later ones (a change back-dated in
    intent counts from the day it was recorded). Customer files are created before their
    orders are evaluated: a profile before the file's creation is its first one."""
    found = _profile_log(conn, since, profiles if len(profiles) <= _FEW else None)
    out: dict[int, list[tuple[dt.date, CustomerProfile]]] = {}
    for cid, entries in found.items():
        if cid not in profiles:
            continue
        profile = profiles[cid]  # the newest: the very object of the current profiles
        history: list[tuple[dt.date, CustomerProfile]] = []
        for day, diff in reversed(entries):
            history.append((day, profile))
            # a region logged before regions were normalized (华东大区) is the stored 华东
            profile = replace(profile, **{k: normalize_region(old) if k == "region" else old
                                          for k, (old, _) in diff.items()})
        history.append((dt.date.min, profile))
        history.reverse()
        out[cid] = history
    return out


_FEW = 50  # customers whose log entries are looked up by customer (a preview's one)


def _profile_log(conn: sa.Connection, since: dt.date, ids: Iterable[int] | None = None,
                 fields: Sequence[str] = _PROFILE_FIELDS
                 ) -> dict[int, list[tuple[dt.date, dict]]]:
    """The changes of `fields` of the customer files recorded after `since` ended
    (Shanghai), per customer (of `ids`; None: every customer's): [(business date recorded,
    {field: [old, new]}), …] oldest first. One query, by customer over its index for a few
    `ids` (a preview's one: its own entries only, whatever others were re-rated)."""
    params = {"since": shanghai_midnight_after(since)}
    if ids is not None:
        params["ids"] = sorted({str(int(cid)) for cid in ids})
    rows = conn.execute(_profile_log_query(tuple(fields), ids is not None), params).all()
    found: dict[int, list[tuple[dt.date, dict]]] = {}
    for at, entity_id, changes in rows:
        if not entity_id.isdigit():
            continue
        diff = {k: v for k, v in json.loads(changes).items() if k in fields}
        if diff:
            found.setdefault(int(entity_id), []).append((at.astimezone(SHANGHAI).date(), diff))
    return found


@functools.cache
def _profile_log_query(fields: tuple[str, ...], by_customer: bool) -> sa.Select:
    """_profile_log's statement (parameters `since`, and `ids` when `by_customer`)."""
    where = [OperationLog.at >= sa.bindparam("since"),
             OperationLog.entity == Customer.__tablename__, OperationLog.action == "update",
             sa.or_(*(OperationLog.changes.like(f'%"{name}"%') for name in fields))]
    if by_customer:
        where.append(OperationLog.entity_id.in_(sa.bindparam("ids", expanding=True)))
    return (sa.select(OperationLog.at, OperationLog.entity_id, OperationLog.changes)
            .where(*where).order_by(OperationLog.at, OperationLog.id))


def customers_of_region(conn: sa.Connection, region: str, since: dt.date):
    """A condition on `Customer`: the customers whose orders dated `since` or later may be
    booked to `region` (the region on the order date) — those of the region now, and those
    that were in it on some day from `since` on: a move away from it recorded after `since`
    ended, as customer_profiles(…, since=) reads the log (its region changes only: re-ratings
    of a whole tier list are many more)."""
    moved = sorted(cid for cid, entries in _profile_log(conn, since, fields=("region",)).items()
                   if any(normalize_region(diff["region"][0]) == region for _, diff in entries))
    return sa.or_(Customer.region == region, Customer.id.in_(moved)) if moved \
        else Customer.region == region


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
    months before each, and their payments (one query per 500 customers, read raw). The
    database sums in integer fen what was paid against each invoice by its due date (less
    what was refunded by then through its red-letter invoices: `PaymentRates`), and what
    is due on it after red-letter invoices (红冲): one row per invoice, no payment rows."""
    ids = sorted(set(customer_ids))
    lo, hi = add_months(month_start(first_month), -3), month_start(last_month)
    rows = []
    days = _Dates()
    conn = session.connection()
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start:start + _IN_CHUNK]
        names = {f"c{i}": cid for i, cid in enumerate(chunk)}
        marks = ", ".join(f":{n}" for n in names)
        dates = (sa.bindparam("lo", type_=sa.Date), sa.bindparam("hi", type_=sa.Date))
        rows += [(cid, days[due], int(amount), int(on_time)) for cid, due, amount, on_time
                 in conn.execute(sa.text(
                     # due: the invoice less its red-letter invoices (nothing when marked
                     # reversed in full); a red one naming its blue invoice is not due itself
                     "SELECT i.customer_id, i.due_on, CASE WHEN i.reversed_in_full THEN 0 ELSE "
                     "CAST(ROUND(i.amount * 100) AS BIGINT) + COALESCE((SELECT "
                     "SUM(CAST(ROUND(r.amount * 100) AS BIGINT)) FROM receivable_invoice r "
                     "WHERE r.reverses = i.invoice_no), 0) END, "
                     "COALESCE((SELECT SUM(CAST(ROUND(p.amount * 100) AS BIGINT)) FROM payment p "
                     "WHERE p.invoice_no = i.invoice_no AND p.paid_on <= i.due_on), 0) "
                     # money on its red-letter invoices: refunded by the blue's due date
                     "- COALESCE((SELECT SUM(CAST(ROUND(p.amount * 100) AS BIGINT)) "
                     "FROM receivable_invoice r JOIN payment p ON p.invoice_no = r.invoice_no "
                     "WHERE r.reverses = i.invoice_no AND p.paid_on <= i.due_on), 0) "
                     f"FROM receivable_invoice i WHERE i.customer_id IN ({marks}) "
                     "AND i.reverses IS NULL "
                     "AND i.due_on >= :lo AND i.due_on < :hi").bindparams(*dates),
                     {**names, "lo": lo, "hi": hi}).cursor.fetchall()]
    return PaymentRates.from_invoice_sums(rows)


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


def window_filter(window: Window, ids: Sequence[int] | None, exclude_order: str | None = None):
    where = "o.order_date BETWEEN :start AND :end"
    params = {"start": window.start, "end": window.end}
    if ids is not None:
        names = [f"c{i}" for i in range(len(ids))]
        where += f" AND o.customer_id IN ({', '.join(':' + n for n in names)})"
        params.update(zip(names, ids))
    if exclude_order:
        where += " AND o.id <> :exclude"
        params["exclude"] = exclude_order
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


def class_sql(classes: ItemClasses) -> tuple[str, dict]:
    """The item class number of a line `l` of product `p` as SQL (NULL: no class), and its
    parameters: a named SKU's class, else its product line's (see ItemClasses). No class is
    an INTEGER NULL: PostgreSQL types a CASE whose branches are all a bare NULL as text, and
    refuses it beside the integers of an outer CASE."""
    params: dict[str, str] = {}
    none = "CAST(NULL AS INTEGER)"

    def case(column: str, numbers: Mapping[str, int | None], prefix: str, otherwise: str):
        if not numbers:
            return otherwise
        whens = []
        for i, (value, n) in enumerate(sorted(numbers.items())):
            params[f"{prefix}{i}"] = value
            whens.append(f"WHEN :{prefix}{i} THEN {none if n is None else int(n)}")
        return f"CASE {column} {' '.join(whens)} ELSE {otherwise} END"

    other = none if classes.other is None else str(int(classes.other))
    return case("l.sku", classes.skus, "k_s", case("p.product_line", classes.lines, "k_l",
                                                   other)), params


def summed_lines_sql(net: str, where: str, dialect: sa.Dialect, classes: ItemClasses,
                     net_earlier: str | None = None) -> tuple[str, dict]:
    """The lines of an order summed per item class (see item_classes) in the database, each
    line's negative net counted as 0 first; lines of a per-line class apart; products without
    a class left out. Returns the SQL and its parameters for the classes.

    Each line's net is computed once (its two subqueries are most of the cost): in a
    materialized CTE, where the database has them (PostgreSQL 12, SQLite 3.35), as the
    planner would otherwise copy the expression into every aggregate that reads it.

    `net_earlier`: the rows as of `:earlier` too (their quantity and amount, and whether the
    order was signed by then: `:signed_earlier`)."""
    sqlite = dialect.name == "sqlite"
    greatest = "MAX" if sqlite else "GREATEST"
    materialized = "" if sqlite and dialect.dbapi.sqlite_version_info < (3, 35) \
        else "MATERIALIZED "
    class_no, params = class_sql(classes)
    # products without a class are left before their net is computed
    some = (f" AND {class_no} IS NOT NULL" if classes.other is None
            or None in classes.skus.values() or None in classes.lines.values() else "")
    part = (", CASE WHEN x.class_no IN "
            f"({', '.join(str(int(n)) for n in sorted(classes.per_line))}) "
            "THEN x.line_no ELSE 0 END" if classes.per_line else "")
    inner = outer = ""
    if net_earlier:
        inner = (f", {greatest}({net_earlier}, 0) AS net_earlier, "
                 "CASE WHEN q.signed_at < :signed_earlier THEN 1 ELSE 0 END AS known_earlier")
        outer = (", SUM(x.net_earlier) AS quantity_earlier, "
                 "SUM(x.net_earlier * x.fen) AS amount_fen_earlier, "
                 "MIN(x.known_earlier) AS known_earlier")
    return f"""
WITH x AS {materialized}(
  SELECT o.id, l.line_no, o.customer_id, o.order_date, o.rep_id, l.sku, p.product_line,
         {class_no} AS class_no,
         CAST(ROUND(l.unit_price * 100) AS BIGINT) AS fen, {greatest}({net}, 0) AS net{inner}
  FROM intent_order o
  JOIN quote q ON q.order_id = o.id
  JOIN intent_order_line l ON l.order_id = o.id
  JOIN product p ON p.sku = l.sku
  WHERE q.signed_at IS NOT NULL AND q.signed_at < :signed_before AND {where}{some})
SELECT x.id AS order_id, MIN(x.line_no) AS line_no, MIN(x.customer_id) AS customer_id,
       MIN(x.order_date) AS order_date, x.class_no AS class_no, MIN(x.rep_id) AS rep_id,
       SUM(x.net) AS quantity, SUM(x.net * x.fen) AS amount_fen, MIN(x.fen) AS unit_fen,
       COUNT(*) AS lines, MIN(x.sku) AS sku, MIN(x.product_line) AS product_line{outer}
FROM x GROUP BY x.id, x.class_no{part}""", params


def _summed_row(per_line: bool, order_id: str, line_no: int, customer_id: int, day: dt.date,
                rep_id: str | None, sku: str, product_line: str, quantity, amount_fen,
                unit_fen) -> SaleLine:
    """A row of summed_lines_sql as the engine reads it: a line of a per-line class with its
    own price, else the class's lines of the order by their summed amount, with the SKU and
    the product line of one of them: every product of a class is alike to every rule, but a
    SKU with another one's product line may not be (the settlement's classes may hold several
    product lines: `sku` and `product_line` must be one product's, see summed_sale_lines)."""
    if per_line:
        return SaleLine(order_id, line_no, customer_id, day, sku, product_line,
                        Decimal(int(unit_fen)).scaleb(-2), int(quantity), rep_id)
    return SaleLine(order_id, line_no, customer_id, day, sku, product_line, None,
                    int(quantity), rep_id, int(amount_fen))


def _date_slices(window: Window, parts: int) -> list[Window]:
    """`window` cut into up to `parts` windows of consecutive order dates (an order lies in
    exactly one), for reading side by side."""
    days = (window.end - window.start).days + 1
    parts = max(1, min(parts, days))
    bounds = [window.start + dt.timedelta(days=days * i // parts) for i in range(parts + 1)]
    return [Window(a, b - dt.timedelta(days=1), window.customer_ids)
            for a, b in pairwise(bounds)]


def summed_sale_lines(conn: sa.Connection, windows: Sequence[Window], cut: dt.date,
                      classes: ItemClasses, *, delivered: bool = True,
                      exclude_order: str | None = None, side_by_side: int = 1
                      ) -> tuple[list[SaleLine], int]:
    """What sale_lines() would give (delivered − returned as of `cut`; or, with
    `delivered=False`, ordered − returned), with the lines of an order summed per item class
    by the database: rows that evaluate exactly like the lines they stand for, a fraction as
    many for Python to read. Products without a class are left out. Also returns how many
    order lines the rows stand for.

    `side_by_side` > 1: the windows are read in that many slices of order dates at once, each
    on its own connection of `conn`'s engine (the database does most of the work, and the
    driver lets go of Python while it does: a month's read on two cores takes about half as
    long). The same rows (each slice's in the order of its own read)."""
    per_line = classes.per_line
    signed_before = shanghai_midnight_after(cut).replace(tzinfo=None)
    days = _Dates()
    net = DELIVERED_NET if delivered else ORDERED_NET
    # a row's product line is its SKU's: the row's MIN(product_line) may be another line's
    # of the same class (MON-M12 of 监护 and CONS-ECG10 of 耗材, both left by a rule on 监护
    # but MON-M12, read as CONS-ECG10 of 监护, which that rule takes)
    line_of = dict(conn.execute(sa.select(Product.sku, Product.product_line)).all())

    def read(c: sa.Connection, window: Window, ids) -> tuple[list[SaleLine], int]:
        rows: list[SaleLine] = []
        append, count = rows.append, 0
        where, params = window_filter(window, ids, exclude_order)
        sql, class_params = summed_lines_sql(net, where, c.dialect, classes)
        for oid, no, cid, day, cls, rep, qty, amount, fen, n, sku, pl in cursor_rows(
                c, lines_query(sql), {**params, **class_params, "cut": cut,
                                      "signed_before": signed_before}):
            count += n
            append(_summed_row(cls in per_line, oid, no, cid, days[day], rep, sku,
                               line_of.get(sku, pl), qty, amount, fen))
        return rows, count

    if side_by_side > 1:
        windows = [part for w in windows for part in _date_slices(w, side_by_side)]
    tasks = [(window, ids) for window in windows for ids in id_chunks(window)]
    engine = conn.engine
    # an in-memory SQLite database is one per connection: nothing to read beside it
    if side_by_side > 1 and len(tasks) > 1 and engine.url.database not in (None, "",
                                                                          ":memory:"):

        def apart(task) -> tuple[list[SaleLine], int]:
            with engine.connect() as own:
                return read(own, *task)

        with ThreadPoolExecutor(side_by_side) as pool:
            parts = list(pool.map(apart, tasks))
    else:
        parts = [read(conn, *task) for task in tasks]
    out: list[SaleLine] = []
    for rows, _ in parts:
        out += rows
    return out, sum(n for _, n in parts)


def summed_ordered_twice(conn: sa.Connection, window: Window, cut: dt.date, earlier: dt.date,
                         classes: ItemClasses, exclude_order: str | None = None
                         ) -> tuple[list[SaleLine], list[SaleLine]]:
    """summed_sale_lines(delivered=False) of `window` as of `cut`, and of its orders dated up
    to `earlier` as of `earlier`, in one read (a preview's period and last month's rows, when
    both lie in one quarter: most of the rows are the same)."""
    if not window.start <= earlier <= cut:
        raise ValueError("`earlier` must lie between the window's start and `cut`")
    now: list[SaleLine] = []
    before: list[SaleLine] = []
    per_line = classes.per_line
    where, params = window_filter(window, sorted(window.customer_ids)
                                  if window.customer_ids is not None else None, exclude_order)
    sql, class_params = summed_lines_sql(ORDERED_NET, where, conn.dialect, classes,
                                         ORDERED_NET.replace(":cut", ":earlier"))
    query = lines_query(sql, dates=("cut", "earlier", "start", "end"),
                        datetimes=("signed_before", "signed_earlier"))
    days = _Dates()
    # the preview's classes hold one product line each, or (the rest) only product lines and
    # SKUs no rule names: any pairing of their SKUs and lines is alike to every rule (see
    # _summed_row)
    for (oid, no, cid, day, cls, rep, qty, amount, fen, _, sku, pl, qty_e, amount_e,
         known) in cursor_rows(conn, query, {
            **params, **class_params, "cut": cut, "earlier": earlier,
            "signed_before": shanghai_midnight_after(cut).replace(tzinfo=None),
            "signed_earlier": shanghai_midnight_after(earlier).replace(tzinfo=None)}):
        apart, when = cls in per_line, days[day]
        row = _summed_row(apart, oid, no, cid, when, rep, sku, pl, qty, amount, fen)
        now.append(row)
        if known and when <= earlier:  # mostly unchanged since: the same row
            before.append(row if qty_e == qty and amount_e == amount else
                          _summed_row(apart, oid, no, cid, when, rep, sku, pl, qty_e, amount_e,
                                      fen))
    return now, before


def sale_lines(conn: sa.Connection, windows: Sequence[Window], cut: dt.date, *,
               delivered: bool = True, exclude_order: str | None = None) -> list[SaleLine]:
    """Lines of orders signed by the end of `cut`, in the windows, with their net quantity as
    of `cut` (delivered − returned; or, with `delivered=False`, ordered − returned). The
    windows must not overlap.

    Rows are read from the database cursor directly and dates and prices converted once per
    distinct value. The settlement and the preview read summed rows instead; these are what
    the tests compare them with."""
    out: list[SaleLine] = []
    append = out.append
    signed_before = shanghai_midnight_after(cut).replace(tzinfo=None)
    days, prices = _Dates(), _Prices()
    for window in windows:
        for ids in id_chunks(window):
            where, params = window_filter(window, ids, exclude_order)
            query = lines_query(lines_sql(DELIVERED_NET if delivered else ORDERED_NET, where))
            for oid, no, cid, day, sku, pl, price, rep, net in cursor_rows(
                    conn, query, {**params, "cut": cut, "signed_before": signed_before}):
                append(SaleLine(oid, no, cid, days[day], sku, pl, prices[price], int(net), rep))
    return out

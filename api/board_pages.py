"""What the rebate board pages (返利看板) show: the board with its three figures and months,
the orders behind a figure, and one order's rebate lines with its customer and the policy
text. Pure rendering: the routes in api/rebates.py get the data from flows/rebate_board.py
(which also decides who may see what); here every value is escaped on its way into the page.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote, urlencode

from api.pages import esc
from api.staff_pages import NONE_ITEM, facts
from flows.rebate_board import STATUS_LABELS
from models.money import yuan
from models.rebates.formatting import money, percent
from models.staff import region_label

BOARD = "/rebates/board"
ORDERS_PAGE = "/rebates/board/orders/page"
STATUSES = tuple(STATUS_LABELS)  # confirmed, pending, expected
STATUS_BADGES = {"confirmed": "ok", "pending": "warn", "expected": ""}
QUARTERS = "一二三四"


# --- words and numbers ------------------------------------------------------------------------

def month_label(month: str) -> str:
    """'2026-10' → '2026年10月'."""
    year, _, number = month.partition("-")
    return f"{year}年{int(number)}月" if number.isdigit() else month


def period_label(period: str) -> str:
    """A rule's period: '2026-10' → '2026年10月', '2026Q4' → '2026年第四季度'."""
    year, q, number = period.partition("Q")
    if q and number in ("1", "2", "3", "4"):
        return f"{year}年第{QUARTERS[int(number) - 1]}季度"
    return month_label(period)


def rate_label(rate: str) -> str:
    """A line's rate (a fraction) as a percent with up to 4 decimals: '0.102000' → '10.2%'."""
    return percent(Decimal(rate), 4)


def effective_label(policy: Mapping) -> str:
    """'从 2026-10-01 起至 2026-11-30', or open-ended '从 2026-10-01 起（未设截止日期）'; a
    version a later one replaced before it began says so instead of seeming in force."""
    start = f"从 {policy['effective_from']} 起"
    dates = f"{start}至 {policy['effective_to']}" if policy.get("effective_to") \
        else f"{start}（未设截止日期）"
    if policy.get("superseded"):
        return f"原定{dates}；已被后续版本取代，现不适用于任何订单"
    return dates


def orders_count(n: int) -> str:
    """'89,416 张订单': thousands separated, as the money beside it."""
    return f"{n:,} 张订单"


def address(path: str, **params: str | None) -> str:
    """A relative address with the given (non-empty) query parameters."""
    kept = {k: v for k, v in params.items() if v}
    return path + (f"?{urlencode(kept)}" if kept else "")


def link(path: str, **params: str | None) -> str:
    """`address`, escaped for an attribute."""
    return esc(address(path, **params))


def order_link(order_id: str, scope_query: Mapping[str, str | None]) -> str:
    return link(f"/rebates/orders/{quote(order_id, safe='')}", **scope_query)


@dataclass(frozen=True)
class Figure:
    """The board's figure an order was listed under, carried on to its page: a status and,
    from a settled month's row, its month; `year`: the year 已确认 sums (the board's card is
    this year's). No status: the page was opened otherwise (each status's own figure)."""

    status: str | None
    month: str | None
    year: int

    def query(self) -> dict[str, str | None]:
        """The figure in a link: its status and month, or the confirmed card's year."""
        return {"status": self.status, "month": self.month,
                "year": str(self.year) if self.status == "confirmed" and not self.month
                else None}

    def _month(self, status: str) -> str | None:
        return self.month if status == self.status else None

    def counts(self, ln: Mapping, status: str) -> bool:
        """Whether an order's line is in the figure of `status` as the board sums it: the
        month's (a month row's), else 已确认 this year's and the others all of theirs."""
        if ln["status"] != status:
            return False
        if month := self._month(status):
            return ln["month"] == month
        return status != "confirmed" or ln["month"][:4] == str(self.year)

    def label(self, status: str) -> str:
        """'2026年10月已确认' (a month's), '2027年已确认', '待复核'."""
        if month := self._month(status):
            return f"{month_label(month)}{STATUS_LABELS[status]}"
        return f"{self.year}年{STATUS_LABELS[status]}" if status == "confirmed" \
            else STATUS_LABELS[status]

    def others_label(self, status: str) -> str:
        """The order's lines of `status` outside the figure: other months' or years'."""
        return f"{'其他月份' if self._month(status) else '其他年份'}{STATUS_LABELS[status]}"


def back_to_board(scope_query: Mapping[str, str | None]) -> str:
    return f'<p><a id="back" href="{link(BOARD, **scope_query)}">‹ 返回返利看板</a></p>'


# --- the board --------------------------------------------------------------------------------

FIGURE_NOTES = {"confirmed": "{year}年累计，财务已确认", "pending": "已结算，待财务确认",
                "expected": "尚未结算，按当前数据估算（含冲回）"}


def _figure(f: Mapping, year: int, scope_query: Mapping) -> str:
    status = f["status"]
    note = FIGURE_NOTES[status].format(year=year)
    return (f'<a class="card figure {esc(status)}" id="fig-{esc(status)}" '
            f'href="{link(ORDERS_PAGE, status=status, **scope_query)}">'
            f'<span class="figure-label"><b>{esc(f["label"])}</b>'
            f'<span class="muted">{esc(note)} · {esc(orders_count(f["orders"]))}</span></span>'
            f'<span class="figure-amount"><span class="amount">{esc(yuan(f["amount"]))}</span>'
            f'<span class="go" aria-hidden="true">›</span></span></a>')


def _delivery(month: str, settlements: Sequence[Mapping], status_links: bool,
              scope_query: Mapping) -> str:
    """Under a settled month, each revision and how its vouchers and statements went
    (凭证已发送 / 发送中 / 发送失败：<reason>); for finance, a link to the revision's status page
    (where a failed one is sent again), which leads back to the board as narrowed."""
    if not settlements:
        return ""
    items = []
    for st in settlements:
        delivery = st["delivery"]
        label = esc(delivery["label"])
        if status_links:
            label = f'<a href="{link(st["status_url"], **scope_query)}">{label} ›</a>'
        items.append(f'<div class="delivery-{esc(delivery["state"])}" '
                     f'id="delivery-{esc(month)}-r{esc(st["revision"])}">'
                     f'第 {esc(st["revision"])} 版（{esc(st["status_label"])}）：{label}</div>')
    return (f'<tr class="delivery" id="delivery-{esc(month)}"><td colspan="3">'
            f'{"".join(items)}</td></tr>')


def _months(months: Sequence[Mapping], scope_query: Mapping, status_links: bool = False) -> str:
    if not months:
        return ('<div class="card"><h2>按结算月份</h2>'
                '<p class="muted" id="months-empty">还没有已结算的月份。</p></div>')
    rows = []
    for m in months:
        cells = "".join(
            f'<td class="num"><a class="money" '
            f'href="{link(ORDERS_PAGE, status=status, month=m["month"], **scope_query)}">'
            f'{esc(yuan(m[status]))}</a></td>' for status in ("confirmed", "pending"))
        rows.append(f'<tr id="month-{esc(m["month"])}"><td>{esc(month_label(m["month"]))}</td>'
                    f'{cells}</tr>'
                    + _delivery(m["month"], m.get("settlements") or (), status_links,
                                scope_query))
    return ('<div class="card"><h2>按结算月份</h2><table id="months"><thead><tr><th>月份</th>'
            '<th class="num">已确认</th><th class="num">待复核</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _where(rep: Mapping) -> str:
    """After a rep's name: his region for finance ('（华南）'); for a manager, nothing for his
    own reps and where one now belongs who sells in his region from another
    ('（现属华南大区）')."""
    if rep.get("elsewhere"):
        return f"（现属{region_label(rep['region'])}）" if rep.get("region") else "（未分配大区）"
    return f"（{rep['region']}）" if rep.get("region") else ""


def _narrow(choices: Mapping, scope_query: Mapping) -> str:
    """Finance and managers pick a region or a rep they may see (a plain GET form: the board
    checks the choice again)."""
    regions, reps = choices.get("regions") or [], choices.get("reps") or []
    if not regions and not reps:
        return ""
    fields = []
    if regions:
        options = "".join(
            f'<option value="{esc(r)}"{" selected" if r == scope_query.get("region") else ""}>'
            f'{esc(region_label(r))}</option>' for r in regions)
        fields.append('<label class="field" for="region">大区</label>'
                      f'<select id="region" name="region"><option value="">全部大区</option>'
                      f'{options}</select>')
    if reps:
        options = "".join(
            f'<option value="{esc(r["id"])}"{" selected" if r["id"] == scope_query.get("rep") else ""}>'
            f'{esc(r["name"])}{esc(_where(r))}</option>' for r in reps)
        everyone = "全部销售" if regions else f"全部（{region_label(choices.get('own_region') or '')}）"
        fields.append('<label class="field" for="rep">销售</label>'
                      f'<select id="rep" name="rep"><option value="">{esc(everyone)}</option>'
                      f'{options}</select>')
    hint = ('<p class="muted">同时选择大区和销售时，按所选销售查看。</p>' if regions and reps else "")
    return (f'<details class="card narrow" id="narrow"{" open" if any(scope_query.values()) else ""}>'
            f'<summary>切换查看范围</summary><form method="get" action="{BOARD}">'
            f'{"".join(fields)}{hint}<button type="submit" id="narrow-btn" class="gap">查看</button>'
            f'</form></details>')


def board_page(data: Mapping, choices: Mapping, scope_query: Mapping[str, str | None],
               status_links: bool = False) -> tuple[str, str]:
    """(title, content) of the board for the scope `data` was computed for; `status_links`:
    the person may open a settlement's status page (finance, admins)."""
    scope = data["scope"]
    year = int(data["today"][:4])
    head = (f'<div class="card"><div class="muted">返利看板</div>'
            f'<h1 id="scope">{esc(scope["label"])}</h1>'
            f'<div class="muted">数据截至 {esc(data["today"])}（北京时间）；'
            f'点击金额查看对应订单。</div></div>')
    figures = "".join(_figure(f, year, scope_query) for f in data["figures"])
    content = (head + _narrow(choices, scope_query) + f'<div id="figures">{figures}</div>'
               + _months(data["months"], scope_query, status_links))
    return f"返利看板 · {scope['label']}", content


# --- the orders behind a figure -----------------------------------------------------------------

ORDERS_PER_PAGE = 50


def settled_in(status: str, months: Sequence[str]) -> str:
    """The months an order's lines are (or will be) settled in, so named: '2026年10月结算',
    '预计计入2026年11月结算'."""
    named = f"{'、'.join(month_label(m) for m in months)}结算"
    return f"预计计入{named}" if status == "expected" else named


def orders_page(status: str, month: str | None, figure: Mapping, scope_label: str,
                year: int, scope_query: Mapping[str, str | None]) -> tuple[str, str]:
    """(title, content) of the orders behind one figure (or one month's figure): the figure's
    count and total, then one page of its orders, newest first, with links to the pages
    before and after (a region's year is tens of thousands of orders)."""
    label = STATUS_LABELS[status]
    heading = f"{label} · {month_label(month)}" if month else label
    # each order's page opens on this figure: its subtotal there is the row's amount
    listed_under = {**scope_query, **Figure(status, month, year).query()}
    about = scope_label if month else f"{scope_label} · {FIGURE_NOTES[status].format(year=year)}"
    rows, count, offset = figure["orders"], figure["count"], figure["offset"]
    head = (f'<div class="card"><div class="muted" id="about">{esc(about)}</div>'
            f'<h1 id="figure">{esc(heading)}</h1>'
            f'<div class="row-head"><span class="muted" id="count">{esc(orders_count(count))}'
            f'</span><span class="total money" id="total">{esc(yuan(figure["amount"]))}</span>'
            f'</div></div>')
    items = "".join(
        f'<li><a class="row" href="{order_link(r["order_id"], listed_under)}" '
        f'id="order-{esc(r["order_id"])}">'
        f'<div class="row-head"><b>{esc(r["order_id"])}</b>'
        f'<span class="money">{esc(yuan(r["amount"]))}</span></div>'
        f'<div>{esc(r["customer"] or "客户编号 " + str(r["customer_id"]))}</div>'
        f'<div class="muted">下单 {esc(r["order_date"])} · {esc("、".join(r["kinds"]))} · '
        f'{esc(settled_in(status, r["months"]))}</div></a></li>'
        for r in rows) or NONE_ITEM
    pages = ""
    if count > len(rows):
        here = dict(scope_query, status=status, month=month)
        shown = (f'<span class="muted" id="shown">第 {offset + 1:,}–{offset + len(rows):,} 张，'
                 f'共 {count:,} 张</span>') if rows else ""

        def at(start: int) -> str:
            return link(ORDERS_PAGE, **here, offset=str(start) if start else None)

        per_page = figure["limit"] or len(rows)
        # from past the end (a hand-made address) back to the last page
        before = (f'<a id="newer" href="{at(max(min(offset, count) - per_page, 0))}">‹ 较新</a>'
                  if offset else "")
        after = (f'<a id="older" href="{at(offset + len(rows))}">较早 ›</a>'
                 if offset + len(rows) < count else "")
        pages = f'<div class="row-head" id="pages">{before}{shown}{after}</div>'
    content = (head + f'<div class="card"><ul class="items" id="orders">{items}</ul>{pages}</div>'
               + back_to_board(scope_query))
    return f"{label}的订单 · {scope_label}", content


# --- one order ------------------------------------------------------------------------------

def _rate_row(ln: Mapping) -> tuple[str, str, str]:
    """The policy's rate, as the explanation states it; where one rate does not cover the
    line (tiers crossed, a cap's share, below the first tier) the effective rate, so named."""
    if ln.get("policy_rate") is not None:
        return "比例", esc(rate_label(ln["policy_rate"])), ""
    if not Decimal(ln["basis"]):
        return "比例", "—", ""
    return "实际比例", esc(rate_label(ln["rate"])), ""


def _taken_back(ln: Mapping) -> list[tuple[str, str, str]]:
    """A negative line's facts (a claw-back, or a re-run's adjustment taking back what a
    return or correction found): what was paid, what is due now and what is taken back — not
    the new basis × rate beside a negative amount, which reads as a contradiction; a part
    booked to this line's rep and region (the rest to others where it was paid) says so."""
    change = -Decimal(ln["change"])
    said = (f'原已返 {money(Decimal(ln["paid_before"]))}，现应返 {money(Decimal(ln["due"]))}，'
            f'追回 {money(change)}')
    rows = [("冲回", esc(said), "")]
    if Decimal(ln["amount"]) != -change:
        rows.append(("本行冲回", esc(f"{money(-Decimal(ln['amount']))}（按原入账销售与大区分摊）"), ""))
    return rows


def _line(n: int, ln: Mapping) -> str:
    status = ln["status"]
    if status == "expected":
        when = f"尚未结算（预计计入{month_label(ln['month'])}结算）"
    else:
        when = f"{month_label(ln['month'])}结算 · 第 {ln['revision']} 版"
    policy = f"{ln['policy_code']} 第 {ln['policy_version']} 版"
    if ln.get("clause"):
        policy += f" · {ln['clause']}"
    rows = [("政策条款", esc(policy), ""), ("计算期间", esc(period_label(ln["period"])), ""),
            ("类型", esc(ln["kind"]), "")]
    if "change" in ln and Decimal(ln["amount"]) < 0:  # a claw-back, or a re-run's take-back
        rows += _taken_back(ln)
    else:
        rows += [("返利基数", esc(yuan(ln["basis"])), ""), _rate_row(ln)]
    rows.append(("金额", f'<b class="money">{esc(yuan(ln["amount"]))}</b>', ""))
    if ln.get("statement_no"):  # the customer's statement the settled line is on
        rows.append(("对账单号", esc(ln["statement_no"]), f"statement-{n}"))
    return (f'<li class="line" id="line-{n}"><div class="row-head"><b>{esc(when)}</b>'
            f'<span class="badge {STATUS_BADGES[status]}">{esc(STATUS_LABELS[status])}</span>'
            f'</div>{facts(rows)}<p class="explain">{esc(ln["explanation"])}</p></li>')


def _customer(c: Mapping | None) -> str:
    if c is None:
        return ('<div class="card" id="customer"><h2>客户</h2>'
                '<p class="muted">该意向单尚未确定客户。</p></div>')
    return ('<div class="card" id="customer"><h2>客户</h2>' + facts([
        ("工商全称", esc(c["legal_name"]), "customer-name"),
        ("统一社会信用代码", esc(c["uscc"] or "—"), "customer-uscc"),
        ("客户等级", esc(f"{c['tier']} 级" if c["tier"] else "—"), "customer-tier"),
        ("大区", esc(c["region"] or "—"), "customer-region")]) + "</div>")


def _policy(p: Mapping) -> str:
    text = (f'<div class="policy-text">{esc(p["text"])}</div>' if p["text"]
            else '<p class="muted">该政策未附原文。</p>')
    return (f'<li class="policy" id="policy-{esc(p["code"])}-{esc(p["version"])}">'
            f'<b>{esc(p["name"])}</b>'
            f'<div class="muted">{esc(p["code"])} · 第 {esc(p["version"])} 版</div>'
            f'<div class="effective">有效期：{esc(effective_label(p))}</div>{text}</li>')


# why an order's page shows no rebate line (flows.rebate_board.order_detail's none_because)
NO_LINES = {
    "not_signed": "该意向单暂无结算或预计返利：报价单签署且发货后才计入返利，届时计入当月的“本月预计”。",
    "not_delivered": "该意向单暂无结算或预计返利：已签署，发货后才计入返利，届时计入当月的“本月预计”。",
    "booked_elsewhere": "该意向单的返利记在结算时的销售和大区名下，不在当前查看范围内"
                        "（例如客户此后调整了大区）。",
    "no_rule": "该意向单没有返利：其所在月份已结算，按现行返利政策与目前数据，本单不计返利"
               "（例如产品线、客户等级或大区不在政策适用范围内，或未达到阶梯门槛）。",
    None: "该意向单暂无返利：尚未结算，本月也没有预计返利。",
}


def _entered(preview: Mapping | None) -> str:
    """The rebate previewed when the order was entered (what the order page and the quote
    show), with the rules it came from."""
    if not preview:
        return ""
    rules = "".join(
        f'<li><div class="row-head"><b>{esc(r["policy_code"])} 第 {esc(r["policy_version"])} 版'
        f'{esc(" · " + r["clause"]) if r["clause"] else ""}</b>'
        f'<span class="money">{esc(yuan(r["amount"]))}</span></div>'
        f'<p class="explain">{esc(r["explanation"])}</p></li>' for r in preview["rules"])
    return ('<div class="card" id="preview"><h2>录入时返利预估</h2>'
            f'<p>{esc(preview["sentence"])}</p>'
            f'<div class="muted">{esc(preview["computed_on"])} 录入时按当时数据估算，'
            '实际返利以结算为准。</div>'
            + (f'<ul class="items" id="preview-rules">{rules}</ul>' if rules else "")
            + "</div>")


# where the order's own page is not the reader's (handed over to another rep since)
PROGRESS_WITHHELD = ("意向单进度页仅供本单现任销售代表、其区域经理和经办待办的同事查看"
                     "（例如本单已转交其他销售，或客户已调整大区），如需查看请联系他们。")


def _sums(lines: Sequence[Mapping], figure: Figure) -> list[tuple[str, str, str]]:
    """Per status, the order's part of the figure, named as it is summed ('2027年已确认',
    '2026年10月待复核'): the subtotal of the row the page was opened from; and apart, its
    lines of that status in other years or months."""
    def row(label: str, part: list[Mapping], ident: str) -> tuple[str, str, str]:
        total = sum((Decimal(ln["amount"]) for ln in part), Decimal("0.00"))
        return label, f'<span class="money">{esc(yuan(total))}</span>', ident

    rows = []
    for status in STATUSES:
        inside = [ln for ln in lines if figure.counts(ln, status)]
        others = [ln for ln in lines if ln["status"] == status and not figure.counts(ln, status)]
        if inside or status == figure.status:  # the figure opened from: its amount, even 0
            rows.append(row(figure.label(status), inside, f"sum-{status}"))
        if others:
            rows.append(row(figure.others_label(status), others, f"sum-{status}-other"))
    return rows


def _lines(detail: Mapping, figure: Figure) -> str:
    """The order's lines; opened from a figure, those in it first, the others apart."""
    numbered = list(enumerate(detail["lines"], start=1))
    if not numbered:
        return ('<div class="card"><h2>返利明细</h2><p class="muted" id="lines">'
                f'{NO_LINES[detail.get("none_because")]}</p></div>')
    if figure.status is None:
        shown, others = numbered, []
        heading = "返利明细"
    else:
        shown = [(n, ln) for n, ln in numbered if figure.counts(ln, figure.status)]
        others = [(n, ln) for n, ln in numbered if not figure.counts(ln, figure.status)]
        heading = f"返利明细 · {figure.label(figure.status)}"
    items = "".join(_line(n, ln) for n, ln in shown)
    card = (f'<div class="card"><h2>{esc(heading)}</h2>'
            + (f'<ul class="items" id="lines">{items}</ul>' if items else
               '<p class="muted" id="lines">本单在这一项下现已没有返利明细，见下方本单其他返利。</p>')
            + "</div>")
    if others:
        card += ('<div class="card" id="other-lines-card"><h2>本单其他返利明细</h2>'
                 '<p class="muted">不计入所点开的数字（其他状态、月份或年份）。</p>'
                 f'<ul class="items" id="other-lines">'
                 f'{"".join(_line(n, ln) for n, ln in others)}</ul></div>')
    return card


def order_rebate_page(detail: Mapping, rep_name: str | None,
                      scope_query: Mapping[str, str | None], figure: Figure, *,
                      progress: bool = True) -> tuple[str, str]:
    """(title, content) of one order's rebates: its subtotals as the `figure` it was opened
    from sums them, every line with its explanation, the customer, and the policies with
    their text and effective dates; `progress`: the reader may open the order's own page
    (查看意向单进度), else it says why it is not offered."""
    customer = detail["customer"]
    rows = [("客户", esc(customer["legal_name"]) if customer
             else '<span class="muted">尚未确定</span>', ""),
            ("下单日期", esc(detail["order_date"]), ""),
            ("销售", esc(f"{rep_name}（{detail['rep_id']}）" if rep_name
                         else detail["rep_id"] or "—"), "")]
    rows += _sums(detail["lines"], figure)
    order_id = detail["order_id"]
    way = (f'<p><a id="order-progress" href="/orders/{esc(quote(order_id, safe=""))}">'
           '查看意向单进度</a></p>' if progress else
           f'<p class="muted" id="order-progress-withheld">{PROGRESS_WITHHELD}</p>')
    head = (f'<div class="card"><div class="muted">订单返利</div><h1>{esc(order_id)}</h1>'
            f'{facts(rows)}{way}</div>')
    policies = "".join(_policy(p) for p in detail["policies"])
    policies_card = ('<div class="card"><h2>返利政策原文</h2>'
                     f'<ul class="items" id="policies">{policies}</ul></div>' if policies else "")
    # opened from a figure's list: back to that list (its first page) as well
    back = ""
    if figure.status:
        listed = link(ORDERS_PAGE, **scope_query, status=figure.status, month=figure.month)
        back = (f'<p><a id="back-orders" href="{listed}">'
                f'‹ 返回“{esc(figure.label(figure.status))}”的订单</a></p>')
    content = (head + _lines(detail, figure) + _entered(detail.get("preview"))
               + _customer(customer) + policies_card + back + back_to_board(scope_query))
    return f"订单返利 · {order_id}", content

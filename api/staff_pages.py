"""What the staff pages show: the suspected-new-customer page for the manager and the order
page for the rep, both opened on a phone from a push. Pure rendering: the routes in
api/customers.py and api/orders.py gather the data and check who may do what; here every
value is escaped on its way into the page."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from api.pages import esc, script
from models import ORDER_STATUS_LABELS, OrderStatus
from models.base import SHANGHAI
from models.customers import SuspectStatus

PICKER = script("customer_picker.js")
NONE_ITEM = '<li class="muted">（无）</li>'

# the quote PDF prints the order's expected rebate, which only these may see
QUOTE_WITHHELD = ("该报价单载有本单的预计返利，只有本单的销售代表、所在区域的区域经理、财务和管理员"
                  "可以查看。")
ORDER_WITHHELD = ("此意向单属于其他销售代表，只有本单的销售代表、其区域经理、经办待办的同事，以及销售运营、"
                  "法务、采购、财务和管理员可以查看。如需查看，请联系本单的销售代表或区域经理。")

ORDER_STATUS_BADGES = {OrderStatus.on_hold: "warn", OrderStatus.failed: "warn",
                       OrderStatus.blocked: "bad", OrderStatus.signed: "ok",
                       OrderStatus.invoicing: "ok"}
QUOTE_STATUS_LABELS = {"draft": "草稿", "sent": "已发送", "signed": "已签署", "expired": "已过期"}
TASK_STATUS_LABELS = {"open": "待处理", "done": "已完成"}
SUSPECT_BADGES = {SuspectStatus.escalated: "warn", SuspectStatus.overdue: "bad",
                  SuspectStatus.created: "ok", SuspectStatus.merged: "ok"}


def order_status_label(status: str) -> str:
    return ORDER_STATUS_LABELS.get(status, status)  # str-valued enum: keys match plain text


def local_time(at: dt.datetime | None) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if at else "—"


def time_left(deadline: dt.datetime, now: dt.datetime) -> str:
    """'5 小时 12 分', '1 天 3 小时', or '已逾期' once the deadline has passed."""
    seconds = int((deadline - now).total_seconds())
    if seconds <= 0:
        return "已逾期"
    minutes = (seconds + 59) // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} 天 {hours} 小时"
    if hours:
        return f"{hours} 小时 {minutes} 分"
    return f"{minutes} 分钟"


def person(names: Mapping[str, str], staff_id: str | None) -> str:
    """'王强（mgr-east）', or the id alone when the person is unknown."""
    if not staff_id:
        return "—"
    name = names.get(staff_id)
    return f"{name}（{staff_id}）" if name else staff_id


def error_card(error: str) -> str:
    return f'<div class="card"><p class="error" id="err">{esc(error)}</p></div>' if error else ""


def facts(rows: Iterable[tuple[str, str, str]]) -> str:
    """A definition list of (label, value HTML, element id) rows; values are HTML already."""
    items = []
    for label, value, ident in rows:
        attr = f' id="{ident}"' if ident else ""
        items.append(f"<dt>{esc(label)}</dt><dd{attr}>{value}</dd>")
    return f'<dl class="facts">{"".join(items)}</dl>'


def _choice(c: Mapping) -> str:
    alias = c.get("matched_alias")
    about = f"客户编号 {c['customer_id']}"
    if alias and alias != c["legal_name"]:
        about += f" · 匹配“{alias}”"
    return (f'<label class="choice"><input type="radio" name="customer_id" '
            f'value="{esc(c["customer_id"])}"><span><b>{esc(c["legal_name"])}</b>'
            f'<div class="muted">{esc(about)}</div></span></label>')


def picker(action: str, hidden: Mapping[str, str], candidates: list[Mapping], button: str) -> str:
    """A form to pick a customer: the suggestions as choices, a search box whose results
    become choices too (customer_picker.js), and one submit button."""
    fields = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">'
                     for k, v in hidden.items())
    offered = "".join(_choice(c) for c in candidates) or \
        '<p class="muted">系统没有找到相近的客户，请在下方搜索。</p>'
    return (f'<form id="pick-form" method="post" action="{esc(action)}">{fields}'
            f'<div class="muted">系统建议</div><div id="choices">{offered}</div>'
            f'<label class="field" for="search">搜索其他客户</label>'
            f'<div class="search"><input type="search" id="search" maxlength="100" '
            f'autocomplete="off" placeholder="输入客户名称、简称或信用代码">'
            f'<button type="button" id="search-btn" class="secondary">搜索</button></div>'
            f'<p class="muted" id="search-msg"></p><div id="results"></div>'
            f'<button type="submit" id="pick-btn" class="gap">{esc(button)}</button></form>')


def candidate_list(candidates: list[Mapping]) -> str:
    if not candidates:
        return '<p class="muted">系统没有找到相近的客户。</p>'
    return '<ul class="items" id="suggestions">' + "".join(
        f"<li>{esc(c['legal_name'])}<div class='muted'>客户编号 {esc(c['customer_id'])}"
        f"{esc(' · 匹配“' + c['matched_alias'] + '”') if c.get('matched_alias') else ''}</div></li>"
        for c in candidates) + "</ul>"


# --- the suspected new customer ------------------------------------------------------------

def suspect_page(data: Mapping, candidates: list[Mapping], *, now: dt.datetime,
                 threshold: int, error: str = "") -> tuple[str, str, str]:
    """(title, content, script) of the manager's page of one suspect name."""
    v, names = data["view"], data["names"]
    status = v["status"]
    is_open = status in SuspectStatus.OPEN
    deadline = data["deadline_at"]
    rows = [("出现次数", f"{esc(v['sightings'])} 张意向单", "")]
    spellings = v.get("spellings") or ()
    if len(spellings) > 1:  # (江苏省康达医疗、康达医疗（江苏） … are one name)
        rows.append(("写法", esc("、".join(spellings)), "spellings"))
    if v["decider"]:
        rows.append(("决定人", esc(person(names, v["decider"])), "decider"))
    if deadline is not None:
        rows.append(("截止时间", f"{esc(local_time(deadline))}（北京时间）", "deadline"))
    if is_open:
        if deadline is None:
            rows.append(("剩余时间", esc(f"尚未升级：满 {threshold} 次后交销售经理确认"),
                         "time-left"))
        else:
            left = "已逾期" if status == SuspectStatus.overdue else time_left(deadline, now)
            cls = ' class="overdue"' if left == "已逾期" else ""
            rows.append(("剩余时间", f"<span{cls}>{esc(left)}</span>", "time-left"))
    head = (f'<div class="card"><div class="muted">疑似新客户 · 编号 {esc(v["suspect_id"])}</div>'
            f'<h1 id="suspect-name">{esc(v["name"])}</h1>'
            f'<span class="badge {SUSPECT_BADGES.get(status, "")}" id="status">'
            f'{esc(v["status_label"])}</span>{facts(rows)}</div>')
    orders = "".join(
        f'<li><a href="/orders/{esc(o["order_id"])}">{esc(o["order_id"])}</a>'
        f'<div class="muted">{esc(person(names, o["rep_id"]))} · 写作“{esc(o["typed_name"])}”'
        f' · <span class="nowrap">{esc(local_time(o["seen_at"]))}</span>'
        f'{" · " + esc(order_status_label(o["status"])) if o.get("status") else ""}</div></li>'
        for o in data["orders"]) or NONE_ITEM
    orders_card = f'<div class="card"><h2>相关意向单</h2><ul class="items" id="orders">{orders}</ul></div>'
    script_html = ""
    if not is_open:
        c = data.get("customer")
        what = "新建客户档案" if status == SuspectStatus.created else "并入已有客户"
        target = f"{c['legal_name']}（客户编号 {c['customer_id']}）" if c else "—"
        body = (f'<div class="card done" id="decided"><h2>已处理</h2><p>由 '
                f'{esc(person(names, v["decided_by"]))} 于 {esc(local_time(data["decided_at"]))} '
                f'{esc(what)}：{esc(target)}</p></div>')
    elif data["may_decide"]:
        merge = (f'<div class="card" id="merge"><h2>并入已有客户</h2>'
                 f'<p class="muted">选择该名称所指的已有客户，“{esc(v["name"])}”将作为其别名，'
                 f'相关意向单随即继续处理。</p>'
                 + picker(f"/customers/suspects/{v['suspect_id']}/decide", {"action": "merge"},
                          candidates, "并入所选客户") + "</div>")
        create = (f'<div class="card" id="create"><h2>新建客户档案</h2>'
                  f'<form id="create-form" method="post" '
                  f'action="/customers/suspects/{esc(v["suspect_id"])}/decide">'
                  f'<input type="hidden" name="action" value="create">'
                  f'<label class="field" for="legal_name">工商全称</label>'
                  f'<input type="text" id="legal_name" name="legal_name" maxlength="100" '
                  f'value="{esc(data["legal_name"] if data.get("legal_name") is not None else v["name"])}">'
                  f'<p class="muted">系统将按此名称查询工商信息、建立客户档案并发起法务资质初审。</p>'
                  f'<button type="submit" id="create-btn" class="gap">新建客户档案</button>'
                  f'</form></div>')
        body = merge + create
        script_html = PICKER
    else:
        who = (f"此名称应由{person(names, v['decider'])}确认，您可以查看，但无权处理。"
               if v["decider"] else
               f"此名称尚在收集中，满 {threshold} 次后交由销售经理确认；您可以查看，但无权处理。"
               "如为新客户，您的销售经理现在即可在此页面处理。")
        body = (f'<div class="card notice" id="readonly"><p>{esc(who)}</p></div>'
                f'<div class="card"><h2>相近的已有客户</h2>{candidate_list(candidates)}</div>')
    content = head + error_card(error) + orders_card + body
    return f"疑似新客户：{v['name']}", content, script_html


def decision_result(v: Mapping, result: Mapping, customer: Mapping | None) -> tuple[str, str]:
    """(title, content) after a manager's decision."""
    name = customer["legal_name"] if customer else f"客户编号 {result['customer_id']}"
    if result["decision"] == "created":
        title = "已新建客户档案"
        found = ("已按工商信息补全档案" if result.get("registry_found")
                 else "工商信息中未找到该名称，档案按填写的名称建立")
        what = (f"已为“{v['name']}”新建客户档案：{name}（客户编号 {result['customer_id']}）。"
                f"{found}，并已发起法务资质初审。")
    else:
        title = "已并入已有客户"
        what = (f"“{v['name']}”已作为别名并入{name}（客户编号 {result['customer_id']}）。")
    released = result["released_orders"]
    orders = ("<ul class='items' id='released'>" + "".join(
        f'<li><a href="/orders/{esc(o)}">{esc(o)}</a></li>' for o in released) + "</ul>"
              if released else '<p class="muted">没有等待中的意向单。</p>')
    content = (f'<div class="card done" id="result"><h1>{esc(title)}</h1><p>{esc(what)}</p></div>'
               f'<div class="card"><h2>已继续处理的意向单（{len(released)}）</h2>{orders}</div>'
               f'<p><a id="back" href="/customers/suspects/{esc(v["suspect_id"])}">'
               '返回疑似新客户页面</a></p>')
    return title, content


# --- the order --------------------------------------------------------------------------------

def order_page(data: Mapping, candidates: list[Mapping], *, error: str = "",
               chosen: Mapping | None = None) -> tuple[str, str, str]:
    """(title, content, script) of the rep's page of one order."""
    o, names = data["order"], data["names"]
    status = o["status"]
    customer = data["customer"]
    rows = [("客户", esc(customer["legal_name"]) if customer
             else '<span class="muted">尚未确定</span>', "customer"),
            ("填写的名称", esc(o["customer_name"]), ""),
            ("销售", esc(person(names, o["rep_id"])), ""),
            ("下单日期", esc(o["order_date"]), "")]
    if data["stage_label"]:
        rows.append(("商机阶段", esc(data["stage_label"]), ""))
    head = (f'<div class="card"><div class="muted">意向单</div><h1>{esc(o["id"])}</h1>'
            f'<span class="badge {ORDER_STATUS_BADGES.get(status, "")}" '
            f'id="status">{esc(order_status_label(status))}</span>{facts(rows)}</div>')
    done = ""
    if chosen:
        done = (f'<div class="card done" id="result"><h2>已选择客户</h2><p>意向单 {esc(o["id"])} '
                f'的客户已确定为 {esc(chosen["legal_name"])}（客户编号 {esc(chosen["customer_id"])}），'
                f'意向单已继续处理。</p></div>')
    reason = ""
    # a signed order's error: its completion (the invoice request) stopped for a person
    if o["error"] and status in (OrderStatus.on_hold, OrderStatus.blocked, OrderStatus.failed,
                                 OrderStatus.signed):
        reason = (f'<div class="card notice"><h2>原因</h2><p id="reason">{esc(o["error"])}</p>'
                  f'</div>')
    quote = data["quote"]
    quote_card = ""
    if quote:
        label = "查看已签署的报价单（PDF）" if quote["signed_pdf"] else "查看报价单（PDF）"
        pdf = (f'<p><a id="quote-pdf" href="/orders/{esc(o["id"])}/quote.pdf">{label}</a></p>'
               if quote["has_pdf"] else
               f'<p class="muted" id="quote-pdf-withheld">{QUOTE_WITHHELD}</p>'
               if quote.get("pdf_withheld") else "")
        quote_card = ('<div class="card"><h2>报价单</h2>' + facts([
            ("编号", esc(quote["code"]), "quote-code"),
            ("金额", f'<span class="total">¥{quote["total_amount"]:,.2f}</span>', "quote-amount"),
            ("有效期至", esc(quote["valid_until"]), ""),
            ("状态", esc(QUOTE_STATUS_LABELS.get(quote["status"], quote["status"])), "")])
            + pdf + "</div>")
    if data["rebate"]:
        quote_card += (f'<div class="card"><h2>返利预估</h2><p id="rebate">{esc(data["rebate"])}'
                       f'</p><p><a id="rebate-link" href="/rebates/orders/{esc(o["id"])}">'
                       '返利明细与政策原文</a></p></div>')
    todos = "".join(
        f'<li>{esc(t["title"])}<div class="muted">{esc(person(names, t["assignee"]))} · '
        f'{esc(TASK_STATUS_LABELS.get(t["status"], t["status"]))} · 截止 '
        f'{esc(local_time(t["due_at"]))}</div></li>' for t in data["todos"])
    todo_card = (f'<div class="card"><h2>待办</h2><ul class="items" id="todos">'
                 f'{todos or NONE_ITEM}</ul></div>')
    pick, script_html = "", ""
    if data["waiting"]:
        if data["may_choose"]:
            pick = ('<div class="card" id="pick"><h2>选择客户</h2><p class="muted">为这张意向单'
                    '选择正确的客户，意向单随即继续处理；名称本身仍由销售经理确认。</p>'
                    + picker(f"/orders/{o['id']}/customer-choice", {}, candidates, "确认客户")
                    + "</div>")
            script_html = PICKER
        else:
            pick = ('<div class="card notice" id="readonly"><p>只有该意向单的销售、其销售经理、'
                    '销售运营或管理员可以为它选择客户。</p></div>'
                    f'<div class="card"><h2>相近的已有客户</h2>{candidate_list(candidates)}</div>')
    content = head + done + error_card(error) + reason + pick + quote_card + todo_card
    return f"意向单 {o['id']}", content, script_html

"""`salesops demo`: the whole journey on the embedded stack, then a summary.

Fresh SQLite database, local Prefect server, served deployments and the API; sample data, a
published rebate policy and last month's history (signed, delivered orders; invoices paid on
time); seven signed webhooks — a new customer (registry file + legal review), a stock shortage,
a short name the matcher links (沪申康医疗 → 上海申康医疗科技有限公司), a name nobody knows (held as a
suspected new customer) — plus one duplicate delivery; every quote shows its expected rebate;
one quote signed through the built-in signing page and finance asked to prepare the invoice;
last month settled by the `settle-month` deployment (vouchers, statements, workbook).
"""
from __future__ import annotations

import base64
import datetime as dt
import io
import json
import secrets
import shutil
import time
from decimal import Decimal
from pathlib import Path
from string import Template

import httpx
from PIL import Image, ImageDraw
from sqlmodel import select

from api.webhooks import request_line, signature_headers
from connectors.settings import Settings
from deployments.seed import customer_id, record_invoice, record_signed_order, seed_sample_data
from deployments.stack import LocalStack
from flows.order_steps import signing_link
from flows.policies import publish_policy
from models import (
    STAGE_LABELS, Customer, IntentOrder, Opportunity, OrderRebate, Quote, SettlementRun, Stage,
    TASK_LABELS, Staff, SuspectName, Todo, business_date,
)
from models.db import migrate, session_scope
from models.money import yuan

SENDER = "demo-portal"

ORDERS = [
    {"customer": {"name": "江苏康达医疗设备有限公司", "contact_name": "顾晓峰",
                  "contact_phone": "13912345678", "contact_email": "guxf@kangda-med.example.com"},
     "rep_id": "rep-zhangwei", "lines": [{"sku": "MON-M8", "quantity": 3},
                                         {"sku": "CONS-ECG10", "quantity": 20}],
     "wanted_delivery_date": "2026-12-20"},
    {"customer": {"name": "仁和医疗", "contact_name": "沈明", "contact_phone": "13800001111"},
     "rep_id": "rep-zhangwei", "lines": [{"sku": "PUMP-SP3", "quantity": 10}]},
    {"customer": {"name": "安徽济民医疗器械有限责任公司", "contact_name": "程刚",
                  "contact_email": "chenggang@jimin.example.com"},
     "rep_id": "rep-zhangwei", "lines": [{"sku": "PUMP-VP5", "quantity": 4}],
     "note": "新客户，首次合作"},
    {"customer": {"name": "广州华南医药贸易有限公司", "contact_name": "黄丽",
                  "contact_email": "huangli@hnmt.example.com"},
     "rep_id": "rep-lina", "lines": [{"sku": "MON-M12", "quantity": 12}],
     "wanted_delivery_date": "2026-12-05"},
    {"customer": {"name": "上海申康医疗科技有限公司", "contact_name": "陆佳"},
     "rep_id": "rep-zhangwei", "lines": [{"sku": "STER-AC60", "quantity": 1},
                                         {"sku": "MON-M8", "quantity": 2}]},
    # a rep's own short form: the matcher links it (沪 = 上海) and keeps it as an alias
    {"customer": {"name": "沪申康医疗", "contact_name": "陆佳"},
     "rep_id": "rep-zhangwei", "lines": [{"sku": "PUMP-SP3", "quantity": 2}]},
    # nobody knows this name: the order waits as a suspected new customer
    {"customer": {"name": "苏州同济康复器械", "contact_name": "周立"},
     "rep_id": "rep-lina", "lines": [{"sku": "CONS-ECG10", "quantity": 50}]},
]
HELD = {"苏州同济康复器械"}

# the demo's rebate policy, in force since three months ago (the clerk's YAML, $start filled in)
POLICY = Template((Path(__file__).resolve().parent / "sample_data" / "policies"
                   / "demo-base.yaml.tmpl").read_text(encoding="utf-8"))


def seed_rebate_history(db_url: str, today: dt.date) -> str:
    """The policy and last month's business: signed, delivered orders of two customers and
    invoices paid on time. Returns last month as YYYY-MM."""
    last_month_end = today.replace(day=1) - dt.timedelta(days=1)
    start = (last_month_end.replace(day=1) - dt.timedelta(days=62)).replace(day=1)
    with session_scope(db_url) as s:
        clerk = s.get(Staff, "ops-01")
    publish_policy(db_url, POLICY.substitute(start=start.isoformat()), clerk)
    kangda = customer_id(db_url, "江苏康达医疗设备有限公司")
    huanan = customer_id(db_url, "广州华南医药贸易有限公司")
    day = last_month_end.replace(day=10)
    record_signed_order(db_url, kangda, day, [("MON-M8", 3), ("PUMP-VP5", 2)])
    record_signed_order(db_url, huanan, day + dt.timedelta(days=3), [("MON-M12", 4)],
                        rep_id="rep-lina")
    for customer, amount in ((kangda, "51960.00"), (huanan, "74400.00")):
        record_invoice(db_url, customer, last_month_end.replace(day=15), amount,
                       paid=[(last_month_end.replace(day=12), amount)])
    return f"{last_month_end:%Y-%m}"


def post_signed(client: httpx.Client, secret: str, payload: dict) -> httpx.Response:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return client.post("/webhooks/intent-orders", content=body, headers={
        "Content-Type": "application/json", **signature_headers(SENDER, secret, body)})


def order_progress(client: httpx.Client, secret: str, order_id: str) -> dict:
    """The order's progress as the portal asks for it: signed over `GET /orders/<id>`."""
    path = f"/orders/{order_id}"
    r = client.get(path, headers=signature_headers(SENDER, secret, request_line("GET", path)))
    r.raise_for_status()
    return r.json()


def handwritten_signature() -> bytes:
    """A finger-drawn looking stroke, as the signing page's canvas would send."""
    img = Image.new("RGBA", (480, 180), (255, 255, 255, 0))
    d = ImageDraw.Draw(img)
    pts = [(30 + i * 6, 100 + int(40 * ((i % 14) - 7) / 7) * (-1 if i % 28 > 13 else 1))
           for i in range(70)]
    d.line(pts, fill=(17, 17, 17, 255), width=4, joint="curve")
    d.line([(60, 140), (420, 120)], fill=(17, 17, 17, 255), width=3)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def wait_for(client: httpx.Client, secret: str, order_ids: list[str], statuses: set[str],
             timeout: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    views: dict[str, dict] = {}
    while time.monotonic() < deadline:
        views = {oid: order_progress(client, secret, oid) for oid in order_ids}
        if all(v["status"] in statuses for v in views.values()):
            return views
        time.sleep(0.5)
    stuck = {oid: v["status"] for oid, v in views.items() if v["status"] not in statuses}
    raise TimeoutError(f"{timeout:.0f} 秒后仍有订单未到达状态 {'、'.join(sorted(statuses))}：{stuck}")


# left in the folder a demo makes: only such a folder (or the default one) is emptied again
DEMO_MARKER = ".salesops-demo"
DEFAULT_DIR = Path("var/demo")


def run_demo(data_dir: Path) -> dict:
    if data_dir.exists() and any(data_dir.iterdir()) and not (data_dir / DEMO_MARKER).exists() \
            and data_dir.resolve() != DEFAULT_DIR.resolve():
        raise RuntimeError(f"{data_dir} 不是演示目录（非空，且不是演示建立的），演示不会清空它；"
                           "请换一个不存在的目录，或确认无用后手动删除")
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    (data_dir / DEMO_MARKER).write_text("salesops demo output; emptied by the next demo\n")
    secret = secrets.token_hex(24)
    env = {"SALESOPS_DATA_DIR": str(data_dir.resolve()),
           "SALESOPS_DATABASE_URL": f"sqlite:///{(data_dir / 'salesops.db').resolve()}",
           "SALESOPS_WEBHOOK_SENDERS": json.dumps({SENDER: secret})}
    # the schema first, as `salesops serve` does: the API reads the customers as it starts
    migrate(env["SALESOPS_DATABASE_URL"])
    with LocalStack(data_dir, env) as stack:
        settings = Settings(data_dir=data_dir.resolve(), database_url=env["SALESOPS_DATABASE_URL"],
                            public_base_url=stack.api_url)
        seed_sample_data(settings.db_url)
        last_month = seed_rebate_history(settings.db_url, business_date())
        with httpx.Client(base_url=stack.api_url, timeout=30) as client:
            order_ids, duplicate = [], None
            for n, order in enumerate(ORDERS, start=1):
                payload = {"event_id": f"demo-{int(time.time())}-{n}", **order}
                r = post_signed(client, secret, payload)
                r.raise_for_status()
                order_ids.append(r.json()["order_id"])
                if n == 1:  # the portal retries its first delivery: nothing happens twice
                    duplicate = post_signed(client, secret, payload)
            held = [oid for oid, o in zip(order_ids, ORDERS) if o["customer"]["name"] in HELD]
            wait_for(client, secret, [o for o in order_ids if o not in held], {"quoted"}, 240)
            wait_for(client, secret, held, {"on_hold"}, 60)
            with session_scope(settings.db_url) as s:
                first_quote = s.exec(select(Quote).where(Quote.order_id == order_ids[0])).one()
            link = signing_link(settings, first_quote)
            page = client.get(link)
            assert page.status_code == 200 and "确认签署" in page.text, page.text[:300]
            signed = client.post(link, data={
                "signer_name": "顾晓峰", "consent": "yes",
                "signature": "data:image/png;base64," + base64.b64encode(
                    handwritten_signature()).decode()})
            assert signed.status_code == 200 and "签署成功" in signed.text, signed.text[:300]
            wait_for(client, secret, order_ids[:1], {"invoicing"}, 240)
        settled = settle_through_prefect(stack, settings.db_url, last_month)
        summary = build_summary(settings, order_ids, stack, duplicate)
        summary["settlement"] = settled
    return summary


def settle_through_prefect(stack: LocalStack, db_url: str, month: str) -> dict:
    """Last month settled by the served `settle-month` deployment (what the 5th of each month
    does by its schedule), waited for; what it stored, summed up."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.effects import effect_result
    from flows.settlement import summarize

    with temporary_settings({PREFECT_API_URL: stack.prefect_api_url}):
        run = run_deployment("settle-month/settle-month", parameters={"month": month},
                             timeout=300)
    if not run.state.is_completed():
        raise RuntimeError(f"settle-month 结算未成功（{run.state.name}）：{run.state.message}")
    with session_scope(db_url) as s:
        latest = s.exec(select(SettlementRun).where(SettlementRun.month == month)
                        .order_by(SettlementRun.revision.desc())).first()
    result = summarize(db_url, month, latest.id if latest else None).as_dict()
    if latest:
        result["documents"] = effect_result(db_url, "settlement_documents",
                                            f"{month}-r{latest.revision}") or {}
    return result


def build_summary(settings: Settings, order_ids: list[str], stack: LocalStack,
                  duplicate: httpx.Response | None) -> dict:
    with session_scope(settings.db_url) as s:
        orders = []
        for oid in order_ids:
            order = s.get(IntentOrder, oid)
            quote = s.exec(select(Quote).where(Quote.order_id == oid)).first()
            opp = s.exec(select(Opportunity).where(Opportunity.order_id == oid)).one()
            customer = s.get(Customer, order.customer_id) if order.customer_id else None
            rebate = s.get(OrderRebate, oid)
            suspect = s.get(SuspectName, order.suspect_id) if order.suspect_id else None
            orders.append({
                "order_id": oid, "customer": customer.legal_name if customer else None,
                "typed_name": order.customer_name,
                "new_customer": bool(customer and customer.origin == "standard"),
                "stock_short": order.stock_short, "status": order.status,
                "stage": STAGE_LABELS[Stage(opp.stage)],
                "quote_code": quote.code if quote else None,
                "total": str(quote.total_amount) if quote else None,
                "quote_pdf": quote.pdf_path if quote else None,
                "signing_url": signing_link(settings, quote) if quote else None,
                "signed_pdf": quote.signed_pdf_path if quote else None,
                "rebate": rebate.sentence if rebate else None,
                "held": {"reason": order.error, "sightings": suspect.sightings}
                if suspect and order.status == "on_hold" else None})
        runs = [{"month": r.month, "revision": r.revision, "lines": r.line_count,
                 "total": str(r.total_amount), "voucher_ref": r.voucher_ref}
                for r in s.exec(select(SettlementRun).order_by(SettlementRun.id))]
        names = {p.id: p.name for p in s.exec(select(Staff))}
        todos = [{"kind": t.kind, "title": t.title, "assignee": t.assignee_id,
                  "assignee_name": names.get(t.assignee_id, t.assignee_id), "cc": t.cc,
                  "due_at": t.due_at.isoformat()} for t in s.exec(select(Todo).order_by(Todo.id))]
    drop = settings.data_dir / "finance-drop"
    outbox = settings.data_dir / "outbox"
    return {
        "orders": orders, "todos": todos,
        "invoice_requests": sorted(str(p) for p in drop.glob("*.json")) if drop.exists() else [],
        "emails": len(list(outbox.rglob("*.eml"))) if outbox.exists() else 0,
        "duplicate_delivery": {"status": duplicate.status_code,
                               "same_order": duplicate.json().get("order_id") == order_ids[0]}
        if duplicate is not None else None,
        "settlement_runs": runs,
        "prefect_ui": stack.prefect_ui_url, "api": stack.api_url,
        "data_dir": str(settings.data_dir),
    }


def print_summary(summary: dict) -> None:
    print("\n══════════ 销售运营中台 演示结果 ══════════")
    for o in summary["orders"]:
        flags = "（新客户）" if o["new_customer"] else ""
        flags += "（库存不足）" if o["stock_short"] else ""
        print(f"\n意向单 {o['order_id']}  {o['customer'] or o['typed_name']}{flags}")
        if o["held"]:
            print(f"  待确认客户：{o['held']['reason']}")
            continue
        if o["typed_name"] != o["customer"]:
            print(f"  销售填写：{o['typed_name']}")
        print(f"  报价单 {o['quote_code']}  含税 {yuan(Decimal(o['total']))}  阶段：{o['stage']}")
        if o["rebate"]:
            print(f"  返利：{o['rebate']}")
        print(f"  报价 PDF：{o['quote_pdf']}")
        print(f"  签署链接：{o['signing_url']}")
        if o["signed_pdf"]:
            print(f"  已签署文件：{o['signed_pdf']}")
    print("\n待办：")
    for t in summary["todos"]:
        cc = f"，抄送 {t['cc']}" if t["cc"] else ""
        who = t.get("assignee_name") or t["assignee"]
        print(f"  - [{TASK_LABELS.get(t['kind'], t['kind'])}] {t['title']} → {who}"
              f"（{t['assignee']}）{cc}")
    print("\n开票申请：")
    for p in summary["invoice_requests"]:
        print(f"  - {p}")
    st = summary.get("settlement")
    if st:
        print(f"\n月度返利结算（settle-month 部署）：{st['message']}")
        from flows.settlement import breakdowns

        for dimension, rows in breakdowns(st)[1:]:  # by region, rep and customer
            if rows:
                print(f"  按{dimension}：" + "；".join(f"{k} {yuan(v)}" for k, v in rows.items()))
        if st.get("voucher_ref"):
            print(f"  凭证草稿：{st['voucher_ref']}")
        for path in st.get("documents", {}).get("statements", []):
            print(f"  对账单：{path}")
        if st.get("documents", {}).get("workbook"):
            print(f"  财务明细：{st['documents']['workbook']}")
    d = summary["duplicate_delivery"]
    if d:
        print(f"\n重复投递的 webhook：HTTP {d['status']}，返回同一意向单：{'是' if d['same_order'] else '否'}")
    print(f"发出邮件（本地发件箱）：{summary['emails']} 封")
    print(f"Prefect 界面（演示期间）：{summary['prefect_ui']}")
    print(f"数据目录：{summary['data_dir']}")

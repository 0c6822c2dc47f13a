"""`salesops demo`: the whole intent-order journey on the embedded stack, then a summary.

Fresh SQLite database, local Prefect server, served deployments and the API; sample data;
five signed webhooks (one new customer, one stock shortage) plus one duplicate delivery;
one quote signed through the built-in signing page; finance asked to prepare the invoice.
"""
from __future__ import annotations

import base64
import io
import json
import secrets
import shutil
import time
from pathlib import Path

import httpx
from PIL import Image, ImageDraw
from sqlmodel import select

from api.webhooks import sign_body
from connectors.settings import Settings
from deployments.seed import seed_sample_data
from deployments.stack import LocalStack
from flows.order_steps import signing_link
from models import STAGE_LABELS, Customer, IntentOrder, Opportunity, Quote, Stage, Todo
from models.db import migrate, session_scope

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
]


def post_signed(client: httpx.Client, secret: str, payload: dict) -> httpx.Response:
    body = json.dumps(payload, ensure_ascii=False).encode()
    stamp = str(int(time.time()))
    return client.post("/webhooks/intent-orders", content=body, headers={
        "Content-Type": "application/json", "X-Salesops-Sender": SENDER,
        "X-Salesops-Timestamp": stamp, "X-Salesops-Signature": sign_body(secret, stamp, body)})


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


def wait_for(client: httpx.Client, order_ids: list[str], statuses: set[str], timeout: float
             ) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    views: dict[str, dict] = {}
    while time.monotonic() < deadline:
        views = {oid: client.get(f"/orders/{oid}").json() for oid in order_ids}
        if all(v["status"] in statuses for v in views.values()):
            return views
        time.sleep(0.5)
    stuck = {oid: v["status"] for oid, v in views.items() if v["status"] not in statuses}
    raise TimeoutError(f"orders not {sorted(statuses)} after {timeout:.0f}s: {stuck}")


def run_demo(data_dir: Path) -> dict:
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    secret = secrets.token_hex(24)
    env = {"SALESOPS_DATA_DIR": str(data_dir.resolve()),
           "SALESOPS_DATABASE_URL": f"sqlite:///{(data_dir / 'salesops.db').resolve()}",
           "SALESOPS_WEBHOOK_SENDERS": json.dumps({SENDER: secret})}
    with LocalStack(data_dir, env) as stack:
        settings = Settings(data_dir=data_dir.resolve(), database_url=env["SALESOPS_DATABASE_URL"],
                            public_base_url=stack.api_url)
        migrate(settings.db_url)
        seed_sample_data(settings.db_url)
        with httpx.Client(base_url=stack.api_url, timeout=30) as client:
            order_ids, duplicate = [], None
            for n, order in enumerate(ORDERS, start=1):
                payload = {"event_id": f"demo-{int(time.time())}-{n}", **order}
                r = post_signed(client, secret, payload)
                r.raise_for_status()
                order_ids.append(r.json()["order_id"])
                if n == 1:  # the portal retries its first delivery: nothing happens twice
                    duplicate = post_signed(client, secret, payload)
            wait_for(client, order_ids, {"quoted"}, 240)
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
            views = wait_for(client, order_ids[:1], {"invoicing"}, 240)
            views.update(wait_for(client, order_ids[1:], {"quoted"}, 5))
        summary = build_summary(settings, order_ids, stack, duplicate)
    return summary


def build_summary(settings: Settings, order_ids: list[str], stack: LocalStack,
                  duplicate: httpx.Response | None) -> dict:
    with session_scope(settings.db_url) as s:
        orders = []
        for oid in order_ids:
            order = s.get(IntentOrder, oid)
            quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
            opp = s.exec(select(Opportunity).where(Opportunity.order_id == oid)).one()
            customer = s.get(Customer, order.customer_id)
            orders.append({
                "order_id": oid, "customer": customer.legal_name, "typed_name": order.customer_name,
                "new_customer": customer.origin == "standard", "stock_short": order.stock_short,
                "status": order.status, "stage": STAGE_LABELS[Stage(opp.stage)],
                "quote_code": quote.code, "total": str(quote.total_amount),
                "quote_pdf": quote.pdf_path, "signing_url": signing_link(settings, quote),
                "signed_pdf": quote.signed_pdf_path})
        todos = [{"kind": t.kind, "title": t.title, "assignee": t.assignee_id, "cc": t.cc,
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
        "prefect_ui": stack.prefect_ui_url, "api": stack.api_url,
        "data_dir": str(settings.data_dir),
    }


def print_summary(summary: dict) -> None:
    print("\n══════════ 销售运营中台 演示结果 ══════════")
    for o in summary["orders"]:
        flags = "（新客户）" if o["new_customer"] else ""
        flags += "（库存不足）" if o["stock_short"] else ""
        print(f"\n意向单 {o['order_id']}  {o['customer']}{flags}")
        if o["typed_name"] != o["customer"]:
            print(f"  销售填写：{o['typed_name']}")
        print(f"  报价单 {o['quote_code']}  含税 ¥{o['total']}  阶段：{o['stage']}")
        print(f"  报价 PDF：{o['quote_pdf']}")
        print(f"  签署链接：{o['signing_url']}")
        if o["signed_pdf"]:
            print(f"  已签署文件：{o['signed_pdf']}")
    print("\n待办：")
    for t in summary["todos"]:
        cc = f"，抄送 {t['cc']}" if t["cc"] else ""
        print(f"  - [{t['kind']}] {t['title']} → {t['assignee']}{cc}")
    print("\n开票申请：")
    for p in summary["invoice_requests"]:
        print(f"  - {p}")
    d = summary["duplicate_delivery"]
    if d:
        print(f"\n重复投递的 webhook：HTTP {d['status']}，返回同一意向单：{'是' if d['same_order'] else '否'}")
    print(f"发出邮件（本地发件箱）：{summary['emails']} 封")
    print(f"Prefect 界面（演示期间）：{summary['prefect_ui']}")
    print(f"数据目录：{summary['data_dir']}")

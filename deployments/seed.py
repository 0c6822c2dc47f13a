"""Sample catalog, staff, customers and stock for the demo and a first look at the hub."""
from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from pathlib import Path

from sqlmodel import select

from connectors.registry import EmbeddedRegistry
from models import (
    Customer, Delivery, IntentOrder, IntentOrderLine, Opportunity, Payment, Product, Quote,
    ReceivableInvoice, Staff, StockLevel,
)
from models.base import SHANGHAI
from models.customer_files import create_customer
from models.db import session_scope

SAMPLE_REGISTRY = Path(__file__).resolve().parent / "sample_data" / "registry.jsonl"

STAFF = [
    # id, name, role, email, region, manager, mobile
    ("mgr-east", "王强", "sales_manager", "wangqiang@example.com", "华东", None, "13900000001"),
    ("mgr-south", "陈静", "sales_manager", "chenjing@example.com", "华南", None, "13900000002"),
    ("rep-zhangwei", "张伟", "rep", "zhangwei@example.com", "华东", "mgr-east", "13900000011"),
    ("rep-lina", "李娜", "rep", "lina@example.com", "华南", "mgr-south", "13900000012"),
    ("ops-01", "吴倩", "sales_ops", "salesops@example.com", None, None, "13900000021"),
    ("legal-01", "刘洋", "legal", "legal@example.com", None, None, None),
    ("purchasing-01", "赵磊", "purchasing", "purchasing@example.com", None, None, None),
    ("finance-01", "孙丽", "finance", "finance@example.com", None, None, None),
    ("risk-01", "周敏", "risk", "risk@example.com", None, None, "13900000031"),
    ("admin", "系统管理员", "admin", "admin@example.com", None, None, None),
]

PRODUCTS = [
    # sku, model, name, product line, unit, price (tax incl.), stock
    ("MON-M8", "M8", "多参数监护仪", "监护", "台", "12800.00", 50),
    ("MON-M12", "M12", "多参数监护仪（高配）", "监护", "台", "18600.00", 5),
    ("PUMP-SP3", "SP3", "注射泵", "输注", "台", "4980.00", 200),
    ("PUMP-VP5", "VP5", "输液泵", "输注", "台", "6580.00", 80),
    ("STER-AC60", "AC60", "脉动真空灭菌器", "消毒", "台", "86000.00", 2),
    ("CONS-ECG10", "ECG10", "心电电极片（100片/盒）", "耗材", "盒", "68.00", 5000),
]

CUSTOMERS = [
    # legal name, USCC, tier, region, province, city, owner, email, aliases
    ("江苏康达医疗设备有限公司", "91320500MA1K2D3F5H", "A", "华东", "江苏", "苏州市", "rep-zhangwei",
     "purchase@kangda-med.example.com", ["江苏康达医械", "康达医疗"]),
    ("浙江仁和医疗器械有限公司", "91330100MA2B7C8D9Q", "B", "华东", "浙江", "杭州市", "rep-zhangwei",
     "caigou@renhe.example.com", ["仁和医疗"]),
    ("广州华南医药贸易有限公司", "91440100MA59QX1R3H", "A", "华南", "广东", "广州市", "rep-lina",
     "order@hnmt.example.com", ["华南医贸"]),
    ("上海申康医疗科技有限公司", "91310000MA1FL3K7X9", "B", "华东", "上海", "上海市", "rep-zhangwei",
     "buyer@shenkang.example.com", ["申康医疗"]),
]


def seed_sample_data(db_url: str) -> None:
    """Idempotent: rows that exist are left as they are."""
    with session_scope(db_url) as s:
        for sid, name, role, email, region, manager, mobile in STAFF:
            if s.get(Staff, sid) is None:
                s.add(Staff(id=sid, name=name, role=role, email=email, region=region,
                            manager_id=manager, mobile=mobile))
                s.flush()
        for sku, model, name, line, unit, price, stock in PRODUCTS:
            if s.get(Product, sku) is None:
                p = Product(sku=sku, model=model, name=name, product_line=line, unit=unit,
                            list_price=Decimal(price), tax_rate=Decimal("0.13"))
                s.add(p)
                s.flush()
                s.add(StockLevel(sku=sku, on_hand=stock))
        registry = EmbeddedRegistry(SAMPLE_REGISTRY)
        for legal, uscc, tier, region, prov, city, owner, email, aliases in CUSTOMERS:
            if s.exec(select(Customer.id).where(Customer.legal_name == legal)).first():
                continue
            # the registry sample has the same companies: their files start consistent with it
            record = registry.lookup(uscc)
            create_customer(
                s, legal_name=legal, actor="seed", origin="imported", short_names=tuple(aliases),
                former_names=record.former_names, registry_checked=True, uscc=uscc,
                status=record.status, registered_capital=record.registered_capital,
                legal_representative=record.legal_representative,
                established_on=record.established_on, tier=tier, region=region, province=prov,
                city=city, owner_rep_id=owner, contact_email=email)


# --- sample history: what finance and the ERP would have recorded --------------------------

_SEQ = itertools.count(1)


def customer_id(db_url: str, legal_name: str) -> int:
    with session_scope(db_url) as s:
        return s.exec(select(Customer.id).where(Customer.legal_name == legal_name)).one()


def record_signed_order(db_url: str, customer: int, order_date: dt.date, lines, *,
                        rep_id: str = "rep-zhangwei", signed_on: dt.date | None = None,
                        delivered_on: dt.date | None = None, order_id: str | None = None
                        ) -> str:
    """An intent order of `lines` [(sku, quantity[, unit price])] dated `order_date`, its quote
    signed on `signed_on` (default: the order date) and, unless `delivered_on` is False,
    delivered in full on `delivered_on` (default: the signing date); `order_id`: its id
    (default: IOH<yymmdd>-<a running number>)."""
    n = next(_SEQ)
    order_id = order_id or f"IOH{order_date:%y%m%d}-{n:05d}"
    signed_on = signed_on or order_date
    signed_at = dt.datetime.combine(signed_on, dt.time(10), SHANGHAI)
    with session_scope(db_url) as s:
        products = {p.sku: p for p in s.exec(select(Product))}
        order = IntentOrder(id=order_id, event_id=f"t-{n}", sender_id="test",
                            customer_name="test", customer_id=customer, rep_id=rep_id,
                            order_date=order_date, status="invoicing",
                            created_at=dt.datetime.combine(order_date, dt.time(9), SHANGHAI))
        s.add(order)
        s.flush()
        total = Decimal("0.00")
        for no, line in enumerate(lines, start=1):
            sku, qty = line[0], line[1]
            price = Decimal(line[2]) if len(line) > 2 else products[sku].list_price
            total += price * qty
            s.add(IntentOrderLine(order_id=order_id, line_no=no, sku=sku,
                                  model=products[sku].model, name=products[sku].name,
                                  quantity=qty, unit=products[sku].unit, unit_price=price,
                                  tax_rate=Decimal("0.13")))
            if delivered_on is not False:
                s.add(Delivery(delivery_no=f"D{n}", order_id=order_id, line_no=no, quantity=qty,
                               delivered_on=delivered_on or signed_on))
        s.add(Quote(code=f"QT-{n:06d}", order_id=order_id, customer_id=customer,
                    total_amount=total, tax_amount=Decimal("0.00"),
                    valid_until=order_date + dt.timedelta(days=15), status="signed",
                    signed_at=signed_at))
        s.add(Opportunity(order_id=order_id, customer_id=customer, rep_id=rep_id,
                          stage="invoicing", amount=total))
    return order_id


def record_invoice(db_url: str, customer: int, due_on: dt.date, amount: str,
                   paid: list[tuple[dt.date, str]] = ()) -> str:
    number = f"INV{next(_SEQ):06d}"
    with session_scope(db_url) as s:
        s.add(ReceivableInvoice(invoice_no=number, customer_id=customer,
                                issued_on=due_on - dt.timedelta(days=30), due_on=due_on,
                                amount=Decimal(amount)))
        s.flush()
        for day, value in paid:
            s.add(Payment(payment_no=f"P{next(_SEQ)}", invoice_no=number, customer_id=customer,
                          paid_on=day, amount=Decimal(value)))
    return number

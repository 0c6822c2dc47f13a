"""Sample catalog, staff, customers and stock for the demo and a first look at the hub."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlmodel import select

from connectors.registry import EmbeddedRegistry
from models import Customer, Product, Staff, StockLevel
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

"""Registry texts as long as registries write them: a 登记状态 such as "存续（在营、开业、在册）"
with a local bureau's note, a partnership's 执行事务合伙人 (companies with their 委派代表) as legal
representative. They are kept whole on SQLite and PostgreSQL (SALESOPS_TEST_DATABASE_URL), and
a text longer than even the wider column is cut, logged, and never stops the sync."""
from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlmodel import select

from flows.hub import current_hub
from flows.registry_watch import refresh_customer
from models import Customer, RegistryChange, Todo
from models.customer_files import CUT_MARK
from models.db import get_engine, session_scope
from tests.flows.test_registry_watch import KANGDA, kangda, tianyancha  # noqa: F401 - fixture

LONG_STATUS = ("存续（在营、开业、在册）；2026年10月12日因通过登记的住所或者经营场所无法联系"
               "被列入经营异常名录")
PARTNERS = ("苏州工业园区康达医疗产业投资合伙企业（有限合伙）、上海浦东新区康达创新医疗器械股权投资"
            "基金管理有限公司（委派代表：顾晓东）")


def test_the_schema_holds_registry_texts_of_their_real_length(db_url):
    columns = {c["name"]: c["type"] for c in sa.inspect(get_engine(db_url)).get_columns("customer")}
    assert columns["status"].length >= 100
    assert columns["legal_representative"].length >= 100


def test_a_long_status_and_legal_representative_are_kept_and_read_back(hub, tianyancha):  # noqa: F811
    assert len(LONG_STATUS) > 20 and len(PARTNERS) > 60  # beyond the columns' old widths
    tianyancha.change(KANGDA, regStatus=LONG_STATUS, legalPersonName=PARTNERS)
    refresh_customer(current_hub(), kangda(hub.db_url).id)
    with session_scope(hub.db_url) as s:
        customer = s.exec(select(Customer).where(Customer.legal_name == KANGDA)).one()
        changes = {c.field: c.new_value for c in s.exec(select(RegistryChange))}
        todo = s.exec(select(Todo).where(Todo.kind == "registry_change")).one()
    assert (customer.status, customer.legal_representative) == (LONG_STATUS, PARTNERS)
    assert changes == {"status": LONG_STATUS, "legal_representative": PARTNERS}
    assert f"登记状态：存续 → {LONG_STATUS}" in todo.body


def test_a_registry_text_longer_than_its_column_is_cut_and_logged(hub, tianyancha,  # noqa: F811
                                                                   caplog):
    endless = LONG_STATUS + "；" + "，".join(f"{n}年度报告未按时公示" for n in range(2010, 2026))
    assert len(endless) > 100
    tianyancha.change(KANGDA, regStatus=endless)
    with caplog.at_level(logging.WARNING, logger="salesops.flows"):
        refresh_customer(current_hub(), kangda(hub.db_url).id)
    stored = kangda(hub.db_url).status
    assert len(stored) == 100 and stored.endswith(CUT_MARK)
    assert endless.startswith(stored[:-len(CUT_MARK)])
    assert any("status cut to the column's 100 characters" in r.getMessage()
               and KANGDA in r.getMessage() for r in caplog.records), caplog.text
    # the same text read again is no change: one alert, not one a day
    refresh_customer(current_hub(), kangda(hub.db_url).id)
    with session_scope(hub.db_url) as s:
        assert [c.new_value for c in s.exec(select(RegistryChange))] == [stored]

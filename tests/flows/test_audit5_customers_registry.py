"""Audit round 5 (customer master data), the registry watch: a new legal name another file
already answers to."""
from __future__ import annotations

from sqlmodel import select

from flows.hub import current_hub
from flows.registry_watch import refresh_customer
from models import Customer, RegistryChange, Todo
from models.customer_files import add_alias, exact_matches
from models.db import session_scope
from tests.flows.test_registry_watch import KANGDA, kangda, tianyancha  # noqa: F401

RENHE = "浙江仁和医疗器械有限公司"
NEW_NAME = "江苏仁和康达医疗科技有限公司"


def test_a_new_name_that_is_another_files_alias_is_reported_not_taken(
        hub, tianyancha):  # noqa: F811
    """Reps' orders typed “江苏仁和康达医疗科技有限公司” were confirmed for 仁和 (a typed
    alias). When the registry renames 康达 to exactly that, renaming 康达 would make two files
    answer to the name and stop those orders as ambiguous: the name waits for a person, the
    risk role hears of a probable duplicate naming the other file, the revocation still lands."""
    with session_scope(hub.db_url) as s:
        renhe = s.exec(select(Customer).where(Customer.legal_name == RENHE)).one()
        add_alias(s, renhe, NEW_NAME, "typed", "manager", "test")
        renhe_id = renhe.id
    tianyancha.change(KANGDA, name=NEW_NAME, regStatus="吊销")
    refresh_customer(current_hub(), kangda(hub.db_url).id)
    with session_scope(hub.db_url) as s:
        customer = s.exec(select(Customer).where(Customer.uscc == "91320500MA1K2D3F5H")).one()
        assert (customer.legal_name, customer.status) == (KANGDA, "吊销")
        assert [c.id for c in exact_matches(s, NEW_NAME)] == [renhe_id]
        changes = s.exec(select(RegistryChange)).all()
        clash = s.exec(select(Todo).where(Todo.title == f"疑似重复客户档案：{KANGDA}")).one()
    assert [(c.field, c.new_value) for c in changes] == [("status", "吊销")]
    assert f"已属于客户档案 {renhe_id}" in clash.body and clash.assignee_id == "risk-01"


def test_a_new_name_of_a_file_already_merged_into_it_does_not_ask_for_a_merge(
        hub, tianyancha):  # noqa: F811
    """A duplicate file was merged into 康达 already; the registry now gives 康达 that file's
    name. Asking risk to “merge first” would send them after a merge that was done: the to-do
    says the name belongs to a file merged into this one and needs a person."""
    from models.customer_files import create_customer, merge_customers
    with session_scope(hub.db_url) as s:
        dup = create_customer(s, legal_name=NEW_NAME, actor="test", origin="imported")
        s.flush()
        dup_id = dup.id
        merge_customers(s, kangda(hub.db_url).id, dup_id, "test")
    tianyancha.change(KANGDA, name=NEW_NAME)
    refresh_customer(current_hub(), kangda(hub.db_url).id)
    with session_scope(hub.db_url) as s:
        clash = s.exec(select(Todo).where(Todo.title == f"疑似重复客户档案：{KANGDA}")).one()
    assert f"已并入本档案的客户档案 {dup_id}" in clash.body, clash.body
    assert "请合并后再同步" not in clash.body

"""Audit: customer files merged (salesops customers merge --into / --review) while the business
keeps running — orders by webhook, quotes being signed, settlements, finance's status pages,
the suggest field — and what every other part shows afterwards."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from api.auth import issue_token
from flows.customer_import import merge_files
from flows.hub import current_hub
from flows.settlement import revision_status, settle_month
from flows.todos import review_qualification
from models import (
    Customer, IntentOrder, OperationLog, Opportunity, Quote, RebateLine, SettlementRun, Staff,
    Todo,
)
from models.customer_files import CustomerFileError, create_customer
from models.db import session_scope
from tests.rebate_support import clock_from, customer_id, publish, signed_order
from tests.support import order_payload, post_order, run_pending, sign_the_quote_of

pytestmark = pytest.mark.usefixtures("prefect_harness")
D = dt.date
KANGDA, SHENKANG = "江苏康达医疗设备有限公司", "上海申康医疗科技有限公司"
RENHE = "浙江仁和医疗器械有限公司"
MONTHLY = """
code: P-MERGE-M
name: 合并审计月度
effective_from: 2026-10-01
rules:
  - {id: flat, measure: amount, period: month, style: retroactive,
     tiers: [{from: 0, rate: 2%}], priority: 1, stacking: stack}
"""
QUARTERLY = """
code: P-MERGE-Q
name: 合并审计季度阶梯
effective_from: 2026-10-01
rules:
  - {id: q, measure: amount, period: quarter, style: retroactive,
     tiers: [{from: 0, to: 50000, rate: 2%}, {from: 50000, rate: 5%}],
     priority: 1, stacking: stack}
"""


@pytest.fixture
def client(hub):
    with TestClient(create_app(hub.settings, launcher=None)) as c:
        yield c


def auth(hub, staff_id: str = "rep-zhangwei") -> dict:
    return {"Authorization": f"Bearer {issue_token(hub.settings, staff_id)}"}


def ids(hub) -> tuple[int, int]:
    return customer_id(hub.db_url, KANGDA), customer_id(hub.db_url, SHENKANG)


# --- defects -------------------------------------------------------------------------------

def test_finance_status_of_a_settled_revision_keeps_the_code_its_voucher_carried(hub):
    """Finance settles October: 康达 has no 财务客户编码 yet (its voucher 记-1 carries the hub's
    C000001), 申康 has 1122.0004 (voucher 记-2). On 5 November the clerk merges 申康 into 康达;
    the merge fills 康达's empty finance code with 申康's. Finance then opens October r1's
    status page (or searches it by 1122.0004) to tick the vouchers off against the books.
    Expected (docs/rebates.md: "finance's status and search … read that customer, so a customer
    merge after settling changes none of them"; docs/finance.md: codes "as the revision's
    voucher carried it"): 康达's row still shows C000001, and the code 1122.0004 finds 申康's
    voucher alone. Actually: 康达's row now shows 1122.0004 — two rows of one revision with one
    finance code, one of them a code its voucher never carried — and searching 1122.0004
    returns 康达's ¥1,280 voucher too."""
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, MONTHLY)
    kangda, shenkang = ids(hub)
    with session_scope(hub.db_url) as s:
        s.get(Customer, shenkang).finance_code = "1122.0004"
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    signed_order(hub.db_url, shenkang, D(2026, 10, 12), [("MON-M8", 2)])
    settle_month(current_hub(), "2026-10", documents=False)
    with session_scope(hub.db_url) as s:
        run = s.exec(select(SettlementRun)).one()
    before = {c["customer_id"]: c["customer_code"]
              for c in revision_status(hub.db_url, run)["customers"]}
    assert before == {kangda: "C000001", shenkang: "1122.0004"}

    merge_files(hub.db_url, kangda, [shenkang], "ops-01")

    after = {c["customer_id"]: c["customer_code"]
             for c in revision_status(hub.db_url, run)["customers"]}
    assert after == before, "a merge changed the codes finance's status shows for a sent revision"
    found = revision_status(hub.db_url, run, q="1122.0004")["customers"]
    assert [c["customer_id"] for c in found] == [shenkang]


def test_a_merge_does_not_lift_legal_rejection_of_the_merged_file(hub, client):
    """Legal reviews 申康 and does not pass it (营业执照已过期): its orders are blocked "until
    legal passes it again" (docs/customers.md). The sales-ops clerk then merges 申康 into 康达
    (one company, two files). A rep sends another order naming 上海申康医疗科技有限公司.
    Expected: it is still blocked (legal has not passed this company again), or at least the
    survivor keeps legal's verdict. Actually: the merge leaves 申康's `rejected` on the merged
    file only; the order lands on 康达 (approved) and is quoted and mailed to the customer
    legal refused — the merge silently lifted legal's decision."""
    kangda, shenkang = ids(hub)
    with session_scope(hub.db_url) as s:
        legal = s.get(Staff, "legal-01")
    review_qualification(hub, shenkang, legal, "rejected", "营业执照已过期")
    merge_files(hub.db_url, kangda, [shenkang], "ops-01")
    oid = post_order(client, order_payload(name=SHENKANG)).json()["order_id"]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        assert order.customer_id == kangda
        assert order.status == "blocked", (
            f"an order of the company legal rejected was {order.status} after the merge")
        assert s.get(Customer, kangda).qualification == "rejected"


def test_suggest_shows_a_branch_under_its_new_head_office_after_the_merge(hub, client):
    """申康 has a branch file (上海申康医疗科技有限公司杭州分公司, linked to 申康). The clerk
    merges 申康 into 康达: the branch follows (its parent is 康达 now, GET /customers/{id}
    says so). A rep, on the running API, types 申康医疗杭州分公司 in the suggest-only customer
    field. Expected: the branch is suggested with its head office 康达 beside it, and the
    branch's parent change is in the operation log like every other change of a file.
    Actually: the suggestion shows the branch with no head office at all (`parent: null`)
    until the process restarts — merge_customers moved the branches with one bulk UPDATE that
    neither stamps `updated_at` (so the index's refresh never re-reads the branch row) nor
    writes the branch's operation-log row."""
    kangda, shenkang = ids(hub)
    with session_scope(hub.db_url) as s:
        branch = create_customer(s, legal_name="上海申康医疗科技有限公司杭州分公司",
                                 actor="test", origin="manual")
        branch_id = branch.id
        assert branch.parent_id == shenkang
    q = {"q": "申康医疗杭州分公司"}
    first = client.get("/customers/suggest", params=q, headers=auth(hub)).json()["candidates"][0]
    assert (first["customer_id"], first["parent"]["customer_id"]) == (branch_id, shenkang)

    merge_files(hub.db_url, kangda, [shenkang], "ops-01")

    assert client.get(f"/customers/{branch_id}", headers=auth(hub)).json()["parent"] == {
        "customer_id": kangda, "legal_name": KANGDA}
    first = client.get("/customers/suggest", params=q, headers=auth(hub)).json()["candidates"][0]
    assert first["customer_id"] == branch_id
    assert first["parent"] == {"customer_id": kangda, "legal_name": KANGDA}
    with session_scope(hub.db_url) as s:
        logged = s.exec(select(OperationLog.changes).where(
            OperationLog.entity == "customer", OperationLog.entity_id == str(branch_id),
            OperationLog.changes.like('%parent_id%'))).all()
    assert any(f"{kangda}" in c for c in logged), "the branch's new head office was not logged"


def test_merging_a_file_already_merged_through_a_chain_names_its_survivor(hub):
    """仁和 was merged into 申康, later 申康 into 康达 (a chain). The clerk, reading an old list,
    runs `merge --into 康达 仁和`. Expected (docs/operations.md: "a file merged earlier is not
    merged into again, and the message names its survivor"): the refusal says 仁和 is in
    康达 already. Actually: it names 申康 (the first hop: 客户档案 2 已于此前合并入 4), a file
    that is itself merged, sending the clerk to the wrong file."""
    kangda, shenkang = ids(hub)
    renhe = customer_id(hub.db_url, RENHE)
    merge_files(hub.db_url, shenkang, [renhe], "ops-01")
    merge_files(hub.db_url, kangda, [shenkang], "ops-01")
    with pytest.raises(CustomerFileError) as refused:
        merge_files(hub.db_url, kangda, [renhe], "ops-01")
    assert f"客户 {kangda}" in str(refused.value) or f"合并入 {kangda}" in str(refused.value), \
        str(refused.value)


# --- checked and fine ----------------------------------------------------------------------

def test_an_order_quoted_before_the_merge_and_signed_after_lands_on_the_survivor(hub, client):
    """A rep's order for 申康医疗 is quoted; the clerk merges 申康 into 康达; the customer signs.
    The quote, opportunity, invoice-preparation to-do are the survivor's; orders sent after
    the merge by any of the merged file's names, or by its id, go to 康达 without a new file
    or a legal review."""
    kangda, shenkang = ids(hub)
    oid = post_order(client, order_payload(name="申康医疗")).json()["order_id"]
    run_pending(hub)
    merge_files(hub.db_url, kangda, [shenkang], "ops-01")
    _, answer = sign_the_quote_of(hub, client, oid)
    assert answer.status_code == 200
    run_pending(hub)
    later = [post_order(client, order_payload(name=n)).json()["order_id"]
             for n in ("申康医疗", SHENKANG, "上海申康医疗")]
    later.append(post_order(client, order_payload(
        name=None, customer={"id": shenkang, "contact_name": "顾晓峰"})).json()["order_id"])
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        assert s.get(IntentOrder, oid).status == "invoicing"
        assert s.exec(select(Quote.customer_id).where(Quote.order_id == oid)).one() == kangda
        assert s.exec(select(Opportunity.customer_id).where(
            Opportunity.order_id == oid)).one() == kangda
        [todo] = s.exec(select(Todo).where(Todo.kind == "invoice_preparation")).all()
        assert todo.customer_id == kangda and KANGDA in todo.title
        for o in later:
            order = s.get(IntentOrder, o)
            assert (order.customer_id, order.status) == (kangda, "quoted"), o
        assert s.exec(select(sa.func.count()).select_from(Customer)).one() == 4
        assert not s.exec(select(Todo).where(Todo.kind == "legal_review")).all()


def test_a_quarter_after_a_merge_sums_both_files_and_pays_nothing_twice(hub):
    """October settled for 康达 and 申康 apart (2 × M8 each, 2 %); 申康 merged into 康达 on
    5 November; 康达 orders one more M8 in November. November's settlement sees one customer's
    quarter (64,000 ≥ 50,000: 5 % on all), pays the difference once; December adds nothing."""
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, QUARTERLY)
    kangda, shenkang = ids(hub)
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 2)])
    signed_order(hub.db_url, shenkang, D(2026, 10, 12), [("MON-M8", 2)])
    assert settle_month(current_hub(), "2026-10", documents=False).total == Decimal("1024.00")
    merge_files(hub.db_url, kangda, [shenkang], "ops-01")
    signed_order(hub.db_url, kangda, D(2026, 11, 12), [("MON-M8", 1)])
    clock_from(D(2026, 12, 5))
    nov = settle_month(current_hub(), "2026-11", documents=False)
    assert (nov.total, nov.by_customer) == (Decimal("2176.00"), {str(kangda): "2176.00"})
    clock_from(D(2027, 1, 5))
    assert settle_month(current_hub(), "2026-12", documents=False).total == Decimal("0.00")
    with session_scope(hub.db_url) as s:
        assert s.exec(select(sa.func.sum(RebateLine.amount))).one() == Decimal("3200.00")

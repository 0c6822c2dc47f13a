"""Audit round 4 (customer master data) at the doors: who sees what of a suspected name."""
from __future__ import annotations

import pytest

from api.auth import issue_token
from models import SuspectName, SuspectSighting
from models.db import session_scope


def auth(hub, staff_id: str) -> dict:
    return {"Authorization": f"Bearer {issue_token(hub.settings, staff_id)}"}


@pytest.fixture
def suspect(hub) -> int:
    """康达新材料: typed once by 李娜 (华南), then twice by 张伟 (华东), escalated to 王强."""
    with session_scope(hub.db_url) as s:
        x = SuspectName(key="康达新材料", display_name="康达新材料", status="collecting",
                        sightings=3, last_rep_id="rep-zhangwei")
        s.add(x)
        s.flush()
        for rep, typed in (("rep-lina", "康达新材料"), ("rep-zhangwei", "康达 新材料"),
                           ("rep-zhangwei", "康达新材料")):
            s.add(SuspectSighting(suspect_id=x.id, typed_name=typed, rep_id=rep))
        return x.id


def test_a_rep_sees_his_own_sightings_of_a_name_not_his_colleagues(client, hub, suspect):
    mine = client.get(f"/customers/suspects/{suspect}", headers=auth(hub, "rep-lina"))
    assert mine.status_code == 200, mine.text
    assert [o["rep_id"] for o in mine.json()["orders"]] == ["rep-lina"]
    # the sales-ops clerk (and the deciding manager) see every sighting
    every = client.get(f"/customers/suspects/{suspect}", headers=auth(hub, "ops-01")).json()
    assert [o["rep_id"] for o in every["orders"]] == ["rep-lina", "rep-zhangwei", "rep-zhangwei"]


def test_a_rep_finds_in_his_list_every_name_he_may_open(client, hub, suspect):
    """李娜 typed the name first (张伟 last): she may open it, so her list shows it, with her
    own sighting only."""
    listed = client.get("/customers/suspects", headers=auth(hub, "rep-lina"))
    assert listed.status_code == 200, listed.text
    assert [x["suspect_id"] for x in listed.json()] == [suspect]
    assert [o["rep_id"] for o in listed.json()[0]["orders"]] == ["rep-lina"]
    # a rep who never typed it sees nothing of it
    with session_scope(hub.db_url) as s:
        from models import Staff
        s.add(Staff(id="rep-wang", name="王五", role="rep", email="w@example.com",
                    region="华南", manager_id="mgr-south"))
    assert client.get("/customers/suspects", headers=auth(hub, "rep-wang")).json() == []
    assert client.get(f"/customers/suspects/{suspect}",
                      headers=auth(hub, "rep-wang")).status_code == 403


def test_a_branch_merged_away_is_not_listed_among_the_branches(client, hub):
    """Two files of one branch were merged: the head office lists the branch once."""
    from models.customer_files import create_customer, merge_customers

    with session_scope(hub.db_url) as s:
        head = create_customer(s, legal_name="浙江华东精工有限公司", actor="t", origin="imported")
        s.flush()
        one = create_customer(s, legal_name="浙江华东精工有限公司杭州分公司", actor="t",
                              origin="imported", parent_id=head.id)
        two = create_customer(s, legal_name="浙江华东精工有限公司杭州分公司（本部）", actor="t",
                              origin="imported", parent_id=head.id)
        s.flush()
        merge_customers(s, one.id, two.id, "t")
        head_id, one_id = head.id, one.id
    view = client.get(f"/customers/{head_id}", headers=auth(hub, "rep-zhangwei")).json()
    assert [b["customer_id"] for b in view["branches"]] == [one_id]


def test_creating_a_file_for_a_credit_code_the_registry_does_not_know_asks_for_the_name(
        client, hub):
    """An ERP sent a USCC as the customer's name; the registry does not know it. Creating the
    file under the code would give the customer a legal name of 18 letters and digits: the
    manager is asked for the legal name, and giving it opens the file with that code."""
    import sqlalchemy as sa

    from models import Customer
    from models.db import get_engine

    code = "91320500MA1XY2Q05C"  # passes the check; nobody has it
    with session_scope(hub.db_url) as s:
        x = SuspectName(key=code.lower(), display_name=code, status="escalated", sightings=3,
                        last_rep_id="rep-zhangwei", decider_id="mgr-east")
        s.add(x)
        s.flush()
        suspect_id = x.id
    with get_engine(hub.db_url).connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM customer")).scalar()
    r = client.post(f"/customers/suspects/{suspect_id}/create", json={},
                    headers=auth(hub, "mgr-east"))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "legal_name_required"
    assert "工商全称" in r.json()["error"]["message"]
    with get_engine(hub.db_url).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM customer")).scalar() == before
    r = client.post(f"/customers/suspects/{suspect_id}/create",
                    json={"legal_name": "苏州新创医疗科技有限公司"}, headers=auth(hub, "mgr-east"))
    assert r.status_code == 200, r.text
    with session_scope(hub.db_url) as s:
        c = s.get(Customer, r.json()["customer_id"])
        assert (c.legal_name, c.uscc, c.uscc_check) == ("苏州新创医疗科技有限公司", code, "ok")


def test_the_reps_manager_may_decide_a_new_name_before_it_is_escalated(client, hub):
    """A brand-new customer orders once: the name would wait for two more orders before any
    manager is asked. The rep's own manager may decide it now; another region's may not."""
    from models import Customer

    with session_scope(hub.db_url) as s:
        x = SuspectName(key="渝康器械", display_name="渝康器械", status="collecting",
                        sightings=1, last_rep_id="rep-zhangwei")
        s.add(x)
        s.flush()
        s.add(SuspectSighting(suspect_id=x.id, typed_name="渝康器械", rep_id="rep-zhangwei"))
        suspect_id = x.id
    with session_scope(hub.db_url) as s:
        from sqlmodel import select
        kangda = s.exec(select(Customer.id).where(
            Customer.legal_name == "江苏康达医疗设备有限公司")).one()
    other = client.post(f"/customers/suspects/{suspect_id}/merge", json={"customer_id": kangda},
                        headers=auth(hub, "mgr-south"))
    assert other.status_code == 403, other.text
    page = client.get(f"/customers/suspects/{suspect_id}", headers=auth(hub, "mgr-east"))
    assert page.status_code == 200 and page.json()["suspect_id"] == suspect_id
    r = client.post(f"/customers/suspects/{suspect_id}/merge", json={"customer_id": kangda},
                    headers=auth(hub, "mgr-east"))
    assert r.status_code == 200, r.text
    with session_scope(hub.db_url) as s:
        assert s.get(SuspectName, suspect_id).status == "merged"

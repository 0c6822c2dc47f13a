"""Audit (replay journey): the what-if replay of a draft against real settlements and the
policy lifecycle around it — `salesops rebates replay --policy DRAFT --from --to`."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from flows.rebate_replay import replay
from models import Delivery
from models.customer_files import merge_customers
from models.db import session_scope
from models.rebates.policy import parse_policy_document
from tests.flows.test_audit_replay_vs_settlement import (
    FROM_SEPTEMBER,
    HUANAN,
    KANGDA,
    POLICY,
    RENHE,
    _before_go_live,
    nonzero,
    settle,
    settled,
    side,
)
from tests.rebate_support import (
    clock_from,
    customer_id,
    invoice,
    publish,
    return_goods,
    signed_order,
)
from tests.support import in_process_cli

D = dt.date
ZERO = Decimal("0.00")

# version 2 from 16 November: the flat 2 % only at a 90 % payment rate
V2 = (POLICY.replace("effective_from: 2026-07-01", "effective_from: 2026-11-16")
      .replace("applies_to: {product_lines: [监护]}\n    measure: amount\n    period: month",
               "applies_to: {product_lines: [监护], payment_rate: {min: 90%}}\n"
               "    measure: amount\n    period: month"))
assert V2.count("payment_rate") == 1


def _history(db: str) -> dict:
    """Q4 2026 of three customers under T-AUDIT: a version change on 16 November, a
    payment-rate condition, a quarter tier crossed in November (retroactive 监护) and a
    marginal band crossed (输注), a late delivery, returns after settlement, and 仁和 merged
    into 康达 in December."""
    kangda, huanan, renhe = (customer_id(db, n) for n in (KANGDA, HUANAN, RENHE))
    o = {}
    clock_from(D(2026, 7, 1))
    publish(db, POLICY)
    invoice(db, kangda, D(2026, 9, 30), "10000.00", [(D(2026, 9, 20), "10000.00")])
    invoice(db, huanan, D(2026, 9, 30), "10000.00", [(D(2026, 10, 20), "10000.00")])
    o["k10"] = signed_order(db, kangda, D(2026, 10, 10), [("MON-M8", 5)])  # 64,000
    o["r10"] = signed_order(db, renhe, D(2026, 10, 12), [("MON-M8", 2)])  # 25,600
    o["h10"] = signed_order(db, huanan, D(2026, 10, 20), [("PUMP-SP3", 3)], rep_id="rep-lina")
    o["late"] = signed_order(db, kangda, D(2026, 10, 28), [("MON-M8", 1)], delivered_on=False)
    settle("2026-09", D(2026, 10, 5))
    settle("2026-10", D(2026, 11, 5))
    clock_from(D(2026, 11, 10))
    with session_scope(db) as s:
        s.add(Delivery(delivery_no="DX-LATE", order_id=o["late"], line_no=1, quantity=1,
                       delivered_on=D(2026, 10, 30)))
    publish(db, V2)
    o["k11"] = signed_order(db, kangda, D(2026, 11, 5), [("MON-M8", 2)])  # 25,600
    o["h11"] = signed_order(db, huanan, D(2026, 11, 12), [("PUMP-VP5", 2)], rep_id="rep-lina")
    o["k11b"] = signed_order(db, kangda, D(2026, 11, 20), [("MON-M8", 1)])  # v2
    o["h11b"] = signed_order(db, huanan, D(2026, 11, 25), [("MON-M8", 1)], rep_id="rep-lina")
    o["r11"] = signed_order(db, renhe, D(2026, 11, 26), [("MON-M8", 1)])
    settle("2026-11", D(2026, 12, 5))
    clock_from(D(2026, 12, 8))
    return_goods(db, o["k10"], 1, 2, D(2026, 12, 8))
    return_goods(db, o["h10"], 1, 1, D(2026, 12, 9))
    with session_scope(db) as s:
        merge_customers(s, kangda, renhe, "staff:ops-01")
    o["k12"] = signed_order(db, kangda, D(2026, 12, 3), [("MON-M12", 1)])
    settle("2026-12", D(2027, 1, 5))
    clock_from(D(2027, 1, 20))
    return o


@pytest.mark.parametrize("start", ["2026-10", "2026-12"])
def test_a_draft_identical_to_the_published_version_changes_nothing(hub, start):
    """The published version 2 replayed as a draft over settled months with claw-backs, a
    late delivery, a version change on 16 November, quarter tiers crossed (retroactive and
    marginal), a merge and a payment-rate condition: no change anywhere, and the 现行 side's
    total and reps are what the settlements stored."""
    db = hub.db_url
    _history(db)
    result = replay(db, parse_policy_document(V2), start, "2026-12")
    changes = {k: r.change for t in (result.customers, result.reps, result.by_month)
               for k, r in t.items() if r.change}
    assert changes == {}
    real = settled(db, [m for m in ("2026-10", "2026-11", "2026-12") if m >= start])
    assert side(result, "published")["total"] == real["total"]
    assert side(result, "published")["reps"] == nonzero(real)["reps"]


def test_a_merged_files_settled_rebates_count_in_its_survivors_row_which_says_so(hub):
    """仁和 was merged into 康达 after October and November were settled; the lines of those
    months are on 仁和's statements and vouchers (booked_customer_id). Its orders are 康达's
    now, and what publishing pays for them is booked to 康达: the replay's row for 康达
    counts them, 仁和's settled 512.00 included, and says that 仁和 is merged into it."""
    db = hub.db_url
    _history(db)
    result = replay(db, parse_policy_document(V2), "2026-10", "2026-12")
    real = nonzero(settled(db, ["2026-10", "2026-12", "2026-11"]))["customers"]
    assert real[RENHE] == Decimal("512.00")
    survivor = real.pop(KANGDA) + real.pop(RENHE)
    assert side(result, "published")["customers"] == {KANGDA: survivor, **real}
    assert result.merged == {KANGDA: [RENHE]}
    assert result.as_dict()["merged"] == {KANGDA: [RENHE]}


DRAFTS = {
    # version 3 from 16 November (takes all of version 2's dates): the flat rate 3 %
    "v2-dates": V2.replace("tiers: [{from: 0, rate: 2%}]", "tiers: [{from: 0, rate: 3%}]"),
    # from 1 October: the quarter tier from 80,000 at 4 %, the pumps' upper band 5 %
    "october": (V2.replace("effective_from: 2026-11-16", "effective_from: 2026-10-01")
                .replace("{from: 0, to: 100000, rate: 0%}", "{from: 0, to: 80000, rate: 0%}")
                .replace("{from: 100000, rate: 3%}", "{from: 80000, rate: 4%}")
                .replace("{from: 20000, rate: 4%}", "{from: 20000, rate: 5%}")),
    # from 1 December, mid-quarter: the quarter tier at 5 %
    "december": (V2.replace("effective_from: 2026-11-16", "effective_from: 2026-12-01")
                 .replace("{from: 100000, rate: 3%}", "{from: 100000, rate: 5%}")),
    # version 2's dates, ending on 30 November: nothing of T-AUDIT from December on
    "closing": V2.replace("effective_from: 2026-11-16",
                          "effective_from: 2026-11-16\neffective_to: 2026-11-30"),
    # from 1 October, 康达 (仁和 merged into it) excluded from the quarter tier by name
    "exclude": (V2.replace("effective_from: 2026-11-16", "effective_from: 2026-10-01")
                .replace("    period: quarter\n    style: retroactive\n",
                         f"    exclude: {{customers: [{KANGDA}]}}\n    period: quarter\n"
                         "    style: retroactive\n")),
}
assert "effective_to" in DRAFTS["closing"] and "exclude" in DRAFTS["exclude"]


@pytest.mark.parametrize("draft", list(DRAFTS))
def test_the_run_after_publishing_pays_what_the_replay_said(hub, draft):
    """Every month of Q4 settled; the draft replayed over October–December, then published;
    January's run (no January orders) pays exactly the replay's change per customer and rep."""
    db = hub.db_url
    _history(db)
    result = replay(db, parse_policy_document(DRAFTS[draft]), "2026-10", "2026-12")
    publish(db, DRAFTS[draft])
    settle("2027-01", D(2027, 2, 5))
    jan = nonzero(settled(db, ["2027-01"]))
    change = {"customers": {k: r.change for k, r in result.customers.items() if r.change},
              "reps": {k: r.change for k, r in result.reps.items() if r.change},
              "total": result.total.change}
    assert change["total"] != ZERO
    assert change == {k: v for k, v in jan.items() if k != "by_month"}


@pytest.mark.parametrize("draft", ["october"])
def test_the_re_run_publishing_asks_for_pays_what_the_replay_said(hub, draft):
    """Publishing into a settled month says: settle 2026-12 again before the next month.
    The re-run of December pays the replay's change per customer and rep."""
    db = hub.db_url
    _history(db)
    result = replay(db, parse_policy_document(DRAFTS[draft]), "2026-10", "2026-12")
    done = publish(db, DRAFTS[draft])
    assert any("salesops settle --month 2026-12" in w.message for w in done.warnings)
    before = settled(db, ["2026-12"])
    settle("2026-12", D(2027, 1, 21))
    after = settled(db, ["2026-12"])
    paid = {k: {n: a - before[k].get(n, ZERO) for n, a in v.items()}
            for k, v in after.items() if k in ("customers", "reps")}
    paid["total"] = after["total"] - before["total"]
    change = {"customers": {k: r.change for k, r in result.customers.items() if r.change},
              "reps": {k: r.change for k, r in result.reps.items() if r.change},
              "total": result.total.change}
    assert change == nonzero(paid)


def test_a_range_starting_in_a_month_never_settled_shows_what_publishing_costs(hub):
    """The hub settles from October on (go-live); September's order (25,600 of 监护) was never
    settled, and September can no longer be (October is). The clerk replays September–
    December with a draft from 1 September (flat 3 % instead of 2 %), then publishes it:
    January's run pays September's order its whole rebate (768.00) plus October's and
    November's 1 % more (640.00 + 256.00) = 1,664.00. The replay said the change was
    1,152.00: its 现行 column pays September's order 512.00 that no settlement paid or
    will pay under the published policies."""
    db = hub.db_url
    _before_go_live(db)
    result = replay(db, parse_policy_document(FROM_SEPTEMBER), "2026-09", "2026-12")
    publish(db, FROM_SEPTEMBER)
    settle("2027-01", D(2027, 2, 5))
    cost = settled(db, ["2027-01"])["total"]
    assert cost == Decimal("1664.00")
    assert result.total.change == cost


@pytest.mark.parametrize("draft", ["october"])
def test_the_current_month_replayed_then_published_and_settled(hub, draft):
    """January replayed on 20 January (not over: noted), the draft published, January
    settled on 5 February with nothing new: it pays what the replay's draft side said."""
    db = hub.db_url
    _history(db)
    kangda, huanan = customer_id(db, KANGDA), customer_id(db, HUANAN)
    signed_order(db, kangda, D(2027, 1, 8), [("MON-M8", 3)])
    signed_order(db, huanan, D(2027, 1, 9), [("PUMP-SP3", 5)], rep_id="rep-lina")
    return_goods(db, signed_order(db, kangda, D(2027, 1, 11), [("MON-M12", 2)]), 1, 1,
                 D(2027, 1, 15))
    result = replay(db, parse_policy_document(DRAFTS[draft]), "2027-01", "2027-01")
    publish(db, DRAFTS[draft])
    settle("2027-01", D(2027, 2, 5))
    assert side(result, "draft") == nonzero(settled(db, ["2027-01"]))


@pytest.fixture
def cli(hub, monkeypatch, capsys, tmp_path):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, tmp_path / "data")


def test_the_cli_says_which_files_a_row_counts_and_lists_months_with_figures(hub, cli,
                                                                           tmp_path):
    """A range of years lists the months that have a figure (20 at most), not the first 20
    of the range, all without any; a survivor's row says which merged files it counts."""
    _history(hub.db_url)
    draft = tmp_path / "draft.yaml"
    draft.write_text(DRAFTS["october"], encoding="utf-8")
    code, out, err = cli("rebates", "replay", "--policy", draft, "--from", "2024-01",
                         "--to", "2026-12")
    assert code == 0, err
    months = out.split("按月：\n")[1].split("\n\n")[0].splitlines()
    assert [m.split("\t")[0].strip() for m in months] == ["2026-10", "2026-11", "2026-12"]
    assert f"注意：{KANGDA} 含已并入的{RENHE}：并入前对其结算的返利也计在该客户下" in out, out

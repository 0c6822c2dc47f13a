"""Audit of returns and exchanges (退货/换货) end to end: scenarios computed by hand against
docs/rebates.md and docs/operations.md (*Deliveries and returns from the ERP*). Each test
fails on a defect found; what was checked and found right is in the audit's report.

The policy is the settlement tests' T-2026Q4: 第一条 flat 2 % per month, 第二条 quarter 0 %
below 100,000 and 3 % (retroactive) from 100,000; MON-M8 at 12,800.00 a unit."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import select

from flows.hub import current_hub
from flows.sales_facts import ImportRefused, import_movements
from flows.settlement import settle_month
from models import RebateLine, SalesReturn
from models.db import session_scope
from tests.flows.test_settlement import POLICY
from tests.rebate_support import clock_from, customer_id, publish, signed_order

D = dt.date
KANGDA = "江苏康达医疗设备有限公司"
DELIVERIES = "发货单号,意向单号,行号,数量,发货日期\n"


@pytest.fixture(autouse=True)
def months_over():
    clock_from(D(2027, 2, 5))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def run_lines(db_url: str, run_id: int | None) -> list[tuple[str, str, str, Decimal, str]]:
    if run_id is None:
        return []
    with session_scope(db_url) as s:
        return sorted((ln.order_id, ln.rule_id, ln.kind, Decimal(str(ln.amount)), ln.explanation)
                      for ln in s.exec(select(RebateLine).where(RebateLine.run_id == run_id)))


# --- an exchange document exported as such is recorded as a return ----------------------------

@pytest.mark.parametrize("header, row", [
    # the exchange document's own number column (an accepted spelling of 退货单号), no 类型
    ("换货单号,意向单号,行号,数量,退货日期,原因", "HH-1,{o},1,2,2026-11-02,屏幕坏点"),
    # the kind given in a column named 退货类型 (not read: neither 类型 nor refused)
    ("退货单号,意向单号,行号,数量,退货日期,退货类型", "HH-1,{o},1,2,2026-11-02,换货"),
], ids=["换货单号", "退货类型"])
def test_an_exchange_exported_as_such_is_replaced_in_its_month_without_a_claw_back(
        hub, tmp_path, header, row):
    """O1 (10 Oct, 5 × MON-M8 = 64,000): October pays 第一条 1,280.00 (第二条: 64,000 <
    100,000, 0 %). 2 Nov: 2 units exchanged (HH-1); 5 Nov: the 2 replacements shipped (FH-R).
    An exchange replaced within its month changes nothing: November settles no line and O1
    keeps 1,280.00.

    Found: a file whose number column is 换货单号 (docs/operations.md lists it as a spelling
    of the returns' number) and has no 类型 column, or whose kind column is headed 退货类型,
    is stored as plain returns (kind `return`, the cell 换货 dropped without a word). The
    replacement shipment is then refused (`累计发货 7，超过订购数量 5`), November claws back
    −512.00 (退货冲回) that no replacement will ever re-pay, and the preview subtracts the 2
    units from the customer's volume as returned for good. Expected: the rows are
    exchanges — or the import is refused, asking for 类型 — never returns silently."""
    db = hub.db_url
    publish(db, POLICY)
    o1 = signed_order(db, customer_id(db, KANGDA), D(2026, 10, 10), [("MON-M8", 5)])
    settle_month(current_hub(), "2026-10", documents=False)
    exchange = write(tmp_path / "换货.csv", f"{header}\n{row.format(o=o1)}\n")
    try:
        import_movements(db, exchange, "t", returns=True)
    except ImportRefused as exc:  # refused asking for the kind: acceptable
        assert "类型" in str(exc), exc
        return
    with session_scope(db) as s:
        kinds = s.exec(select(SalesReturn.kind).where(SalesReturn.return_no == "HH-1")).all()
    replacement = write(tmp_path / "补发.csv", DELIVERIES + f"FH-R,{o1},1,2,2026-11-05\n")
    try:
        import_movements(db, replacement, "t", returns=False)
        refused = None
    except ImportRefused as exc:
        refused = str(exc)
    november = settle_month(current_hub(), "2026-11", documents=False)
    found = [(kind, amount) for _, _, kind, amount, _ in run_lines(db, november.run_id)]
    assert (kinds, refused, found) == (["exchange"], None, []), (kinds, refused, found)


# --- a return corrected after its claw-back was settled ----------------------------------------

def test_a_return_corrected_after_its_claw_back_names_the_correction(hub, tmp_path):
    """O1 (10 Oct, 5 × 12,800 = 64,000) and O2 (12 Oct, 4 × 12,800 = 51,200): the quarter is
    115,200 ≥ 100,000, October pays O1 1,280.00 + 1,920.00 and O2 1,024.00 + 1,536.00.
    2 Nov: TH-1 takes 2 of O1's units back: O1 38,400, the quarter 89,600 (0 %). November
    claws back O1 −512.00 (第一条) and −1,920.00 (第二条), and O2 −1,536.00 (tier).
    In December the ERP re-sends TH-1 with 1 unit (recorded anew): O1 51,200, the quarter
    102,400 (3 %) again. December pays O1 +256.00 (第一条: 1,024.00 − 768.00) and +1,536.00
    (第二条: 51,200 × 3 %), O2 +1,536.00 — nothing twice: every order ends at what its
    net volume earns (checked, right). 

    Found: O1's December lines are labelled 返利 (docs: "more of the order delivered") and
    say only 「本单计返基数由 38,400.00 元 增至 51,200.00 元」: nothing was delivered, a
    return was corrected — the customer's statement must name TH-1 (the correction behind
    the re-payment), as a claw-back names the return behind it. Likewise in January after
    TH-1 is taken back altogether (re-sent with 实退数量 0): +256.00 and +384.00, unexplained."""
    db = hub.db_url
    publish(db, POLICY)
    kangda = customer_id(db, KANGDA)
    o1 = signed_order(db, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    o2 = signed_order(db, kangda, D(2026, 10, 12), [("MON-M8", 4)])
    settle_month(current_hub(), "2026-10", documents=False)
    returns = tmp_path / "退货.csv"
    write(returns, f"退货单号,意向单号,行号,数量,退货日期\nTH-1,{o1},1,2,2026-11-02\n")
    import_movements(db, returns, "t", returns=True)
    november = settle_month(current_hub(), "2026-11", documents=False)
    assert [(o, r, k, a) for o, r, k, a, _ in run_lines(db, november.run_id)] == [
        (o1, "flat", "clawback", Decimal("-512.00")),
        (o1, "quarter", "clawback", Decimal("-1920.00")),
        (o2, "quarter", "tier_difference", Decimal("-1536.00"))]
    write(returns, f"退货单号,意向单号,行号,数量,退货日期\nTH-1,{o1},1,1,2026-11-02\n")
    import_movements(db, returns, "t", returns=True)
    december = run_lines(db, settle_month(current_hub(), "2026-12", documents=False).run_id)
    assert [(o, r, k, a) for o, r, k, a, _ in december] == [
        (o1, "flat", "rebate", Decimal("256.00")),
        (o1, "quarter", "rebate", Decimal("1536.00")),
        (o2, "quarter", "tier_difference", Decimal("1536.00"))]
    write(returns, f"退货单号,意向单号,行号,实退数量,应退数量,退货日期\nTH-1,{o1},1,0,1,2026-11-02\n")
    import_movements(db, returns, "t", returns=True)
    january = run_lines(db, settle_month(current_hub(), "2027-01", documents=False).run_id)
    assert [(o, r, k, a) for o, r, k, a, _ in january] == [
        (o1, "flat", "rebate", Decimal("256.00")),
        (o1, "quarter", "rebate", Decimal("384.00"))]
    unexplained = [(month, rule, text) for month, lines in (("2026-12", december),
                                                           ("2027-01", january))
                   for o, rule, _, _, text in lines if o == o1 and "TH-1" not in text]
    assert unexplained == [], unexplained
    said = "因 2026-11-02 退货（退货单号 TH-1）已更正（退货数量调减或撤销），本单计返基数由 {} 增至 {}。"
    assert [re.search("因 [^。]*增至 [^。]*。", text).group(0) for o, _, _, _, text
            in december + january if o == o1] == [said.format(*pair) for pair in (
                ("38,400.00 元", "51,200.00 元"), ("38,400.00 元", "51,200.00 元"),
                ("51,200.00 元", "64,000.00 元"), ("51,200.00 元", "64,000.00 元"))]


@pytest.mark.parametrize("diff, down", [
    ({"quantity": [2, 1]}, True), ({"quantity": [1, 2]}, False),
    ({"returned_on": ["2026-11-02", "2026-12-01"]}, True),  # counted later: given back now
    ({"returned_on": ["2026-11-02", "2026-10-30"]}, False),
    ({"reason": ["坏点", "屏幕坏点"]}, False),
])
def test_which_logged_return_updates_give_back_what_was_counted(diff, down):
    from flows.settlement import _corrected_down

    assert _corrected_down(diff) is down

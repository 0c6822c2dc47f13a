"""返利比例 on statements and in the finance workbook: the policy's rate where one applies (the
explanation's figure, not due ÷ basis, which the fen rounding moves), a marked effective rate
otherwise; a long customer name in the running head; the wording of a correction."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from decimal import Decimal as D

import pytest

from reports.settlement_workbook import SettlementReport, build_settlement_workbook
from reports.statement_pdf import RATE_NOTE, rate_text, render_statement_pdf
from tests.unit.test_quote_pdf import _run, _squash, needs_poppler
from tests.unit.test_settlement_workbook import KANGDA, line as detail_line
from tests.unit.test_statement_pdf import _doc, line

# 1 % of 99.99 is due 1.00 (rounded to the fen): an effective 1.0001 %
SMALL = dict(basis_amount=D("99.99"), rate=D("0.010001"), due_amount=D("1.00"))


def test_the_policy_rate_is_shown_not_due_over_basis():
    assert rate_text(line(**SMALL, policy_rate=D("0.01"))) == "1%"
    # no single policy rate (a cap share, tiers crossed): the effective rate, marked
    assert rate_text(line(rate=D("0.013699"), policy_rate=None)) == "1.3699%*"
    # nothing to relate the amount to (all returned, the order left the bucket)
    assert rate_text(line(basis_amount=D("0.00"), rate=D("0"), amount="-1.00",
                          kind="clawback", policy_rate=None)) == "—"
    # returned in full: the rule's rate now (the tier the emptier quarter fell to) is not
    # the rate the money taken back was paid at
    assert rate_text(line(basis_amount=D("0.00"), rate=D("0"), amount="-3096000.00",
                          kind="clawback", policy_rate=D("0.01"))) == "—"
    # a caller that does not know the policy's rate: the effective rate, as it always was
    assert rate_text(line(**SMALL)) == "1.0001%"
    with pytest.raises(TypeError):
        line(policy_rate=0.01)


@needs_poppler
def test_statement_prints_the_policy_rate_and_explains_a_marked_one(tmp_path):
    def text_of(lines) -> str:
        path = tmp_path / "s.pdf"
        render_statement_pdf(_doc(lines), path)
        return _run("pdftotext", "-layout", str(path), "-")

    text = text_of((line(amount="1.00", **SMALL, policy_rate=D("0.01"),
                         explanation="本单计返基数 99.99 元 × 1% = 1.00 元。"),))
    assert re.search(r"IO261008-4D8KQ2WZ +2026-10-08 +99\.99 +1% +1\.00 +返利", text), text
    assert "1.0001" not in text
    assert _squash(RATE_NOTE) not in _squash(text)  # nothing marked, no note
    text = text_of((line(amount="136.44", basis_amount=D("9960.00"), rate=D("0.013699"),
                         due_amount=D("136.44"), policy_rate=None),))
    assert re.search(r" 9,960\.00 +1\.3699%\* +136\.44 ", text), text
    assert _squash(RATE_NOTE) in _squash(text)
    # not told whether the policy has a rate: no mark, and no note claiming there is none
    text = text_of((line(amount="136.44", basis_amount=D("9960.00"), rate=D("0.013699"),
                         due_amount=D("136.44")),))
    assert re.search(r" 9,960\.00 +1\.3699% +136\.44 ", text), text
    assert _squash(RATE_NOTE) not in _squash(text)


@needs_poppler
def test_a_long_customer_name_does_not_run_into_the_running_head(tmp_path):
    name = "内蒙古自治区呼和浩特市赛罕区长城医疗器械设备销售与技术服务有限责任公司第一分公司"
    many = tuple(replace(line(), order_id=f"IO2610{i:02d}-{i:04d}ABCD") for i in range(40))
    path = tmp_path / "long.pdf"
    render_statement_pdf(_doc(many, customer_legal_name=name), path)
    out = _run("pdftotext", "-f", "2", "-l", "2", "-bbox", str(path), "-")
    words = [(float(x0), float(y0), float(x1), w) for x0, y0, x1, w in re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>',
        out)]
    top = min(y for _, y, _, _ in words)
    head = sorted((x0, x1, w) for x0, y, x1, w in words if abs(y - top) < 2)
    assert any("续" in w for *_, w in head) and any("2026年10月" in w for *_, w in head)
    for (_, end, _), (start, _, _) in zip(head, head[1:]):
        assert end <= start + 0.5, head  # no word drawn over another


@needs_poppler
def test_a_correction_introduces_itself_in_one_plain_sentence(tmp_path):
    path = tmp_path / "c.pdf"
    render_statement_pdf(_doc(revision=2, settled_before=D("10000.00")), path)
    text = _squash(_run("pdftotext", str(path), "-"))
    assert "返利结算更正（第2版）明细如下：本对账单只列本次更正的差额" in text
    assert "）（" not in text


def test_workbook_has_the_policy_rate_beside_the_effective_rate():
    report = SettlementReport(
        month="2026-10", revision=1, status="draft",
        as_of=dt.datetime(2026, 11, 4, 18, 0, tzinfo=dt.timezone.utc),
        lines=(detail_line(KANGDA, "IO261015-0001", "1.00", **SMALL, policy_rate=D("0.01")),
               detail_line(KANGDA, "IO260910-0002", "-186.01", "clawback",
                           basis_amount=D("0.00"), rate=D("0"), due_amount=D("0.00"),
                           policy_rate=D("0.01")),
               detail_line(KANGDA, "IO260901-0004", "136.44", basis_amount=D("9960.00"),
                           rate=D("0.013699"), due_amount=D("136.44"))))
    ws = build_settlement_workbook(report)["明细"]
    table = list(ws.iter_rows(values_only=True))
    body = [dict(zip(table[0], r)) for r in table[1:]]
    assert [(r["返利比例"], r["实际比例"]) for r in body] == [
        (D("0.01"), D("0.010001")), (D("0.01"), None), (None, D("0.013699"))]
    with pytest.raises(TypeError):
        detail_line(KANGDA, "IO1", "1.00", policy_rate=0.01)


def test_voucher_sheet_names_a_customer_whose_lines_net_to_nothing():
    lines = (detail_line(KANGDA, "IO261027-0001", "123.46", "adjustment"),
             detail_line(KANGDA, "IO261008-0029", "-123.46", "adjustment"))
    report = SettlementReport(
        month="2026-10", revision=3, status="draft",
        as_of=dt.datetime(2026, 11, 27, 6, 0, tzinfo=dt.timezone.utc), lines=lines)
    table = list(build_settlement_workbook(report)["凭证"].iter_rows(values_only=True))
    assert [(r[0], r[8], r[9]) for r in table if r[0] == "无凭证"] == [
        ("无凭证", KANGDA[0], KANGDA[1])]
    assert any(r[0] == "合计" and r[5] == "0 张凭证" for r in table)

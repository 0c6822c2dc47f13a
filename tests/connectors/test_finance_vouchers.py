"""Finance: rebate voucher drafts are booked once, balanced, as a K/3 Cloud import sheet or
over REST."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from pydantic import SecretStr

from connectors.base import PermanentError
from connectors.finance import (
    KINGDEE_COLUMNS,
    KINGDEE_SHEET,
    EmbeddedFinance,
    Finance,
    KingdeeVoucherBook,
    RestFinance,
    VoucherBatch,
    VoucherDraft,
    VoucherEntry,
)
from tests.simulators.base import Faults
from tests.simulators.erp_sim import VOUCHER_PATH, ErpSimulator
from tests.support import run_together

TOKEN = "finance-secret-token"
CALL = f"POST {VOUCHER_PATH}"
EXPENSE = ("6601.09", "销售费用-销售返利")
PAYABLE = ("2241.05", "其他应付款-应付返利")


def entry(account, debit="0.00", credit="0.00", customer=None, summary=None) -> VoucherEntry:
    code, name = account
    return VoucherEntry(summary=summary or "2026年10月返利结算 江苏康达医疗设备有限公司",
                        account_code=code, account_name=name, debit=Decimal(debit),
                        credit=Decimal(credit),
                        customer_code=customer[0] if customer else None,
                        customer_name=customer[1] if customer else None)


KANGDA = ("C000123", "江苏康达医疗设备有限公司")
HENGRUN = ("C000456", "苏州恒润精密机械有限公司")


def voucher(key="RB-2026-10-r1-C000123", entries=None, **changes) -> VoucherDraft:
    draft = VoucherDraft(
        voucher_key=key, voucher_date=dt.date(2026, 10, 31), period="2026-10", word="记",
        entries=entries or (entry(EXPENSE, debit="12345.67", customer=KANGDA),
                            entry(PAYABLE, credit="12345.67", customer=KANGDA)),
        prepared_by="孙丽", attachments=1)
    return dataclasses.replace(draft, **changes)


def clawback_voucher() -> VoucherDraft:
    # a net claw-back: the rebate entries reversed
    summary = "2026年10月返利冲回 苏州恒润精密机械有限公司"
    return voucher("RB-2026-10-r1-C000456", entries=(
        entry(PAYABLE, debit="800.05", customer=HENGRUN, summary=summary),
        entry(EXPENSE, credit="800.05", customer=HENGRUN, summary=summary),
    ), attachments=0)


def batch(batch_id="RB-2026-10-r1", vouchers=None, **changes) -> VoucherBatch:
    made = VoucherBatch(batch_id=batch_id, period="2026-10",
                        vouchers=(voucher(), clawback_voucher()) if vouchers is None
                        else vouchers,
                        note="2026年10月返利结算 第1版")
    return dataclasses.replace(made, **changes)


def money(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


# --- refused batches -----------------------------------------------------------------------

def _unbalanced():
    return batch(vouchers=(voucher(), voucher("RB-2026-10-r1-C000456", entries=(
        entry(EXPENSE, debit="100.00", customer=HENGRUN),
        entry(PAYABLE, credit="99.99", customer=HENGRUN)))))


REFUSED = {
    "unbalanced": (_unbalanced, ["'RB-2026-10-r1-C000456'", "unbalanced", "100.00", "99.99"]),
    "sub-fen": (lambda: batch(vouchers=(voucher(entries=(
        entry(EXPENSE, debit="10.005"), entry(PAYABLE, credit="10.005"))),)),
        ["'RB-2026-10-r1-C000123'", "whole fen"]),
    "float": (lambda: batch(vouchers=(voucher(entries=(
        dataclasses.replace(entry(EXPENSE, debit="10.00"), debit=10.0),
        entry(PAYABLE, credit="10.00"))),)), ["'RB-2026-10-r1-C000123'", "whole fen"]),
    "negative": (lambda: batch(vouchers=(voucher(entries=(
        entry(EXPENSE, debit="-10.00"), entry(PAYABLE, credit="-10.00"))),)),
        ["'RB-2026-10-r1-C000123'", "negative"]),
    "two-sided": (lambda: batch(vouchers=(voucher(entries=(
        entry(EXPENSE, debit="10.00", credit="10.00"), entry(PAYABLE, credit="0.00"))),)),
        ["exactly one of debit and credit"]),
    "one entry": (lambda: batch(vouchers=(voucher(entries=(entry(EXPENSE, debit="0.00"),)),)),
                  ["1 entries"]),
    "empty batch": (lambda: batch(vouchers=()), ["empty batch"]),
    "outside period": (lambda: batch(vouchers=(voucher(voucher_date=dt.date(2026, 11, 1)),)),
                       ["outside 2026-10"]),
    "other period": (lambda: batch(vouchers=(voucher(period="2026-09",
                                                     voucher_date=dt.date(2026, 9, 30)),)),
                     ["differs from the batch"]),
    "twice": (lambda: batch(vouchers=(voucher(), voucher())), ["appears twice"]),
    "no account": (lambda: batch(vouchers=(voucher(entries=(
        entry(("", "销售费用"), debit="1.00"), entry(PAYABLE, credit="1.00"))),)),
        ["no account_code"]),
    "number twice": (lambda: batch(vouchers=(voucher(number=7), dataclasses.replace(
        clawback_voucher(), number=7))), ["number 记-7 is also voucher 'RB-2026-10-r1-C000123'"]),
    "some numbered": (lambda: batch(vouchers=(voucher(number=7), clawback_voucher())),
                      ["1 of 2 vouchers have a number"]),
    "number 0": (lambda: batch(vouchers=(voucher(number=0),)), ["number 0 is not a whole"]),
    "number text": (lambda: batch(vouchers=(voucher(number="7"),)),
                    ["number '7' is not a whole"]),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_embedded_refuses_what_finance_could_not_book(tmp_path, case):
    make, needles = REFUSED[case]
    with pytest.raises(PermanentError) as info:
        EmbeddedFinance(tmp_path).submit_vouchers(make())
    assert info.value.code == "bad-request"
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))
    assert list(tmp_path.iterdir()) == []  # nothing published, not even a folder


# --- embedded ------------------------------------------------------------------------------

def test_embedded_writes_the_batch_as_json_and_import_workbook(tmp_path):
    finance = EmbeddedFinance(tmp_path)
    assert isinstance(finance, Finance)
    reference = finance.submit_vouchers(batch())
    assert reference == "DRAFT-RB-2026-10-r1"
    assert sorted(p.name for p in (tmp_path / "vouchers").iterdir()) == [
        "RB-2026-10-r1.json", "RB-2026-10-r1.xlsx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vouchers"]  # invoices stay apart

    document = json.loads((tmp_path / "vouchers" / "RB-2026-10-r1.json").read_text("utf-8"))
    assert document["reference"] == reference and document["status"] == "draft"
    assert document["layout"] == "kingdee-k3cloud-gl-voucher-import"
    assert document["workbook"] == "RB-2026-10-r1.xlsx"
    sent = document["batch"]
    assert sent["batch_id"] == "RB-2026-10-r1" and sent["period"] == "2026-10"
    first = sent["vouchers"][0]
    assert first["voucher_date"] == "2026-10-31" and first["prepared_by"] == "孙丽"
    assert first["entries"][0] == {
        "summary": "2026年10月返利结算 江苏康达医疗设备有限公司", "account_code": "6601.09",
        "account_name": "销售费用-销售返利", "debit": "12345.67", "credit": "0.00",
        "customer_code": "C000123", "customer_name": "江苏康达医疗设备有限公司"}


def _import_rows(path):
    ws = load_workbook(path)[KINGDEE_SHEET]
    rows = list(ws.iter_rows(values_only=True))
    keys = rows[0]
    return ws, keys, rows[1], [dict(zip(keys, r)) for r in rows[2:]]


def test_embedded_workbook_follows_the_k3cloud_voucher_import_layout(tmp_path):
    book = KingdeeVoucherBook(account_book="001", account_book_name="宁波恒远总账",
                              accounting_org="100", accounting_org_name="宁波恒远精密机械有限公司")
    EmbeddedFinance(tmp_path, voucher_book=book).submit_vouchers(batch())
    ws, keys, captions, rows = _import_rows(tmp_path / "vouchers" / "RB-2026-10-r1.xlsx")
    assert keys == tuple(k for k, _ in KINGDEE_COLUMNS)
    assert keys[:4] == ("FBillHead(GL_VOUCHER)", "FAccountBookID", "FAccountBookID#Name", "FDate")
    assert "*Split*1" in keys and keys.index("*Split*1") < keys.index("FEntity")
    assert captions[keys.index("FDEBIT")] == "(分录)借方金额"
    assert captions[keys.index("FDetailID#FFlex6")] == "(分录)客户#编码"
    assert len(rows) == 4  # two entries per voucher

    first, second, third, fourth = rows
    # voucher head on the first entry row of each voucher only
    assert first["FBillHead(GL_VOUCHER)"] == "1" and third["FBillHead(GL_VOUCHER)"] == "2"
    assert second["FBillHead(GL_VOUCHER)"] is None and second["FDate"] is None
    assert first["FAccountBookID"] == "001" and first["FACCBOOKORGID"] == "100"
    assert first["FDate"] == dt.datetime(2026, 10, 31) and first["FBUSDATE"] == first["FDate"]
    assert (first["FYEAR"], first["FPERIOD"]) == (2026, 10)
    assert (first["FVOUCHERGROUPID"], first["FVOUCHERGROUPID#Name"]) == ("PRE001", "记")
    assert (first["FVOUCHERGROUPNO"], third["FVOUCHERGROUPNO"]) == (1, 2)
    assert (first["FATTACHMENTS"], third["FATTACHMENTS"]) == (1, 0)
    # entries numbered within their voucher
    assert [r["FEntity"] for r in rows] == [1, 2, 1, 2]
    assert [r["FACCOUNTID"] for r in rows] == ["6601.09", "2241.05", "2241.05", "6601.09"]
    assert first["FEXPLANATION"] == "2026年10月返利结算 江苏康达医疗设备有限公司"
    assert [r["FDetailID#FFlex6"] for r in rows] == ["C000123", "C000123", "C000456", "C000456"]
    assert fourth["FDetailID#FFlex6#Name"] == "苏州恒润精密机械有限公司"
    assert all(r["FCURRENCYID"] == "PRE001" and r["FEXCHANGERATETYPE"] == "HLTX01_SYS"
               and r["FEXCHANGERATE"] == 1 for r in rows)
    assert money(first["FDEBIT"]) == Decimal("12345.67") and first["FCREDIT"] is None
    assert money(second["FCREDIT"]) == Decimal("12345.67") and second["FDEBIT"] is None
    assert money(third["FDEBIT"]) == Decimal("800.05") and money(fourth["FCREDIT"]) == Decimal(
        "800.05")
    assert [money(r["FAMOUNTFOR"]) for r in rows] == [Decimal("12345.67")] * 2 + [
        Decimal("800.05")] * 2
    # balanced voucher by voucher, as K/3 Cloud checks on import
    for head in (0, 2):
        pair = rows[head:head + 2]
        assert sum(money(r["FDEBIT"] or 0) for r in pair) == sum(
            money(r["FCREDIT"] or 0) for r in pair)
    col = keys.index("FDEBIT") + 1
    assert ws.cell(3, col).number_format == "#,##0.00"
    assert ws.cell(3, keys.index("FACCOUNTID") + 1).number_format == "@"


def test_embedded_default_book_leaves_company_codes_for_finance(tmp_path):
    EmbeddedFinance(tmp_path).submit_vouchers(batch())
    ws, keys, _, rows = _import_rows(tmp_path / "vouchers" / "RB-2026-10-r1.xlsx")
    assert rows[0]["FAccountBookID"] is None and rows[0]["FACCBOOKORGID"] is None
    # the blanks finance fills in keep the text format: a code such as 001 stays 001
    for key in ("FAccountBookID", "FACCBOOKORGID"):
        assert ws.cell(3, keys.index(key) + 1).number_format == "@"
    assert ws.freeze_panes == "A3"


def test_embedded_replay_returns_the_same_reference_and_writes_nothing(tmp_path):
    finance = EmbeddedFinance(tmp_path)
    first = finance.submit_vouchers(batch())
    folder = tmp_path / "vouchers"
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir()}
    again = EmbeddedFinance(tmp_path).submit_vouchers(batch())
    assert again == first
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir()}
    assert after == before  # no new file, no rewrite, no temp file left


def test_embedded_same_batch_id_with_other_content_is_refused(tmp_path):
    finance = EmbeddedFinance(tmp_path)
    finance.submit_vouchers(batch())
    changed = batch(vouchers=(voucher(),))  # the claw-back voucher dropped
    with pytest.raises(PermanentError) as info:
        finance.submit_vouchers(changed)
    assert info.value.code == "conflict" and "new revision" in str(info.value)
    # a new revision is a new batch
    assert finance.submit_vouchers(batch("RB-2026-10-r2", vouchers=(voucher(
        "RB-2026-10-r2-C000123"),))) == "DRAFT-RB-2026-10-r2"


def test_embedded_concurrent_submissions_publish_once(tmp_path):
    references, errors = run_together(lambda: EmbeddedFinance(tmp_path).submit_vouchers(batch()),
                                      8)
    assert not errors
    assert set(references) == {"DRAFT-RB-2026-10-r1"}
    assert sorted(p.name for p in (tmp_path / "vouchers").iterdir()) == [
        "RB-2026-10-r1.json", "RB-2026-10-r1.xlsx"]


def test_embedded_completes_a_batch_interrupted_before_its_json(tmp_path):
    folder = tmp_path / "vouchers"
    folder.mkdir()
    (folder / "RB-2026-10-r1.xlsx").write_bytes(b"half written by a crashed worker")
    assert EmbeddedFinance(tmp_path).submit_vouchers(batch()) == "DRAFT-RB-2026-10-r1"
    load_workbook(folder / "RB-2026-10-r1.xlsx")  # replaced by a whole workbook


def test_embedded_unreadable_marker_is_permanent(tmp_path):
    folder = tmp_path / "vouchers"
    folder.mkdir()
    (folder / "RB-2026-10-r1.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(PermanentError) as info:
        EmbeddedFinance(tmp_path).submit_vouchers(batch())
    assert info.value.code == "corrupt-draft"


# --- REST ----------------------------------------------------------------------------------

@pytest.fixture
def sim():
    with ErpSimulator(TOKEN) as simulator:
        yield simulator


def client(sim, token=TOKEN, attempts=4, timeout=2.0):
    return RestFinance(sim.url, SecretStr(token), timeout, attempts)


def test_rest_posts_the_batch_with_its_idempotency_key(sim):
    with client(sim) as finance:
        assert isinstance(finance, Finance)
        reference = finance.submit_vouchers(batch())
    assert reference == "VCH-000001"
    body = sim.voucher_batches["RB-2026-10-r1"]
    assert body["period"] == "2026-10" and len(body["vouchers"]) == 2
    assert body["vouchers"][1]["entries"][0]["debit"] == "800.05"  # exact decimal string
    assert body["vouchers"][0]["voucher_date"] == "2026-10-31"
    assert sim.voucher_effects["RB-2026-10-r1"] == 1
    assert sim.effect_count == 0  # no invoice request on the side


def test_rest_replay_returns_the_same_reference_and_books_nothing_new(sim):
    with client(sim) as finance:
        first = finance.submit_vouchers(batch())
        again = finance.submit_vouchers(batch())
    assert again == first
    assert sim.voucher_effects["RB-2026-10-r1"] == 1
    assert sim.voucher_replays["RB-2026-10-r1"] == 1


@pytest.mark.parametrize("case", ["unbalanced", "sub-fen", "negative", "empty batch"])
def test_rest_refuses_before_calling(sim, case):
    make, needles = REFUSED[case]
    with client(sim) as finance:
        with pytest.raises(PermanentError) as info:
            finance.submit_vouchers(make())
    assert needles[0] in str(info.value)
    assert sim.calls[CALL] == 0


def test_rest_finance_refusing_an_unbalanced_voucher_is_permanent_and_not_retried(sim):
    body = _unbalanced().to_json_dict()  # past our own check, as a buggy client would send it
    with client(sim, attempts=5) as finance:
        with pytest.raises(PermanentError) as info:
            finance._post(VOUCHER_PATH, body, body["batch_id"])
    assert info.value.code == "422" and "unbalanced" in str(info.value)
    assert sim.calls[CALL] == 1 and not sim.voucher_effects


def test_rest_reused_key_with_another_body_is_permanent(sim):
    with client(sim) as finance:
        finance.submit_vouchers(batch())
        with pytest.raises(PermanentError) as info:
            finance.submit_vouchers(batch(vouchers=(voucher(),)))
    assert info.value.code == "422"
    assert sum(sim.voucher_effects.values()) == 1


def test_rest_refused_token_is_permanent_and_not_retried(sim):
    with client(sim, token="revoked", attempts=5) as finance:
        with pytest.raises(PermanentError) as info:
            finance.submit_vouchers(batch())
    assert info.value.code == "401"
    assert sim.calls[CALL] == 1 and not sim.voucher_effects


def test_rest_lost_answer_does_not_book_twice(sim):
    sim.lose_answers(1, hang_seconds=1.5)
    with client(sim, timeout=0.5) as finance:
        reference = finance.submit_vouchers(batch())
    assert reference == "VCH-000001"
    assert sim.voucher_effects["RB-2026-10-r1"] == 1
    assert sim.voucher_replays["RB-2026-10-r1"] >= 1


def test_rest_5xx_and_timeouts_are_retried_with_one_effect_each():
    faults = Faults(rate=0.35, hang_seconds=1.5, seed=5, only_paths=(VOUCHER_PATH,))
    batches = [batch(f"RB-2026-{m:02d}-r1", vouchers=(
        voucher(f"RB-2026-{m:02d}-r1-C000123", period=f"2026-{m:02d}",
                voucher_date=dt.date(2026, m, 28)),), period=f"2026-{m:02d}")
        for m in range(1, 13)]
    with ErpSimulator(TOKEN, faults=faults) as sim:
        with client(sim, attempts=8, timeout=0.5) as finance:
            references = [finance.submit_vouchers(b) for b in batches]
        assert sim.injected["5xx"] > 0 and sim.injected["hang"] > 0
        assert sim.calls[CALL] > len(batches)  # retried
        assert len(set(references)) == len(batches)
        assert dict(sim.voucher_effects) == {b.batch_id: 1 for b in batches}


def test_rest_gives_up_after_its_attempts_with_a_transient_error():
    from connectors.base import TransientError

    with ErpSimulator(TOKEN, faults=Faults(rate=1.0, only_paths=(VOUCHER_PATH,))) as sim:
        with client(sim, attempts=3) as finance:
            with pytest.raises(TransientError):
                finance.submit_vouchers(batch())
        assert sim.calls[CALL] == 3 and not sim.voucher_effects


def test_a_batch_reads_back_from_its_json_form_unchanged():
    sent = batch(vouchers=(voucher(), clawback_voucher()))
    assert VoucherBatch.from_json_dict(json.loads(json.dumps(sent.to_json_dict()))) == sent


def test_the_workbook_and_json_carry_the_numbers_issued_to_the_vouchers(tmp_path):
    """凭证号 continue within the period across batches: a batch's may start anywhere; the
    单据头序号 stays the head's row key within the file (1…n)."""
    numbered = batch("RB-2026-10-r2", vouchers=(voucher(number=4), dataclasses.replace(
        clawback_voucher(), number=5)))
    EmbeddedFinance(tmp_path).submit_vouchers(numbered)
    _, _, _, rows = _import_rows(tmp_path / "vouchers" / "RB-2026-10-r2.xlsx")
    assert [(r["FBillHead(GL_VOUCHER)"], r["FVOUCHERGROUPNO"]) for r in rows] == [
        ("1", 4), (None, None), ("2", 5), (None, None)]
    document = json.loads((tmp_path / "vouchers" / "RB-2026-10-r2.json").read_text("utf-8"))
    assert [v["number"] for v in document["batch"]["vouchers"]] == [4, 5]
    assert VoucherBatch.from_json_dict(document["batch"]) == numbered


def test_a_batch_prepared_before_numbers_were_issued_keeps_its_form():
    """Without numbers, a batch is numbered 1…n (as such batches were sent) and its JSON has
    no `number`: sent again, it is the same content under its batch id."""
    legacy = batch()
    assert all("number" not in v for v in legacy.to_json_dict()["vouchers"])
    assert [v.number for v in legacy.numbered()] == [1, 2]
    numbered = batch(vouchers=(voucher(number=8), dataclasses.replace(clawback_voucher(),
                                                                      number=9)))
    assert numbered.numbered() == numbered.vouchers

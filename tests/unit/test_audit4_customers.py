"""Audit round 4 (customer master data), pieces testable on a bare database."""
from __future__ import annotations

from models import Customer
from models.customer_files import create_customer, merge_customers
from models.db import session_scope


def test_a_merge_keeps_the_finance_code_of_the_merged_file(db_url):
    """Finance knows the customer by the code of the file that was merged away: the survivor
    must carry it, or its vouchers fall back to a system number (C000…)."""
    with session_scope(db_url) as s:
        survivor = create_customer(s, legal_name="江苏康达医疗设备有限公司", actor="t",
                                   origin="imported")
        merged = create_customer(s, legal_name="江苏康达医疗器械有限公司", actor="t",
                                 origin="imported", finance_code="K-1001")
        s.flush()
        merge_customers(s, survivor.id, merged.id, "t")
        s.flush()
        assert s.get(Customer, survivor.id).finance_code == "K-1001"


def test_a_merge_never_overwrites_the_survivors_finance_code(db_url):
    with session_scope(db_url) as s:
        survivor = create_customer(s, legal_name="江苏康达医疗设备有限公司", actor="t",
                                   origin="imported", finance_code="K-0001")
        merged = create_customer(s, legal_name="江苏康达医疗器械有限公司", actor="t",
                                 origin="imported", finance_code="K-1001")
        s.flush()
        merge_customers(s, survivor.id, merged.id, "t")
        s.flush()
        assert s.get(Customer, survivor.id).finance_code == "K-0001"


def test_a_merge_that_gives_the_survivor_a_uscc_gives_it_the_code_check_too(db_url):
    """The survivor takes the merged file's USCC: its check result goes with it, or the
    watch would ask the registry by name and the file would show a code never checked."""
    with session_scope(db_url) as s:
        survivor = create_customer(s, legal_name="江苏康达医疗设备有限公司", actor="t",
                                   origin="imported")
        merged = create_customer(s, legal_name="江苏康达医疗器械有限公司", actor="t",
                                 origin="imported", uscc="91320500MA1K2D3F5H")
        s.flush()
        merge_customers(s, survivor.id, merged.id, "t")
        s.flush()
        c = s.get(Customer, survivor.id)
        assert (c.uscc, c.uscc_check) == ("91320500MA1K2D3F5H", "ok")


def test_a_refused_character_is_shown_as_the_person_typed_it():
    """A rep typed a Chinese comma: the message names “，”, not the ASCII “,” it folds to
    (which he cannot find in what he typed)."""
    from models.name_input import check_customer_name

    problem = check_customer_name("康达，医疗")
    assert problem.code == "invalid_characters"
    assert problem.message == "客户名称含有不允许的字符：，"
    assert check_customer_name("康达；医疗'").message == "客户名称含有不允许的字符：' ；"
    # full-width letters and brackets are still fine
    assert check_customer_name("ＡＢＣ医疗（苏州）有限公司") is None


def _settled_line(s, customer_id: int, order_id: str, run_id: int, bucket: dict,
                  rule: str = "r1") -> None:
    import datetime as dt
    import json
    from decimal import Decimal

    from models import IntentOrder, RebateBucketInputs, RebateLine

    s.add(IntentOrder(id=order_id, event_id=f"e-{order_id}", sender_id="portal",
                      customer_name="x", customer_id=customer_id,
                      order_date=dt.date(2026, 10, 8)))
    s.flush()
    key = f"P-EAST|{rule}|{customer_id}|2026-10"
    s.add(RebateBucketInputs(run_id=run_id, bucket_key=key, policy_version=1,
                             inputs=json.dumps(bucket, ensure_ascii=False)))
    s.add(RebateLine(run_id=run_id, month="2026-10", order_id=order_id, customer_id=customer_id,
                     booked_customer_id=customer_id, policy_code="P-EAST", policy_version=1,
                     rule_id=rule, clause="阶梯返利",
                     period="2026-10", bucket_key=key, basis_amount=Decimal("100.00"),
                     due_amount=Decimal("3.00"), amount=Decimal("3.00"),
                     rate=Decimal("0.03"), kind="rebate", explanation="…",
                     inputs=json.dumps({"basis": "100.00"})))
    s.flush()


def _two_files_and_a_run(s):
    """Two files of one company and a settlement run of October 2026: (survivor, merged, run
    id), for lines settled before the merge."""
    import datetime as dt

    from models import SettlementRun, utcnow

    survivor = create_customer(s, legal_name="江苏康达医疗设备有限公司", actor="t",
                               origin="imported")
    merged = create_customer(s, legal_name="江苏康达医疗器械有限公司", actor="t",
                             origin="imported")
    s.flush()
    run = SettlementRun(month="2026-10", revision=1, kind="initial",
                        as_of=utcnow() - dt.timedelta(days=1), created_by="t")
    s.add(run)
    s.flush()
    return survivor, merged, run.id


def test_settled_lines_moved_by_a_merge_keep_what_their_bucket_was_computed_from(db_url):
    """The statement and the board read a line's bucket inputs (volume, tier reached) by its
    bucket key; a merge re-keys the moved lines, and they must still find what they were
    computed from — not nothing, and not the survivor's own bucket of the same month."""
    from sqlmodel import select

    from flows.settlement import line_inputs
    from models import RebateLine

    with session_scope(db_url) as s:
        survivor, merged, run_id = _two_files_and_a_run(s)
        _settled_line(s, survivor.id, "IO-1", run_id, {"volume": "500.00", "tier": "一档"})
        _settled_line(s, merged.id, "IO-2", run_id, {"volume": "900.00", "tier": "二档"})
        merge_customers(s, survivor.id, merged.id, "t")
        s.flush()
        lines = s.exec(select(RebateLine).order_by(RebateLine.order_id)).all()
        got = {ln.order_id: (ln.customer_id, ln.booked_customer_id, i.get("volume"),
                             i.get("tier")) for ln, i in zip(lines, line_inputs(s, lines))}
    # each stays booked to the file it was settled for (its statement's and voucher's)
    assert got == {"IO-1": (survivor.id, survivor.id, "500.00", "一档"),
                   "IO-2": (survivor.id, merged.id, "900.00", "二档")}


def test_a_merge_rekeys_only_the_customer_field_of_a_bucket_key(db_url):
    """A rule id may be a number, and may equal the merged customer's id: the survivor's own
    line of rule "<merged id>" keeps its key (it was rewritten, and the next settlement paid
    and took back the same amount twice)."""
    from sqlmodel import select

    from models import RebateLine

    with session_scope(db_url) as s:
        survivor, merged, run_id = _two_files_and_a_run(s)
        rule = str(merged.id)
        _settled_line(s, survivor.id, "IO-1", run_id, {"volume": "500.00"}, rule=rule)
        _settled_line(s, merged.id, "IO-2", run_id, {"volume": "900.00"}, rule=rule)
        merge_customers(s, survivor.id, merged.id, "t")
        s.flush()
        keys = {ln.order_id: ln.bucket_key for ln in s.exec(select(RebateLine))}
    assert keys == {"IO-1": f"P-EAST|{rule}|{survivor.id}|2026-10",
                    "IO-2": f"P-EAST|{rule}|{survivor.id}|2026-10"}

"""Two reps who share a name stay apart in finance's workbook (按销售) and in the
settlement's totals: the lines' rep ids reach both."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl

from flows.hub import current_hub
from flows.settlement import breakdowns, settle_month
from models import Staff
from models.db import session_scope
from tests.flows.test_settlement import POLICY
from tests.rebate_support import clock_from, customer_id, publish, signed_order

D = dt.date


def test_two_reps_of_one_name_are_two_rows_in_the_finance_workbook(hub):
    clock_from(D(2027, 1, 5))
    publish(hub.db_url, POLICY)
    with session_scope(hub.db_url) as s:
        zhang = s.get(Staff, "rep-zhangwei")
        s.add(Staff(id="rep-zhangwei2", name=zhang.name, role="rep", email="zw2@example.com",
                    region="华南"))
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 1)])
    signed_order(hub.db_url, kangda, D(2026, 10, 12), [("MON-M8", 2)], rep_id="rep-zhangwei2")
    result = settle_month(current_hub(), "2026-10")
    wb = openpyxl.load_workbook(Path(result.documents["workbook"]))
    reps = [r[0] for r in wb["按销售"].iter_rows(min_row=2, values_only=True)][:-1]
    assert len(reps) == 2, reps  # 12,800 × 2 % = 256.00 and 25,600 × 2 % = 512.00, apart
    # and so are they in the settlement's totals (the CLI's and the flow's table)
    assert dict(breakdowns(result.as_dict()))["销售"] == {
        f"{zhang.name}（rep-zhangwei）": "256.00", f"{zhang.name}（rep-zhangwei2）": "512.00"}
    assert result.by_rep == {"rep-zhangwei": "256.00", "rep-zhangwei2": "512.00"}

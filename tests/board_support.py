"""A world for the rebate board pages: three reps in two regions, a confirmed September, a
pending October, orders in November still to be settled (expected), and a policy whose text
and names carry characters that must be escaped on a page.

Money by hand (policy T-BOARD: 监护 lines, monthly volume per customer, 10.2 % below 50,000):
- September, 康达 (华东, 张伟): 2 × M8 = 25,600 → 2,611.20, settled and confirmed
- October, pending finance's review:
  康达 (华东, 张伟) 3 × M8 = 38,400 → 3,916.80
  华南医贸 (华南, 李娜) 1 × M12 = 18,600 → 1,897.20
  申康 (华东, 赵六) 1 × M8 = 12,800 → 1,305.60
- November (today is 2026-11-20): 康达 (张伟) 1 × M8 = 12,800 → 1,305.60 expected
"""
from __future__ import annotations

import datetime as dt

from flows.hub import current_hub
from flows.settlement import confirm_settlement, settle_month
from models import Customer, Staff, set_clock
from models.db import session_scope
from tests.rebate_support import customer_id, publish, signed_order

D = dt.date
POLICY_TEXT = ("第一条 月度阶梯：当月监护产品线含税销售额5万元以下按10.2%返利，5万元及以上按10%返利。\n"
               "第二条 <b>本政策</b>与其他政策叠加 & 按月结算。")
POLICY = f"""
code: T-BOARD
name: 看板测试监护返利政策
effective_from: 2026-09-01
text: |
  {POLICY_TEXT.splitlines()[0]}
  {POLICY_TEXT.splitlines()[1]}
rules:
  - id: month-tier
    name: 月度阶梯
    clause: 第一条
    applies_to: {{product_lines: [监护]}}
    measure: amount
    period: month
    style: retroactive
    tiers:
      - {{from: 0, to: 50000, rate: 10.2%}}
      - {{from: 50000, rate: 10%}}
    priority: 10
    stacking: stack
"""
# version 2 takes over on 1 December: version 1 governs 2026-09-01 … 2026-11-30
POLICY_V2 = POLICY.replace("effective_from: 2026-09-01", "effective_from: 2026-12-01") \
    .replace("rate: 10.2%", "rate: 11%")

SHENKANG = "上海申康<医疗>&科技有限公司"   # renamed so that escaping shows
ZHAOLIU = '赵六"<i>'                      # a rep whose name needs escaping too


def at(day: dt.date, hour: int = 10) -> None:
    """The business clock at `hour` o'clock in Shanghai on `day`."""
    set_clock(lambda: dt.datetime(day.year, day.month, day.day, hour - 8, tzinfo=dt.UTC))


def board_world(db_url: str) -> dict:
    with session_scope(db_url) as s:
        s.add(Staff(id="rep-zhaoliu", name=ZHAOLIU, role="rep", email="zhaoliu@example.com",
                    region="华东", manager_id="mgr-east"))
        shenkang = s.get(Customer, customer_id(db_url, "上海申康医疗科技有限公司"))
        shenkang.legal_name = SHENKANG
        s.add(shenkang)
    publish(db_url, POLICY)
    publish(db_url, POLICY_V2)
    kangda = customer_id(db_url, "江苏康达医疗设备有限公司")
    huanan = customer_id(db_url, "广州华南医药贸易有限公司")
    shenkang_id = customer_id(db_url, SHENKANG)
    sep = signed_order(db_url, kangda, D(2026, 9, 5), [("MON-M8", 2)])
    at(D(2026, 10, 5))
    settle_month(current_hub(), "2026-09")
    o1 = signed_order(db_url, kangda, D(2026, 10, 10), [("MON-M8", 3)])
    o2 = signed_order(db_url, huanan, D(2026, 10, 11), [("MON-M12", 1)], rep_id="rep-lina")
    o3 = signed_order(db_url, shenkang_id, D(2026, 10, 12), [("MON-M8", 1)],
                      rep_id="rep-zhaoliu")
    at(D(2026, 11, 5))
    settle_month(current_hub(), "2026-10")
    # confirmed after October's run (which would write any confirmed statements missed):
    # September's confirmed statements are not written yet
    with session_scope(db_url) as s:
        finance = s.get(Staff, "finance-01")
    confirm_settlement(db_url, "2026-09", 1, finance)
    nov = signed_order(db_url, kangda, D(2026, 11, 3), [("MON-M8", 1)])
    at(D(2026, 11, 20))
    return {"kangda": kangda, "huanan": huanan, "shenkang": shenkang_id,
            "sep": sep, "o1": o1, "o2": o2, "o3": o3, "nov": nov}

"""Order ids: IO<yymmdd>-<millisecond of the day>-<4 random symbols>, the business date in
Asia/Shanghai. The ids of a day sort in the order the orders came in: the rebate engine lays
a day's orders out by id (a marginal band, a cap's last fen), and a preview of an order being
entered lays it after the day's other orders (tests/flows/test_preview_matches_settlement.py)."""
from __future__ import annotations

import datetime as dt
import random
import re

from models.base import SHANGHAI
from models.codes import ALPHABET, new_order_id

SHAPE = re.compile(rf"IO[0-9]{{6}}-[{ALPHABET}]{{6}}-[{ALPHABET}]{{4}}")


def test_a_days_ids_sort_in_the_order_the_orders_came_in():
    rng = random.Random(7)
    day = dt.datetime(2026, 11, 20, tzinfo=SHANGHAI)
    # a millisecond apart at least, from the first to the last millisecond of the day
    ms = sorted(rng.sample(range(24 * 3600 * 1000), 2000)) + [24 * 3600 * 1000 - 1]
    ms[0] = 0
    moments = [day + dt.timedelta(milliseconds=m) for m in ms]
    ids = [new_order_id(at.astimezone(dt.UTC)) for at in moments]
    assert all(SHAPE.fullmatch(i) and i.startswith("IO261120-") for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert ids[0].startswith("IO261120-000000-") and ids[-1].startswith("IO261120-2JCPZZ-")


def test_the_date_is_the_business_date_in_shanghai():
    # 16:30 UTC on 30 September is 00:30 on 1 October in Shanghai
    late = dt.datetime(2026, 9, 30, 16, 30, tzinfo=dt.UTC)
    assert new_order_id(late).startswith("IO261001-01PXT0-")  # 1,800,000 ms after midnight
    before = new_order_id(late - dt.timedelta(hours=1))
    assert before.startswith("IO260930-") and before < new_order_id(late)

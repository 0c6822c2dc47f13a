"""Audit round 4 (H5): finance's board counts tens of thousands of orders; a count reads with
thousands separators like the money beside it (89,416 张订单, not 89416 张订单)."""
from __future__ import annotations

import re

from api.board_pages import board_page, orders_count, orders_page

EVERYONE = {"rep": None, "region": None}


def visible(html_text: str) -> str:
    return re.sub(r"<[^>]+>", "", html_text)


def test_order_counts_read_with_thousands_separators():
    assert orders_count(89416) == "89,416 张订单" and orders_count(3) == "3 张订单"
    data = {"scope": {"label": "全部返利", "rep_id": None, "region": None},
            "today": "2026-11-20",
            "figures": [{"status": "pending", "label": "待复核", "amount": "9123456.70",
                         "orders": 89416}], "months": []}
    _, content = board_page(data, {}, EVERYONE)
    assert "89,416 张订单" in visible(content)
    row = {"order_id": "IOH261119-00119", "order_date": "2026-11-19", "customer_id": 5,
           "customer": "江苏康达医疗设备有限公司", "amount": "1280.00", "kinds": ["返利"],
           "months": ["2026-11"]}
    figure = {"count": 89416, "amount": "9123456.70", "offset": 1000, "limit": 50,
              "orders": [row] * 50}
    _, content = orders_page("pending", None, figure, "全部返利", 2026, EVERYONE)
    text = visible(content)
    assert "89,416 张订单" in text and "第 1,001–1,050 张，共 89,416 张" in text

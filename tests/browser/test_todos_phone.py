"""我的待办 on a small phone (360 px) in headless Chromium: nothing wider than the screen, a
long to-do text wraps, and the buttons and links are a thumb's size."""
from __future__ import annotations

import datetime as dt

import pytest

from api.pages import render
from api.todos import todos_page
from models import Staff
from tests.browser.conftest import browser_unavailable

_why_not = browser_unavailable()
pytestmark = pytest.mark.skipif(_why_not is not None, reason=_why_not or "")

SMALL_PHONE = {"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True}
LONG = "江苏省苏州市工业园区康达医疗设备科技发展有限公司第二分公司（原苏州康达医疗器械贸易有限公司）"
DUE = dt.datetime(2026, 11, 20, 2, tzinfo=dt.UTC).isoformat()


def todo(n: int, kind: str, **extra) -> dict:
    return {"id": n, "kind": kind, "kind_label": {"legal_review": "法务资质初审"}.get(kind, "采购预警"),
            "title": f"新客户资质初审：{LONG}", "body": ("工商登记：" + LONG + "，") * 4,
            "status": "open", "assignee": "legal-01", "assignee_name": "刘洋", "cc": [],
            "due_at": DUE, "overdue": n == 1, "order_id": "IOH261119-4D8KQ2WZ",
            "customer_id": 7, "done_by": None, "done_by_name": None, "done_at": None,
            "outcome": None, "outcome_label": None, "note": None, "may_do": True,
            "outcomes": ["approved", "rejected"] if kind == "legal_review" else ["done"],
            **extra}


def test_my_todos_fit_a_small_phone(phone, tmp_path):
    person = Staff(id="legal-01", name="刘洋", role="legal", email="legal@example.com")
    data = {"open": [todo(1, "legal_review"), todo(2, "purchase_alert")],
            "copied": [todo(3, "purchase_alert", may_do=False)],
            "done": [todo(4, "legal_review", status="done", may_do=False, outcome="rejected",
                          outcome_label="不通过", note="许可证过期", done_by="legal-01",
                          done_by_name="刘洋", done_at=DUE)]}
    path = tmp_path / "todos.html"
    path.write_text(render("我的待办", todos_page(person, data, error="请选择初审结果")),
                    encoding="utf-8")
    phone.send("Emulation.setDeviceMetricsOverride", SMALL_PHONE)
    phone.goto(path.as_uri())
    assert phone.js("document.documentElement.scrollWidth") <= 360
    sizes = phone.js("[...document.querySelectorAll('#open button, #open a.todo-link, "
                     "#open label.choice')].map(e => e.getBoundingClientRect().height)")
    assert len(sizes) == 2 + 2 + 2 and min(sizes) >= 36, sizes
    assert phone.js("document.querySelector('#err').textContent") == "请选择初审结果"

"""A customer name as typed (the webhook takes [ ] ( ) . - in names) reaches the pushes to the
group chat: it must not become a markdown link the robot renders ("[点此重新登录](evil-site.com)"
shown as a tappable 点此重新登录 in the manager's DingTalk / WeCom)."""
from __future__ import annotations

import re


from flows.notices import push
from models.name_input import check_customer_name

TYPED = "[点此重新登录](evil-site.com)"
LINK = re.compile(r"\[([^\]]*)\]\(([^)]*)\)")


def test_the_webhook_accepts_such_a_name():
    assert check_customer_name(TYPED) is None  # the premise: it reaches the pushes


def test_a_typed_name_does_not_become_a_link_in_the_push(hub):
    push(hub, key="h7:markdown", title=f"意向单客户名称未识别：{TYPED}",
         text=f"客户名称“{TYPED}”未能识别（第 1 次出现）。", staff_ids=["rep-zhangwei"],
         link="http://testserver/orders/IO261126-AAAA0001")
    [record] = hub.notifier.list_pushes()
    links = LINK.findall(record["markdown"])
    assert links == [("查看详情", "http://testserver/orders/IO261126-AAAA0001")]

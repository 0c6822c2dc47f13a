"""Audit round 4 (H1): why an order stopped, as the rep reads it on the order page and the
manager in the to-do: which step, in Chinese, before the outside system's own words."""
from __future__ import annotations

from connectors.base import PermanentError, TransientError
from flows.batch import INTERNAL_ERROR, run_each, run_steps


def step_named(name, fn):
    def step(ids):
        return run_each(name, ids, fn)

    step.name = name
    return step


def test_a_failed_or_blocked_record_says_which_step_in_chinese():
    def mail(rid):
        if rid == "down":
            raise TransientError("SMTP server unreachable: ConnectionRefusedError()",
                                 provider="smtp")
        if rid == "refused":
            raise PermanentError("SMTP RCPT TO refused (550): no such mailbox",
                                 provider="smtp")

    finished, failed, blocked, _ = run_steps(
        [step_named("quote-email", mail)], ["ok", "down", "refused"], lambda *a: None)
    assert finished == ["ok"]
    # the connector's English goes to the log; the rep reads who failed and what happens
    assert failed["down"] == "发送报价邮件：邮件服务器暂时无法连接（连接中断），系统将自动重试"
    assert blocked["refused"] == ("发送报价邮件：邮件服务器拒绝了请求，重试无效，"
                                  "请系统管理员查看运行日志后处理")


def test_a_step_that_fails_for_the_whole_batch_says_which_step_in_chinese():
    def stock(ids):
        raise TransientError("ERP unreachable", provider="erp")  # what the connector raises

    stock.name = "stock-check"
    _, failed, _, _ = run_steps([stock], ["a"], lambda *a: None)
    assert failed == {"a": "库存检查：库存系统（ERP）暂时无法连接（连接中断），系统将自动重试"}


def test_an_unforeseen_failure_of_the_whole_batch_keeps_its_text_for_the_log():
    """A step that fails for the batch on something unforeseen (the database refused its
    read): the reason names the step; the SQL is logged, not shown."""
    logged = []

    def stock(ids):
        raise RuntimeError("SELECT sku FROM intent_order_line: could not extend file")

    stock.name = "stock-check"
    _, failed, _, _ = run_steps([stock], ["a"], lambda *a: logged.append(a))
    assert failed == {"a": f"库存检查：{INTERNAL_ERROR}"} and logged

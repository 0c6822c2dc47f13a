"""Batch steps: each record succeeds or fails on its own, whatever it fails with."""
from __future__ import annotations

import logging

import pytest

from connectors.base import PermanentError
from flows.batch import INTERNAL_ERROR, StepIncomplete, run_each, run_steps


def test_an_unforeseen_error_fails_its_record_not_the_batch(caplog):
    def step(rid: str) -> None:
        if rid == "bad":
            raise ValueError("a bug in one record's data")
        if rid == "refused":
            raise PermanentError("no such SKU", provider="erp")

    with pytest.raises(StepIncomplete) as incomplete, \
            caplog.at_level(logging.ERROR, logger="salesops.flows"):
        run_each("rebate-preview", ["a", "bad", "refused", "b"], step)
    outcome = incomplete.value.outcome
    # a connector's refusal is explained in Chinese; its own English goes to the log
    assert outcome.ok == ["a", "b"] and outcome.blocked == {
        "refused": "库存系统（ERP）拒绝了请求，重试无效，请系统管理员查看运行日志后处理"}
    assert "no such SKU" in caplog.text
    # the people reading the reason get no exception text; the engineer gets it in the log
    assert outcome.retry == {"bad": INTERNAL_ERROR}
    unforeseen = [r for r in caplog.records if "unexpected failure" in r.getMessage()]
    assert "bad" in unforeseen[0].getMessage()
    assert "a bug in one record's data" in caplog.text


def test_the_other_records_go_on_to_the_next_steps():
    done = []

    def first(ids):
        return run_each("first", ids, lambda rid: (_ for _ in ()).throw(KeyError(rid))
                        if rid == "bad" else None)

    def second(ids):
        return run_each("second", ids, done.append)

    first.name, second.name = "first", "second"
    finished, failed, blocked, held = run_steps([first, second], ["a", "bad", "b"],
                                                lambda *a: None)
    assert finished == ["a", "b"] and done == ["a", "b"]
    assert failed == {"bad": INTERNAL_ERROR}
    assert blocked == held == {}

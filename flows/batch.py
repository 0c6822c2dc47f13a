"""Batch steps: one task handles many records, each record succeeding or failing on its own."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from connectors.base import ConnectorError, PermanentError, TransientError
from flows.errors import connector_reason

log = logging.getLogger("salesops.flows")


class BusinessRefusal(Exception):
    """Data a person must fix (e.g. an inactive SKU): the record is blocked, not retried."""


class OrderHeld(Exception):
    """The record waits for a person's decision (it is parked, neither failed nor blocked);
    the step that raises it has already recorded why and what releases it."""


@dataclass
class Outcome:
    ok: list[str] = field(default_factory=list)
    retry: dict[str, str] = field(default_factory=dict)     # id → transient error
    blocked: dict[str, str] = field(default_factory=dict)   # id → permanent reason
    held: dict[str, str] = field(default_factory=dict)      # id → what it waits for


class StepIncomplete(Exception):
    """Raised by a batch task when some records hit transient errors, so Prefect retries
    the task; the records already done are skipped on the next attempt."""

    def __init__(self, step: str, outcome: Outcome) -> None:
        super().__init__(f"{step}: {len(outcome.retry)} record(s) to retry: "
                         + "; ".join(f"{k}: {v}" for k, v in list(outcome.retry.items())[:5]))
        self.outcome = outcome


# what the rep (order page, GET /orders/{id}) and the manager (to-do) read for a failure nobody
# foresaw: its own text (an SQL statement, its parameters, a server path) is for the engineer
INTERNAL_ERROR = "系统内部错误（详情已记入运行日志）"


def shown_reason(exc: Exception) -> str:
    """Why a record stopped, as people read it: a business refusal's own message, a
    connector's failure explained in Chinese (its own words go to the log), INTERNAL_ERROR for
    any other (the caller logs that one in full)."""
    if isinstance(exc, ConnectorError):  # a record failed on it is tried again (the sweeper)
        return connector_reason(exc) + ("，系统将自动重试" if isinstance(exc, TransientError) else "")
    return str(exc) if isinstance(exc, BusinessRefusal | OrderHeld) else INTERNAL_ERROR


def retry_unless(*refusals: type[Exception]):
    """A Prefect `retry_condition_fn`: the task is retried unless it failed on one of
    `refusals` (a refusal fails the same way every time: asking again only delays the person
    who must act, and calls the refusing system again for nothing)."""
    def retry(task, task_run, state) -> bool:
        try:
            state.result()
        except refusals:
            return False
        except Exception:  # noqa: BLE001 - whatever else failed may pass on a retry
            return True
        return True

    return retry


# a batch task refused as a whole (the ERP refuses the stock query): not retried, its records
# are blocked (`run_steps`)
retry_unless_refused = retry_unless(PermanentError, BusinessRefusal)


def run_log() -> logging.Logger | logging.LoggerAdapter:
    """The Prefect run's logger inside a task or flow, so that the engineer reads an
    unforeseen failure with the run that hit it; the module's logger outside one."""
    try:
        return get_run_logger()
    except MissingContextError:
        return log


def run_each(step: str, ids: Iterable[str], fn: Callable[[str], None]) -> Outcome:
    out = Outcome()
    for rid in ids:
        try:
            fn(rid)
            out.ok.append(rid)
        except TransientError as exc:
            out.retry[rid] = shown_reason(exc)
            log.warning("%s %s: transient failure: %s", step, rid, exc)
        except (PermanentError, BusinessRefusal) as exc:
            out.blocked[rid] = shown_reason(exc)
            log.error("%s %s: blocked: %s", step, rid, exc)
        except OrderHeld as exc:
            out.held[rid] = shown_reason(exc)
            log.info("%s %s: on hold: %s", step, rid, exc)
        except Exception:  # noqa: BLE001 - an unforeseen failure stays this record's
            out.retry[rid] = INTERNAL_ERROR
            run_log().exception("%s %s: unexpected failure", step, rid)
    if out.retry:
        raise StepIncomplete(step, out)
    return out


# what the rep (order page) and the manager (to-do) read before the outside system's words
STEP_LABELS = {
    "customer-check": "客户核验", "stock-check": "库存检查", "rebate-preview": "返利预估",
    "quote-pdf": "生成报价单", "signature-request": "发起电子签署", "quote-email": "发送报价邮件",
    "archive-signed-quote": "归档已签署报价单", "invoice-request": "提交开票申请",
    "signed-quote-email": "发送已签署报价单邮件",
}


def _labelled(step: str, reasons: dict[str, str]) -> dict[str, str]:
    label = STEP_LABELS.get(step)
    return {rid: f"{label}：{why}" if label else why for rid, why in reasons.items()}


def run_steps(steps, ids: list[str], log_exception) -> tuple[list[str], dict, dict, dict]:
    """Push records through batch tasks in order. Returns (finished, failed, blocked, held): a
    record leaves the line at the step that failed (transient, for a later retry), blocked it
    (a person must act) or parked it (it waits for a decision); a step that fails as a whole
    leaves all its records failed, or blocked when it was refused (a PermanentError, e.g. the
    ERP refusing the stock query, or a BusinessRefusal): the same refusal would meet every
    retry."""
    pending, failed, blocked, held = list(ids), {}, {}, {}
    for step in steps:
        if not pending:
            break
        try:
            outcome = step(pending)
        except StepIncomplete as exc:  # task retries exhausted: the rest waits for the sweeper
            outcome = exc.outcome
            failed.update(_labelled(step.name, outcome.retry))
        except (PermanentError, BusinessRefusal) as exc:  # e.g. the ERP refused the stock query
            log.error("step %s refused for the batch: %s", step.name, exc)
            outcome = Outcome(blocked={rid: shown_reason(exc) for rid in pending})
        except Exception as exc:  # e.g. inventory unreachable for the whole batch
            log_exception("step %s failed for the batch", step.name)
            label = STEP_LABELS.get(step.name, step.name)
            failed.update({rid: f"{label}：{shown_reason(exc)}" for rid in pending})
            outcome = Outcome()
        blocked.update(_labelled(step.name, outcome.blocked))
        held.update(outcome.held)
        pending = outcome.ok
    return pending, failed, blocked, held

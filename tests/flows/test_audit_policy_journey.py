"""The sales-ops clerk's policy journey (audit: authoring, publishing, superseding, and what
the settlement's documents and the engine do afterwards). Each test fails on the current code
for the defect its docstring names."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flows.hub import current_hub
from flows.settlement import confirm_settlement, finish_revision, settle_month
from models import Staff
from models.db import session_scope
from models.rebates.policy import PolicyDocumentError
from tests.rebate_support import clock_from, customer_id, publish, signed_order

D = dt.date
V1 = """\
code: T-JOURNEY
name: 设备月度阶梯返利
effective_from: 2026-07-01
rules:
  - id: month-tier
    clause: 第二条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, to: 50000, rate: 1%}, {from: 50000, rate: 3%}]
    priority: 1
    stacking: stack
"""


def test_a_confirmed_statement_states_the_policy_validity_its_lines_were_settled_under(
        hub, statements):
    """October is settled under version 1 (open-ended from 1 July): the draft statement says
    第1版 有效期 2026-07-01 起 and bills the 20 October order at 3 %. A correction from 15
    October is then published (allowed: October is not confirmed). Finance confirms October's
    revision 1 as it stands — the same lines, the same money — but the confirmed statement
    sent to the customer now says version 1 was valid only 2026-07-01 至 2026-10-14 while
    billing the 20 October order under version 1: the document contradicts itself and
    differs from the draft of the same revision, though a confirmed revision "never changes".
    The statement reads the policy windows of the book *now*
    (flows.settlement._policies(policy_book(s), …)), not as the revision was computed."""
    clock_from(D(2026, 11, 20))
    publish(hub.db_url, V1)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 20), [("MON-M8", 5)])  # 64,000 × 3 %
    settle_month(current_hub(), "2026-10")
    draft = statements["C000001"]
    (line,) = draft.lines
    assert (line.policy_version, line.amount) == (1, Decimal("1920.00"))
    (policy,) = draft.policies
    assert (policy.version, policy.effective_from, policy.effective_to) == (
        1, D(2026, 7, 1), None)

    publish(hub.db_url, V1.replace("2026-07-01", "2026-10-15").replace("rate: 3%", "rate: 2%"))
    with session_scope(hub.db_url) as s:
        finance = s.get(Staff, "finance-01")
    run = confirm_settlement(hub.db_url, "2026-10", 1, finance)
    finish_revision(current_hub(), run.id)

    confirmed = statements["C000001"]
    assert confirmed.status == "confirmed"
    (line,) = confirmed.lines
    assert (line.policy_version, line.amount) == (1, Decimal("1920.00"))  # same money
    (policy,) = confirmed.policies
    # what was settled under version 1 is what the statement must say version 1 covered:
    # the confirmed statement of revision 1 must read as its draft did
    assert (policy.version, policy.effective_from, policy.effective_to) == (
        1, D(2026, 7, 1), None)


def test_a_payment_rate_minimum_written_as_a_fraction_with_a_percent_sign_is_not_silent(hub):
    """The docs teach `payment_rate: {min: 0.9}` as 90 %; a clerk who adds the habitual `%`
    writes `min: 0.9%`, which is read as 0.9 % — the bonus then goes to a customer who paid
    1 % of what was due on time, and publishing says nothing. The tier rate has exactly this
    guard the other way round (a bare `rate: 0.5` is refused as a likely `0.5%`); a minimum
    payment rate below a few percent is no business condition. A serious product refuses it
    (or at least warns, naming `payment_rate.min`), as for the tier rate. Judgement: the docs
    are silent on a tiny `min`. Code: models/rebates/policy.py:_read_payment (no guard)."""
    document = V1.replace("applies_to: {product_lines: [监护]}",
                          "applies_to: {product_lines: [监护], payment_rate: {min: 0.9%}}")
    try:
        done = publish(hub.db_url, document)
    except PolicyDocumentError as exc:
        said = [p for p in exc.problems if p.field.endswith("payment_rate.min")]
    else:
        said = [w for w in done.warnings if w.field.endswith("payment_rate.min")]
    assert said, "min: 0.9% (0.9 %, most likely 90 %) published without a word"
    assert '请写成 "90%" 或 0.9' in said[0].message, said[0].message


def test_a_sku_outside_the_rules_own_product_lines_is_warned(hub):
    """`applies_to: {product_lines: [监护], skus: [MON-M8, PUMP-SP3]}`: every condition must
    hold, so the 注射泵 PUMP-SP3 (product line 输注) never earns under the rule — the clerk
    listed it to be paid. Publishing warns of a SKU the master data does not know ("该条件不会
    匹配任何订单") but says nothing of a known SKU the rule's own product lines shut out, which
    has the same effect: the rebate promised on it is silently never paid. Code:
    flows/policies.py:review_publication (warnings: unknown_values only)."""
    document = V1.replace("applies_to: {product_lines: [监护]}",
                          "applies_to: {product_lines: [监护], skus: [MON-M8, PUMP-SP3]}")
    done = publish(hub.db_url, document)
    said = [w for w in done.warnings if "PUMP-SP3" in w.message]
    assert said, "PUMP-SP3 can never earn under the rule, and publishing did not say so"
    assert said[0].field.startswith("rules[0].applies_to")

"""The preview's list of rules that do not apply (round 13): a rule that takes none of the
order's products says so, even when a customer condition fails as well."""
from __future__ import annotations

from decimal import Decimal

from models.rebates.engine import preview
from tests.unit.test_rebate_engine import CUSTOMERS, book, line, policy, rule

D = Decimal


def test_a_rule_skipped_for_two_reasons_names_both():
    """A pump ordered by a customer with no invoice due: the monitor rule with a payment
    condition does not apply because of the SKU as well; naming only the payment rate would
    read as if paying invoices would earn it."""
    monitor = policy("NEW-M12", rule(
        "m12", "[{from: 0, rate: 5%}]", extra="""\
        applies_to:
          skus: [MON-M12]
          payment_rate: {min: 90%}
        """))
    base = policy("BASE", rule("flat", "[{from: 0, rate: 1%}]"))
    pump = [line("O-1", "2027-02-08", 2, "4980.00", sku="PUMP-SP3", pl="输注")]
    pv = preview(pump, [], book(monitor, base), CUSTOMERS, {}, last_month_lines=[])
    assert [(r.rule_id, r.amount) for r in pv.rules] == [("flat", D("99.60"))]
    (skipped,) = pv.skipped
    assert skipped.reasons == ("近3个月无到期应收（无到期发票，或均已红冲），无法计算回款率（条款要求不低于 90%）",
                               "SKU PUMP-SP3 不在适用范围")
    # the customer's condition alone: one reason, as before
    m12 = [line("O-2", "2027-02-08", 1, "18600.00", sku="MON-M12")]
    pv = preview(m12, [], book(monitor, base), CUSTOMERS, {}, last_month_lines=[])
    assert [s.reasons for s in pv.skipped] == [
        ("近3个月无到期应收（无到期发票，或均已红冲），无法计算回款率（条款要求不低于 90%）",)]

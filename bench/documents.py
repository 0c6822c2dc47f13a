"""Quote PDF rendering and built-in PAdES signing, per document.

    .venv/bin/python -m bench.documents [--quotes 50] [--signatures 20]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from decimal import Decimal
from pathlib import Path

from bench.common import scratch_dir
from connectors.pades import CompanyIdentity, sign_pdf, validate_signed_pdf
from reports.quote_pdf import QuoteDocument, QuoteLine, render_quote_pdf


def sample_quote(lines: int) -> QuoteDocument:
    return QuoteDocument(
        code="Q2611-BENCH0-0", issued_on=dt.date(2026, 11, 26), valid_until=dt.date(2026, 12, 11),
        seller_name="华东精工设备有限公司", seller_uscc="91320500MA1XB2C358",
        seller_address="江苏省苏州市工业园区星湖街 328 号", seller_phone="0512-6288 0000",
        seller_bank="中国工商银行苏州工业园区支行 1102 0212 0900 0123 456",
        customer_legal_name="江苏康达医疗设备有限公司", customer_uscc="91320500MA1K2D3F5H",
        contact_name="顾晓峰", contact_phone="13912345678", rep_name="张伟",
        lines=tuple(QuoteLine(model=f"M{i}", name="多参数监护仪", quantity=i + 1, unit="台",
                              unit_price=Decimal("12800.00"), tax_rate=Decimal("0.13"))
                    for i in range(lines)),
        signing_url="http://127.0.0.1:8000/sign/" + "x" * 43)


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quotes", type=int, default=50)
    ap.add_argument("--signatures", type=int, default=20)
    args = ap.parse_args(argv)
    with scratch_dir("bench-docs-") as tmp:
        return measure(args, tmp)


def measure(args: argparse.Namespace, tmp: Path) -> dict:
    five, forty = sample_quote(5), sample_quote(40)
    render_quote_pdf(five, tmp / "warm.pdf")  # font registration happens once per process
    r5 = timed(lambda: render_quote_pdf(five, tmp / "q5.pdf"), args.quotes)
    r40 = timed(lambda: render_quote_pdf(forty, tmp / "q40.pdf"), args.quotes // 2)
    identity = CompanyIdentity.load_or_create(tmp / "pki", "华东精工设备有限公司", None)
    sign_pdf(tmp / "q5.pdf", tmp / "warm-signed.pdf", identity, signer_label="顾晓峰",
             reason="报价确认", location="在线签署")
    sig = timed(lambda: sign_pdf(tmp / "q5.pdf", tmp / "signed.pdf", identity,
                                 signer_label="顾晓峰", reason="报价确认", location="在线签署"),
                args.signatures)
    val = timed(lambda: validate_signed_pdf(tmp / "signed.pdf", identity), args.signatures)
    ms = lambda xs: round(statistics.median(xs) * 1000, 1)  # noqa: E731
    result = {"quote_pdf_5_lines_ms": ms(r5), "quote_pdf_40_lines_ms": ms(r40),
              "pades_sign_ms": ms(sig), "pades_validate_ms": ms(val)}
    print(f"quote PDF (median): 5 lines {result['quote_pdf_5_lines_ms']} ms, "
          f"40 lines {result['quote_pdf_40_lines_ms']} ms")
    print(f"PAdES signature with timestamp (median): sign {result['pades_sign_ms']} ms, "
          f"validate {result['pades_validate_ms']} ms")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

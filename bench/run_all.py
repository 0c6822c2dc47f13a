"""`make bench`: every benchmark, one after the other, figures printed as they come.

Record the printed figures in docs/benchmarks.md with the date and the machine.
"""
from __future__ import annotations

from bench import (
    customer_import, documents, matcher_accuracy, orchestration, rebate_engine, settlement,
    suggest_api, suggest_latency, webhook_burst,
)


def main() -> None:
    print("== webhook accept latency and burst throughput (full embedded stack) ==")
    webhook_burst.main([])
    print("\n== orchestration overhead (flow vs. plain calls) ==")
    orchestration.main([])
    print("\n== quote PDF and PAdES signing, per document ==")
    documents.main([])
    print("\n== customer matcher accuracy on real company names ==")
    matcher_accuracy.main([])
    print("\n== customer suggestions: the matcher, then the API (100k customers, 300k aliases) ==")
    suggest_latency.main([])
    suggest_api.main([])
    print("\n== customer import (100,000 rows) and batch match, SQLite ==")
    customer_import.main([])
    print("\n== rebate engine: a quarter of sale lines (pure Python) ==")
    rebate_engine.main([])
    print("\n== monthly settlement and order preview over 1,000,000 order lines, SQLite ==")
    settlement.main([])


if __name__ == "__main__":
    main()

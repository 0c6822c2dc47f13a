"""`make bench`: every benchmark, one after the other, figures printed as they come.

Record the printed figures in docs/benchmarks.md with the date and the machine.
"""
from __future__ import annotations

from bench import customer_import, documents, orchestration, webhook_burst


def main() -> None:
    print("== webhook accept latency and burst throughput (full embedded stack) ==")
    webhook_burst.main([])
    print("\n== orchestration overhead (flow vs. plain calls) ==")
    orchestration.main([])
    print("\n== quote PDF and PAdES signing, per document ==")
    documents.main([])
    print("\n== customer import (100,000 rows) and batch match, SQLite ==")
    customer_import.main([])


if __name__ == "__main__":
    main()

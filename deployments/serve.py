"""Serve the deployments declared in deployments/prefect.yaml (the embedded default).

    python -m deployments.serve [--limit N]

Each served run executes in its own process, from the repository root.
"""
from __future__ import annotations

import argparse
import importlib
import os
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PREFECT_YAML = Path(__file__).resolve().parent / "prefect.yaml"


def load_deployments(path: Path = PREFECT_YAML) -> list[dict]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["deployments"]


def runner_deployments(specs: list[dict]):
    from prefect.schedules import Cron

    out = []
    for spec in specs:
        file_part, func = spec["entrypoint"].split(":")
        module = importlib.import_module(file_part.removesuffix(".py").replace("/", "."))
        flow = getattr(module, func)
        schedules = [Cron(s["cron"], timezone=s.get("timezone", "Asia/Shanghai"))
                     for s in spec.get("schedules", [])]
        out.append(flow.to_deployment(name=spec["name"], description=spec.get("description"),
                                      tags=spec.get("tags"), parameters=spec.get("parameters"),
                                      schedules=schedules or None))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the hub's Prefect deployments")
    parser.add_argument("--limit", type=int, default=4, help="concurrent flow runs")
    args = parser.parse_args(argv)
    os.chdir(ROOT)  # entrypoints are relative to the repository root
    from prefect import serve

    serve(*runner_deployments(load_deployments()), limit=args.limit,
          print_starting_message=False)


if __name__ == "__main__":
    main()

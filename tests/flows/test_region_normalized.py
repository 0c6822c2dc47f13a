"""Regions are free text, typed as 华东 or 华东大区: every input stores them one way
(models.staff.normalize_region), so that a manager of 华东 sees the customers imported as
华东大区, and a policy's 华东大区 is the customers' 华东. Migration 0020 rewrites the regions
stored before."""
from __future__ import annotations

import gc
import json

import pytest
import sqlalchemy as sa

from models.db import downgrade, get_engine, migrate
from models.rebates.policy import parse_policy_document, unknown_values
from models.staff import normalize_region, region_label
from tests.flows.test_customer_import import write_rows
from tests.support import in_process_cli

KANGDA = "江苏康达医疗设备有限公司"  # seeded: 华东


@pytest.fixture
def cli(seeded, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, seeded.db_url, seeded.data_dir)
    gc.unfreeze()


def region_of(db_url: str, name: str) -> str | None:
    with get_engine(db_url).connect() as conn:
        return conn.execute(sa.text("SELECT region FROM customer WHERE legal_name = :n"),
                            {"n": name}).scalar_one()


@pytest.mark.parametrize("typed, stored", [
    ("华东", "华东"), ("华东大区", "华东"), (" 华东大区 ", "华东"), ("华东　大区", "华东"),
    ("ＨＤ大区", "HD"), ("大区", "大区"), ("", None), ("  ", None), (None, None)])
def test_a_region_is_stored_one_way(typed, stored):
    assert normalize_region(typed) == stored
    if stored == "华东":  # read as before
        assert region_label(stored) == "华东大区"


def test_the_import_and_customers_set_store_a_region_without_daqu(seeded, cli, tmp_path):
    path = write_rows(tmp_path / "客户.csv", [["甲乙医疗器械有限公司", "华南大区"]],
                      header=["legal_name", "region"])
    code, _out, err = cli("customers", "import", path, "--by", "ops-01")
    assert code == 0, err
    assert region_of(seeded.db_url, "甲乙医疗器械有限公司") == "华南"
    code, _out, err = cli("customers", "set", "1", "--region", "华北大区", "--by", "ops-01")
    assert code == 0, err
    assert region_of(seeded.db_url, KANGDA) == "华北"
    # the same region written the other way is no change
    code, _out, err = cli("customers", "set", "1", "--region", "华北", "--by", "ops-01")
    assert code == 2 and "没有需要修改的字段" in err, err


def test_a_policys_region_with_daqu_is_the_customers_region():
    spec = parse_policy_document("""
code: P-R
name: 大区写法
effective_from: 2026-10-01
rules:
  - {id: r, measure: amount, period: month, style: retroactive,
     tiers: [{from: 0, rate: 1%}], priority: 1, stacking: stack,
     applies_to: {regions: [华东大区]}}
""")
    assert unknown_values(spec, lambda kind: ["华东", "华南"]) == []


def test_migration_0020_rewrites_the_regions_stored_before(seeded):
    db_url = seeded.db_url
    downgrade(db_url, "0019")
    engine = get_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE customer SET region = '华东大区' WHERE region = '华东'"))
        conn.execute(sa.text("UPDATE staff SET region = ' 华东 ' WHERE id = 'mgr-east'"))
        east = conn.execute(sa.text(
            "SELECT id FROM customer WHERE region = '华东大区' ORDER BY id")).scalars().all()
    migrate(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT id FROM customer WHERE region = '华东' ORDER BY id")).scalars().all() == east
        assert conn.execute(sa.text(
            "SELECT COUNT(*) FROM customer WHERE region LIKE '%大区'")).scalar_one() == 0
        assert conn.execute(sa.text(
            "SELECT region FROM staff WHERE id = 'mgr-east'")).scalar_one() == "华东"
        logged = conn.execute(sa.text(
            "SELECT entity, entity_id, changes FROM operation_log WHERE actor = 'migration:0020' "
            "ORDER BY entity, entity_id")).all()
    assert [(e, json.loads(c)) for e, _i, c in logged] == [
        *[("customer", {"region": ["华东大区", "华东"]})] * len(east),
        ("staff", {"region": [" 华东 ", "华东"]})]

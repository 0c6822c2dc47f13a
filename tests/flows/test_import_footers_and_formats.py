"""What exports from old systems put around the data: a record-count or export-time footer
under the rows, a file with a header and no data, and codes shown with leading zeros by a
zero-padded Excel number format."""
from __future__ import annotations

import json

import pytest
from openpyxl import Workbook

from tests.flows.test_customer_import import customer, write_rows
from tests.support import in_process_cli

VALID = "91320100MA1K2D3F5W"


@pytest.fixture
def cli(seeded, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, seeded.db_url, seeded.data_dir)


def test_a_record_count_or_export_footer_under_the_rows_is_not_a_customer(seeded, cli,
                                                                          tmp_path):
    path = write_rows(tmp_path / "客户.csv", [
        ["北京京康医疗器械有限公司", VALID, "北京"],
        ["天津津华化工有限公司", "", "天津"],
        ["共 2 条记录", "", ""],
        ["导出时间：2026-11-28 17:03", "", ""],
        ["制表人：王芳", "", ""],
    ], header=["工商全称", "统一社会信用代码", "省份"])
    code, out, err = cli("customers", "import", path, "--json")
    assert code == 0, err
    assert json.loads(out)["created"] == 2


def test_a_footer_in_a_worksheet_with_other_cells_empty_is_skipped_too(seeded, cli, tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["工商全称", "省份"])
    ws.append(["北京京康医疗器械有限公司", "北京"])
    ws.append(["记录数：1"])
    path = tmp_path / "客户.xlsx"
    wb.save(path)
    code, out, err = cli("customers", "import", path, "--json")
    assert code == 0, err
    assert json.loads(out)["created"] == 1


def test_a_row_that_only_starts_like_a_footer_is_still_data(seeded, cli, tmp_path):
    path = write_rows(tmp_path / "客户.csv", [["共赢科技（北京）有限公司", "北京"]],
                      header=["工商全称", "省份"])
    code, out, err = cli("customers", "import", path, "--json")
    assert code == 0, err
    assert json.loads(out)["created"] == 1


def test_a_file_with_a_header_and_no_rows_is_refused_clearly(seeded, cli, tmp_path):
    path = write_rows(tmp_path / "客户.csv", [], header=["工商全称", "省份"])
    code, out, err = cli("customers", "import", path)
    assert code != 0
    assert "客户.csv" in err and "没有数据行" in err


def test_a_finance_code_shown_with_leading_zeros_by_its_number_format_keeps_them(seeded, cli,
                                                                                 tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["工商全称", "省份", "财务客户编码"])
    ws.append(["北京京康医疗器械有限公司", "北京", 123])
    ws["C2"].number_format = "000000"
    ws.append(["天津津华化工有限公司", "天津", 4567])  # General: the number as it shows
    path = tmp_path / "客户.xlsx"
    wb.save(path)
    code, out, err = cli("customers", "import", path, "--json")
    assert code == 0, err
    assert customer(seeded.db_url, "北京京康医疗器械有限公司").finance_code == "000123"
    assert customer(seeded.db_url, "天津津华化工有限公司").finance_code == "4567"

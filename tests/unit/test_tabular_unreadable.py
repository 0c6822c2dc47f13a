"""A file that cannot be read is said so in Chinese, whatever its kind: not the system's
English, and for a workbook not a question of its format."""
from __future__ import annotations

import pytest

from connectors.tabular import TableError, load_sheets


@pytest.mark.parametrize("name", ["回款.csv", "回款.xlsx"])
def test_a_missing_file_is_named_in_chinese(tmp_path, name):
    with pytest.raises(TableError) as refused:
        load_sheets(tmp_path / name)
    assert "无法读取文件：文件不存在" in str(refused.value)


def test_a_folder_named_like_a_workbook_is_not_a_file(tmp_path):
    (tmp_path / "回款.xlsx").mkdir()
    with pytest.raises(TableError) as refused:
        load_sheets(tmp_path / "回款.xlsx")
    assert "无法读取文件：这是一个目录，不是文件" in str(refused.value)

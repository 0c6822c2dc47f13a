"""Audit round 5 (customer master data), the matcher: a branch typed by a rep whose head
office is on file."""
from __future__ import annotations

import pytest

from models.matching import NameEntry, NameIndex


@pytest.mark.parametrize("others, head, branch", [
    (("上海摩恩电气股份有限公司", "上海广电电气(集团)股份有限公司"), "上海电气集团股份有限公司",
     "上海电气集团股份有限公司上海分公司"),
    (("海通证券股份有限公司", "西部证券股份有限公司"), "财通证券股份有限公司",
     "财通证券股份有限公司杭州分公司"),
    (("中国石化上海石油化工股份有限公司",), "中国石油化工股份有限公司",
     "中国石油化工股份有限公司上海分公司"),
])
def test_a_branch_suggests_its_head_office_first(others, head, branch):
    """Companies that merely resemble the head office are "related" too, but the head office
    the branch name spells out comes first (it used to tie with them at the cap and lose on
    the customer id), and nothing is linked alone."""
    names = (*others, head)  # the head office has the highest id: ties go against it
    index = NameIndex.build(NameEntry(f"c:{i}", i, n, "legal") for i, n in enumerate(names, 1))
    result = index.search(branch)
    assert result.decision == "suggest"
    assert result.candidates[0].legal_name == head, result.candidates
    assert result.candidates[0].score > result.candidates[1].score
    assert result.candidates[0].reasons[0] == f"分支机构未建档，总公司为“{head}”"


@pytest.mark.parametrize("typed, parent, branch", [
    ("河南恒星科技股份有限公司（郑州分公司）", "河南恒星科技股份有限公司", "郑州分公司"),
    ("中国银行股份有限公司(北京分行)", "中国银行股份有限公司", "北京分行"),
])
def test_a_bracketed_branch_part_is_a_branch(typed, parent, branch):
    from models.names import normalize_name, parse_company_name

    parsed = parse_company_name(typed)
    assert (parsed.is_branch, parsed.parent_name, parsed.branch) == (
        True, normalize_name(parent), branch)


def test_a_bracketed_region_is_no_branch():
    from models.names import parse_company_name

    assert not parse_company_name("创耀（苏州）通信科技股份有限公司").is_branch
    assert not parse_company_name("江苏康达医疗设备有限公司（苏州）").is_branch


def test_a_bracketed_branch_is_not_linked_to_its_head_office_alone():
    index = NameIndex.build([NameEntry("c:1", 1, "河南恒星科技股份有限公司", "legal")])
    result = index.search("河南恒星科技股份有限公司（郑州分公司）")
    assert result.decision == "suggest" and result.candidates[0].customer_id == 1
    assert result.candidates[0].reasons[0].startswith("分支机构未建档")

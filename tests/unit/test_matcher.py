"""Customer name matcher: short names, aliases, branches, typos, decisions, index upkeep."""
from __future__ import annotations

import pytest

from models.matching import (
    AUTO_MIN_MARGIN,
    AUTO_MIN_SCORE,
    NameEntry,
    NameIndex,
)

CUSTOMERS = {
    1: "江苏康达医疗设备有限公司",
    2: "江苏康达医疗设备有限公司苏州分公司",
    3: "广东电力发展股份有限公司",
    4: "上海农村商业银行股份有限公司",
    5: "浙江仁和医疗器械有限公司",
    6: "河南恒星科技股份有限公司",
    7: "湖南方盛制药股份有限公司",
    8: "江西方盛电子有限公司",
    9: "深圳市物业发展(集团)股份有限公司",
    10: "创耀(苏州)通信科技股份有限公司",
    11: "锦州港股份有限公司",
    12: "安徽口子酒业股份有限公司",
    13: "广州华南医药贸易有限公司",
}


@pytest.fixture
def index() -> NameIndex:
    entries = [NameEntry(f"c:{cid}", cid, name, "legal") for cid, name in CUSTOMERS.items()]
    entries += [NameEntry("a:1", 1, "康达医疗", "short"),
                NameEntry("a:5", 5, "上海仁和医疗器械有限公司", "former"),
                NameEntry("a:12", 12, "口子窖", "short")]
    return NameIndex.build(entries)


def ids(result) -> list[int]:
    return [c.customer_id for c in result.candidates]


# --- short names -----------------------------------------------------------------------

@pytest.mark.parametrize("query,cid", [
    ("恒星科技", 6), ("粤电力", 3), ("沪农商行", 4), ("深物业", 9), ("创耀通信", 10), ("锦州港", 11),
    ("华南医贸", 13), ("ＫＯＮＧ康达医疗"[4:], 1),
])
def test_short_name_finds_the_legal_name(index, query, cid):
    result = index.search(query)
    assert ids(result)[0] == cid
    assert result.decision == "auto", result
    top = result.candidates[0]
    assert top.legal_name == CUSTOMERS[cid]
    assert top.score >= AUTO_MIN_SCORE and top.reasons


def test_reasons_name_the_short_forms(index):
    top = index.search("粤电力").candidates[0]
    assert "省份简称 粤=广东" in top.reasons
    assert "简称字符按序取自全称" in top.reasons
    assert any("沪=上海" in r for r in index.search("沪农商行").candidates[0].reasons)


def test_full_width_and_spaces_in_the_query(index):
    result = index.search("  恒星　科技 ")
    assert result.normalized == "恒星科技" and ids(result)[0] == 6


# --- aliases ---------------------------------------------------------------------------

def test_former_name_alias(index):
    result = index.search("上海仁和医疗器械有限公司")
    assert result.decision == "auto" and ids(result) [0] == 5
    top = result.candidates[0]
    assert (top.matched_alias, top.matched_kind) == ("上海仁和医疗器械有限公司", "former")
    assert top.legal_name == "浙江仁和医疗器械有限公司"
    assert top.score == 100.0


def test_short_alias_not_derivable_from_the_legal_name(index):
    result = index.search("口子窖")
    assert result.decision == "auto" and ids(result)[0] == 12
    assert result.candidates[0].matched_kind == "short"


def test_one_candidate_per_customer(index):
    result = index.search("康达医疗")  # matches customer 1's alias and legal name, and the branch
    assert len(ids(result)) == len(set(ids(result)))
    assert ids(result)[0] == 1
    assert result.candidates[0].matched_alias == "康达医疗"


# --- branches --------------------------------------------------------------------------

def test_branch_query_prefers_the_branch(index):
    result = index.search("江苏康达医疗设备有限公司苏州分公司")
    assert result.decision == "auto" and ids(result)[0] == 2
    result = index.search("康达医疗苏州分公司")
    assert ids(result)[0] == 2 and result.decision == "auto"


def test_parent_query_never_links_to_the_branch(index):
    result = index.search("江苏康达医疗设备有限公司")
    assert result.decision == "auto" and ids(result)[0] == 1
    branch = next(c for c in result.candidates if c.customer_id == 2)
    assert branch.score < AUTO_MIN_SCORE
    assert any("分支机构" in r for r in branch.reasons)


def test_branch_not_on_file_suggests_the_parent(index):
    result = index.search("江苏康达医疗设备有限公司无锡分公司")
    assert result.decision == "suggest"
    assert ids(result)[0] == 1
    assert any(r.startswith("分支机构未建档，总公司为") for r in result.candidates[0].reasons)
    # the Suzhou branch is another branch: ranked, but below the parent
    assert 2 in ids(result) and ids(result).index(2) > 0


def test_a_legal_name_with_a_place_after_its_form_is_not_linked_to_the_head_office(index):
    """…有限公司南京 is a branch typed without its marker (南京办事处), not a slip in the form:
    the head office is suggested, never linked alone."""
    for query in ("江苏康达医疗设备有限公司南京", "河南恒星科技股份有限公司郑州"):
        result = index.search(query)
        assert result.decision == "suggest", query
        assert any("可能是分支机构" in r for r in result.candidates[0].reasons)
    # a slip inside the form still links
    assert index.search("江苏康达医疗设备有限公").decision == "auto"


def test_branch_query_never_auto_links_to_the_parent(index):
    index.remove_customer(2)
    result = index.search("江苏康达医疗设备有限公司苏州分公司")
    assert result.decision == "suggest" and ids(result)[0] == 1
    assert "分支机构未建档，总公司为“江苏康达医疗设备有限公司”" in result.candidates[0].reasons


# --- full names with slips -------------------------------------------------------------

def test_typo_in_the_org_form_or_industry(index):
    for query in ("江苏康达医疗设备有限责任公司", "江苏康达医疗设被有限公司", "江苏康达医疗设备有限公可"):
        result = index.search(query)
        assert ids(result)[0] == 1, query
        assert result.decision == "auto", (query, result)


def test_other_industry_word_still_finds_the_customer(index):
    result = index.search("江苏康达医疗器械有限责任公司")
    assert ids(result)[0] == 1


def test_other_region_is_another_company(index):
    result = index.search("浙江康达医疗设备有限公司")
    assert result.decision != "auto"
    assert any("地区不同" in r for r in result.candidates[0].reasons)


def test_other_legal_form_is_not_auto_linked(index):
    result = index.search("江苏康达医疗设备股份有限公司")
    assert ids(result)[0] == 1 and result.decision == "suggest"


# --- decisions -------------------------------------------------------------------------

def test_unknown_name(index):
    result = index.search("华为技术有限公司")
    assert result.decision == "unknown" and result.candidates == ()
    assert index.search("").decision == "unknown"
    assert index.search("（）·").decision == "unknown"


def test_ambiguous_short_name_is_suggested_not_linked(index):
    result = index.search("方盛股份")
    assert result.decision == "suggest"
    assert set(ids(result)[:2]) == {7, 8}


def test_same_alias_on_two_customers_is_ambiguous(index):
    index.add(NameEntry("a:99", 13, "康达医疗", "typed"))
    result = index.search("康达医疗")
    assert result.decision == "suggest"
    assert set(ids(result)[:2]) == {1, 13}
    assert result.candidates[0].score - result.candidates[1].score < AUTO_MIN_MARGIN


def test_trade_name_with_generic_tail_alone_is_not_auto(index):
    # 恒星股份 fits any 恒星 company: suggest, even when only one is on file
    result = index.search("恒星股份")
    assert ids(result)[0] == 6 and result.decision == "suggest"


def test_one_character_alias_is_never_auto(index):
    index.add(NameEntry("a:one", 6, "星", "typed"))
    result = index.search("星")
    assert ids(result)[0] == 6 and result.decision == "suggest"


def test_limit(index):
    assert len(index.search("康达", limit=1).candidates) == 1


# --- keystrokes ------------------------------------------------------------------------

@pytest.mark.parametrize("prefix", ["康", "康达", "江苏康", "康达医疗苏"])
def test_keystroke_prefixes_suggest_the_customer(index, prefix):
    result = index.search(prefix)
    assert 1 in ids(result)
    if len(prefix) <= 2:
        assert result.decision == "suggest"


def test_one_character_province_short_form(index):
    assert 3 in ids(index.search("粤"))


# --- index upkeep ----------------------------------------------------------------------

def test_len_add_remove(index):
    n = len(index)
    assert n == len(CUSTOMERS) + 3
    index.add(NameEntry("a:x", 6, "恒星", "short"))
    assert len(index) == n + 1
    index.remove("a:x")
    index.remove("a:x")  # twice is harmless
    assert len(index) == n


def test_upsert_moves_an_alias_to_another_customer(index):
    index.add(NameEntry("a:m", 6, "蓝天白云", "typed"))
    assert ids(index.search("蓝天白云"))[0] == 6
    index.add(NameEntry("a:m", 11, "蓝天白云", "typed"))
    result = index.search("蓝天白云")
    assert ids(result) == [11] and result.decision == "auto"


def test_upsert_renames(index):
    index.add(NameEntry("c:6", 6, "河南恒星新材料股份有限公司", "legal"))
    assert index.search("河南恒星科技股份有限公司").candidates[0].score < 100
    top = index.search("河南恒星新材料股份有限公司").candidates[0]
    assert top.customer_id == 6 and top.score == 100 and top.legal_name == "河南恒星新材料股份有限公司"


def test_remove_customer(index):
    index.remove_customer(1)
    result = index.search("康达医疗")
    assert 1 not in ids(result)
    assert len(index) == len(CUSTOMERS) + 3 - 2


def test_many_removals_compact_the_index():
    index = NameIndex.build(NameEntry(f"c:{i}", i, f"江苏康{i}达医疗设备有限公司", "legal")
                            for i in range(3000))
    for i in range(2500):
        index.remove(f"c:{i}")
    assert len(index) == 500
    assert ids(index.search("江苏康2999达医疗设备有限公司"))[0] == 2999
    assert index.search("江苏康5达医疗设备有限公司").candidates[0].customer_id != 5


def test_remove_customer_across_a_compaction():
    entries = [NameEntry(f"c:{i}", i, f"江苏康{i}达医疗设备有限公司", "legal") for i in range(1200)]
    entries += [NameEntry(f"a:{k}", 7, f"康达别名{k}", "typed") for k in range(1500)]
    index = NameIndex.build(entries)
    for i in range(1100):
        index.remove(f"c:{i}")
    index.remove_customer(7)  # compacts part-way through its 1501 names
    assert len(index) == 100
    assert 7 not in ids(index.search("康达别名3"))
    assert ids(index.search("江苏康1150达医疗设备有限公司"))[0] == 1150


# --- wrong-party links between look-alikes (suggest, never auto) ----------------------------

LOOK_ALIKES = {
    21: "新天地药业股份有限公司",
    22: "兴业皮革科技股份有限公司",
    23: "中国石化上海石油化工股份有限公司",
    24: "上海电气集团股份有限公司",
    25: "南通泰禾化工股份有限公司",
    26: "泰禾集团股份有限公司",
    27: "江苏洋河酒厂股份有限公司",
    28: "神州数码信息服务集团股份有限公司",
    29: "安徽新华传媒股份有限公司",
}


@pytest.fixture
def look_alikes() -> NameIndex:
    entries = [NameEntry(f"c:{cid}", cid, name, "legal") for cid, name in LOOK_ALIKES.items()]
    entries += [NameEntry("a:25", 25, "泰禾股份", "short"), NameEntry("a:26", 26, "泰禾集团", "short"),
                NameEntry("a:27", 27, "洋河股份", "short")]
    return NameIndex.build(entries)


@pytest.mark.parametrize("query", [
    "新天药业股份有限公司",          # trade name 新天 only starts like 新天地
    "兴业材料科技股份有限公司",      # same trade name, industries share only 科技
    "中国石化山东泰山石油股份有限公司",  # 中国 shared, 山东 ≠ 上海
    "洋股份",                      # one character of 洋河 + the generic 股份
    "神州数码集团",                 # 信息服务 left out: a sibling of the group
    "新华传媒股份",                 # 安徽 left out by a name written as words
])
def test_a_look_alike_is_suggested_not_linked(look_alikes, query):
    assert look_alikes.search(query).decision != "auto", query


def test_the_same_trade_and_industry_with_a_slip_in_the_form_still_links(look_alikes):
    result = look_alikes.search("新天地药业股份公司")
    assert result.decision == "auto" and ids(result)[0] == 21


def test_a_name_without_trade_name_links_on_equal_region_industry_and_form(look_alikes):
    result = look_alikes.search("上海电气集团股份公司")
    assert result.decision == "auto" and ids(result)[0] == 24
    # another legal form (no 集团) is another company
    assert look_alikes.search("上海电气股份公司").decision != "auto"


def test_a_short_name_plus_form_of_another_file_asks(look_alikes):
    """泰禾股份公司: 泰禾股份 is file 25's short name, the legal name resembles file 26's."""
    result = look_alikes.search("泰禾股份公司")
    assert result.decision == "suggest"
    assert set(ids(result)[:2]) == {25, 26}


def test_a_branch_links_a_branch_only_under_the_same_head_office(index):
    # a slip in the head office's form: the same head office
    result = index.search("江苏康达医疗设备有限责任公司苏州分公司")
    assert result.decision == "auto" and ids(result)[0] == 2
    # a head office spelt otherwise (a slipped character in it): a person checks
    result = index.search("江苏康达医疗设被有限公司苏州分公司")
    assert result.decision == "suggest" and ids(result)[0] == 2

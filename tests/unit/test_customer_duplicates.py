"""The duplicate finder of the customer import, without a database."""
from __future__ import annotations

import pytest

from models.customer_duplicates import (
    AliasName, FileRecord, find_duplicates, industry_relation, suggest_survivor,
)
from models.names import normalize_name, parse_company_name
from models.uscc import make_uscc

CODE_A = make_uscc("9", "1", "320500", "MA1K2D3F")
CODE_B = make_uscc("9", "1", "320500", "MA1K2D3G")


def rec(cid: int, name: str, *, touched=True, uscc=None, ok=None, province=None, parent=None):
    return FileRecord(cid, name, normalize_name(name), uscc,
                      bool(uscc) if ok is None else ok, province, parent, touched)


def clusters(*records, aliases=()):
    found = find_duplicates({r.customer_id: r for r in records}, aliases)
    return [set(c.members) for c in found]


@pytest.mark.parametrize("a, b, expected", [
    (("医疗设备",), ("医疗设备",), "same"),
    (("医疗设备",), ("医疗器械",), "wording"),
    (("医疗",), ("医疗设备",), "wording"),
    (("医药",), ("药业",), "wording"),
    (("科技",), ("电子", "科技"), "wording"),   # a generic word says nothing
    ((), ("化工",), "wording"),
    (("电子",), ("化工",), None),
    (("电子", "科技"), ("智能", "科技"), None),
    (("电气",), ("电子",), None),
], ids=lambda v: "/".join(v) if isinstance(v, tuple) else str(v))
def test_industry_relation(a, b, expected):
    assert industry_relation(a, b) == expected


def test_form_industry_and_region_spelling_variants_cluster():
    found = find_duplicates({r.customer_id: r for r in (
        rec(1, "江苏康达医疗设备有限公司", touched=False, uscc=CODE_A),
        rec(2, "江苏康达医疗器械有限责任公司"),
        rec(3, "康达医疗(江苏)有限公司"),
        rec(4, "江苏省康达医疗设备股份有限公司"),
    )}, [])
    assert len(found) == 1 and found[0].members == [1, 2, 3, 4]
    reasons = " ".join(found[0].reasons_for(3))
    assert "地区写法不同（江苏/(江苏)）" in reasons
    assert "组织形式不同（有限公司/股份有限公司）" in " ".join(found[0].reasons_for(4))


@pytest.mark.parametrize("other", [
    "苏州康达医疗设备有限公司",        # another registration authority
    "浙江康达医疗设备有限公司",        # another province
    "江苏康达化工有限公司",            # another line of business
    "江苏康泰医疗设备有限公司",        # another trade name
])
def test_different_companies_are_not_clustered(other):
    assert clusters(rec(1, "江苏康达医疗设备有限公司", touched=False), rec(2, other)) == []


def test_a_name_without_region_uses_the_province_column():
    base = rec(1, "江苏康达医疗设备有限公司", touched=False)
    assert clusters(base, rec(2, "康达医疗设备有限公司", province="江苏")) == [{1, 2}]
    assert clusters(base, rec(2, "康达医疗设备有限公司", province="浙江")) == []
    assert clusters(base, rec(2, "康达医疗设备有限公司")) == [{1, 2}]  # nothing says otherwise


def test_two_valid_different_codes_are_two_companies_whatever_the_names():
    a = rec(1, "江苏康达医疗设备有限公司", touched=False, uscc=CODE_A)
    assert clusters(a, rec(2, "江苏康达医疗器械有限公司", uscc=CODE_B)) == []
    # a malformed code proves nothing
    assert clusters(a, rec(2, "江苏康达医疗器械有限公司", uscc=CODE_B[:-1] + "0", ok=False)) \
        == [{1, 2}]


def test_same_uscc_and_alias_clash():
    a = rec(1, "上海申康医疗科技有限公司", touched=False, uscc=CODE_A)
    b = rec(2, "北京京康贸易有限公司", uscc=CODE_A)
    c = rec(3, "申康医疗")
    d = rec(4, "天津津华化工有限公司")
    aliases = [AliasName(1, "申康医疗", "申康医疗", "short"),
               AliasName(4, "北京京康贸易有限公司", normalize_name("北京京康贸易有限公司"), "former")]
    found = find_duplicates({r.customer_id: r for r in (a, b, c, d)}, aliases)
    assert [set(x.members) for x in found] == [{1, 2, 3, 4}]
    pairs = {(p.a, p.b): p.reasons for p in found[0].pairs}
    assert pairs[(1, 2)] == (f"统一社会信用代码相同（{CODE_A}）",)
    assert pairs[(1, 3)][0] == "“申康医疗”是客户 3 的工商全称，也是客户 1 的简称"
    assert pairs[(2, 4)] == ("“北京京康贸易有限公司”是客户 2 的工商全称，也是客户 4 的曾用名",)


def test_branches_are_never_clustered_with_their_parent():
    parent = rec(1, "江苏康达医疗设备有限公司", touched=False, uscc=CODE_A)
    branch = rec(2, "江苏康达医疗设备有限公司苏州分公司", uscc=CODE_A, parent=1)
    assert clusters(parent, branch) == []
    # two spellings of one branch are a duplicate; two branches are not
    same = rec(3, "江苏康达医疗器械有限公司苏州市分公司")
    other = rec(4, "江苏康达医疗设备有限公司无锡分公司")
    assert clusters(parent, branch, same, other) == [{2, 3}]


def test_only_pairs_touching_the_import_are_reported_and_numbered_in_row_order():
    records = {r.customer_id: r for r in (
        rec(1, "江苏康达医疗设备有限公司", touched=False),
        rec(2, "江苏康达医疗器械有限公司", touched=False),   # both on record: not ours to report
        rec(3, "浙江仁和医药有限公司", touched=False),
        rec(10, "浙江仁和药业有限公司"),
        rec(11, "广东华信电子有限公司"),
        rec(12, "广东华信电子科技有限公司"),
    )}
    found = find_duplicates(records, [], order={10: 5, 11: 2, 12: 3})
    assert [(c.number, c.members) for c in found] == [(1, [11, 12]), (2, [3, 10])]


def test_suggested_survivor():
    records = {1: rec(1, "甲", touched=False), 2: rec(2, "乙", uscc=CODE_A),
               3: rec(3, "丙", touched=False)}
    assert suggest_survivor(records, [1, 2, 3], {}, {1, 3})[0] == 2       # valid USCC
    records[2].uscc_ok = False
    assert suggest_survivor(records, [1, 2, 3], {3: 2, 2: 1}, {1, 3}) == (3, "订单 2 笔、已有档案")
    assert suggest_survivor(records, [1, 2, 3], {}, {1, 3})[0] == 1       # on record, oldest


@pytest.mark.parametrize("a, b, province", [
    # 三明 / 朝阳 are read as a place only with their suffix: the trade name keeps them
    ("三明捷航禾贸易有限责任公司", "三明市捷航禾贸易有限责任公司", "福建"),
    ("朝阳锐西信息技术有限公司", "朝阳市锐西信息技术有限公司", "辽宁"),
    # no trade name left at all: region and industry are the key
    ("滁州静海药业有限责任公司", "滁州市静海药业有限责任公司", "安徽"),
])
def test_region_spellings_the_parser_reads_differently_still_meet(a, b, province):
    assert clusters(rec(1, a, touched=False, province=province), rec(2, b)) == [{1, 2}]
    if not parse_company_name(a).regions:
        # ... and the province column of a name without region still tells companies apart
        assert clusters(rec(1, a, touched=False, province="西藏"), rec(2, b)) == []

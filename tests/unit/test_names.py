"""Chinese enterprise-name normalisation and parse."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from models import name_data as D
from models.names import (
    PROVINCE_SHORT,
    SHORT_FORM_REGIONS,
    industry_abbreviations,
    name_segments,
    normalize_name,
    parse_company_name,
    region_folded_key,
    region_short_forms,
    strip_org_form,
)

# --- normalisation ----------------------------------------------------------------------

def test_full_and_half_width_fold_together():
    assert normalize_name("ＡＢＣ医疗１２３") == "abc医疗123"
    assert normalize_name("江苏康达（苏州）医疗 设备有限公司") == "江苏康达(苏州)医疗设备有限公司"


@pytest.mark.parametrize("raw", ["创耀【苏州】通信", "创耀〔苏州〕通信", "创耀[苏州]通信", "创耀（苏州）通信",
                                 "创耀 ( 苏州 ) 通信"])
def test_every_bracket_style_becomes_round_brackets(raw):
    assert normalize_name(raw) == "创耀(苏州)通信"


def test_spaces_and_punctuation_go_latin_is_lower_cased():
    assert normalize_name(" TCL·中环，新能源、科技 - 股份有限公司。") == "tcl中环新能源科技股份有限公司"
    assert normalize_name("A&B　Co.,Ltd") == "abcoltd"
    assert normalize_name("") == ""
    assert normalize_name("（）康达") == "康达"


# --- parse: regions -----------------------------------------------------------------------

def test_region_trade_industry_org_form():
    p = parse_company_name("河南恒星科技股份有限公司")
    assert (p.region, p.trade_name, p.industry, p.org_form) == ("河南", "恒星", "科技", "股份有限公司")
    assert p.provinces == ("河南",)
    assert not p.is_branch and p.parent_name == p.normalized


def test_region_in_brackets():
    p = parse_company_name("创耀（苏州）通信科技股份有限公司")
    assert p.region == "苏州" and p.region_in_brackets
    assert (p.trade_name, p.industry) == ("创耀", "通信科技")
    assert p.provinces == ("江苏",)
    assert "".join(t for _, t in name_segments(p.normalized)) == "创耀苏州通信科技股份有限公司"


def test_region_in_brackets_before_org_form():
    p = parse_company_name("康达医疗科技(深圳)有限公司")
    assert (p.region, p.trade_name, p.industry, p.org_form) == ("深圳", "康达", "医疗科技", "有限公司")


def test_city_with_suffix_and_group_org_form():
    p = parse_company_name("深圳市物业发展(集团)股份有限公司")
    assert p.region == "深圳市" and p.regions == ("深圳",) and p.provinces == ("广东",)
    assert p.org_form == "(集团)股份有限公司"


def test_province_city_district_chain():
    p = parse_company_name("江苏省苏州市吴中区康达医疗器械厂")
    assert p.regions == ("江苏", "苏州", "吴中")
    assert (p.trade_name, p.industry, p.org_form) == ("康达", "医疗器械", "厂")


def test_autonomous_region_official_name():
    p = parse_company_name("广西壮族自治区仁和药业有限公司")
    assert p.region == "广西壮族自治区" and p.trade_name == "仁和" and p.industry == "药业"


@pytest.mark.parametrize("name", ["中国石化上海石油化工股份有限公司", "中华仁和医疗器械有限公司"])
def test_national_prefix_is_a_region(name):
    assert parse_company_name(name).regions[0] == "中国"


def test_province_inside_the_name_is_a_region():
    p = parse_company_name("华电辽宁能源发展股份有限公司")
    assert p.trade_name == "华电" and "辽宁" in p.regions


def test_ambiguous_place_word_stays_trade_name_without_suffix():
    assert parse_company_name("东方电气股份有限公司").trade_name == "东方"
    assert parse_company_name("东方市康达医疗器械有限公司").regions == ("东方",)


def test_region_plus_industry_only_has_no_trade_name():
    p = parse_company_name("上海农村商业银行股份有限公司")
    assert p.trade_name == "" and p.industry == "农村商业银行"


def test_industry_split_prefers_whole_words():
    p = parse_company_name("广州天赐高新材料股份有限公司")
    assert p.trade_name == "天赐" and p.industry == "高新材料"


# --- parse: organisation forms ----------------------------------------------------------

@pytest.mark.parametrize("name,form", [
    ("江苏康达医疗设备有限公司", "有限公司"),
    ("江苏康达医疗器械有限责任公司", "有限责任公司"),
    ("河南恒星科技股份有限公司", "股份有限公司"),
    ("贵州燃气集团股份有限公司", "集团股份有限公司"),
    ("上海华培数能科技(集团)股份有限公司", "(集团)股份有限公司"),
    ("江苏康达集团有限公司", "集团有限公司"),
    ("宁波康达投资合伙企业（有限合伙）", "合伙企业(有限合伙)"),
    ("苏州康达医疗器械厂", "厂"),
    ("北京康达医学研究院", "研究院"),
    ("安徽省建筑设计研究院", "设计研究院"),
    ("长春百克生物科技股份公司", "股份公司"),
])
def test_org_forms(name, form):
    assert parse_company_name(name).org_form == form


def test_strip_org_form():
    assert strip_org_form(normalize_name("锦州港股份有限公司")) == "锦州港"


# --- parse: branches ----------------------------------------------------------------------

def test_branch_of_a_full_name():
    p = parse_company_name("江苏康达医疗设备有限公司苏州分公司")
    assert p.is_branch and p.branch == "苏州分公司"
    assert p.parent_name == "江苏康达医疗设备有限公司"
    assert (p.trade_name, p.org_form) == ("康达", "有限公司")
    parent = parse_company_name("江苏康达医疗设备有限公司")
    assert not parent.is_branch and parent.parent_name == p.parent_name


@pytest.mark.parametrize("name,parent,branch", [
    ("中国银行股份有限公司北京分行", "中国银行股份有限公司", "北京分行"),
    ("招商银行北京朝阳支行", "招商银行", "北京朝阳支行"),
    ("康达医疗苏州分公司", "康达医疗", "苏州分公司"),
    ("江苏康达医疗设备有限公司上海办事处", "江苏康达医疗设备有限公司", "上海办事处"),
    ("华泰证券股份有限公司南京中山路证券营业部", "华泰证券股份有限公司", "南京中山路证券营业部"),
    ("苏州康达医疗器械厂第二分厂", "苏州康达医疗器械厂", "第二分厂"),
    ("江苏康达医疗设备有限公司苏州分公司吴中营业部", "江苏康达医疗设备有限公司苏州分公司", "吴中营业部"),
    ("康达医疗设备有限公司南京经营部", "康达医疗设备有限公司", "南京经营部"),
])
def test_branch_markers(name, parent, branch):
    p = parse_company_name(name)
    assert p.is_branch
    assert (p.parent_name, p.branch) == (parent, branch)


@pytest.mark.parametrize("name", ["张三五金经营部", "江苏康达医疗设备子公司", "康达门市部"])
def test_not_branches(name):
    # a bare 经营部/门市部 is an individual business; a subsidiary is its own legal person
    assert not parse_company_name(name).is_branch


# --- dictionaries -------------------------------------------------------------------------

def test_all_34_provincial_divisions_with_short_forms():
    assert len(D.PROVINCES) == 34
    expected = {"广东": "粤", "上海": "沪", "湖南": "湘", "安徽": "皖", "江苏": "苏", "浙江": "浙",
                "北京": "京", "天津": "津", "重庆": "渝", "河北": "冀", "山西": "晋", "内蒙古": "蒙",
                "辽宁": "辽", "吉林": "吉", "黑龙江": "黑", "福建": "闽", "江西": "赣", "山东": "鲁",
                "河南": "豫", "湖北": "鄂", "海南": "琼", "四川": "川", "贵州": "黔", "云南": "滇",
                "西藏": "藏", "陕西": "陕", "甘肃": "甘", "青海": "青", "宁夏": "宁", "新疆": "新",
                "广西": "桂", "香港": "港", "澳门": "澳", "台湾": "台"}
    for province, short in expected.items():
        assert short in region_short_forms(province), province
    assert "蜀" in region_short_forms("四川") and "陇" in region_short_forms("甘肃")
    assert PROVINCE_SHORT["粤"] == ("广东",)


def test_city_short_forms_and_prefectures():
    assert "深圳" in SHORT_FORM_REGIONS["深"]
    assert "宁波" in SHORT_FORM_REGIONS["甬"]
    assert "上海" in SHORT_FORM_REGIONS["沪"]
    cities = {c for cs in D.CITIES.values() for c in cs}
    assert len(cities) > 330
    assert {"苏州", "东莞", "嘉峪关", "克拉玛依", "三沙"} <= cities


def test_industry_abbreviations():
    assert "医械" in industry_abbreviations("医疗器械")
    assert "农商行" in industry_abbreviations("农村商业银行")
    assert "高速" in industry_abbreviations("高速公路")
    assert "电科" in industry_abbreviations("电子科技")
    assert "工机" in industry_abbreviations("工程机械")


def test_dictionaries_hold_no_listed_company_names():
    """The naming dictionaries are general knowledge: no company of the dev set in them."""
    path = Path(__file__).resolve().parents[3] / "shared" / "data" / "company-names" / \
        "listed_companies_dev.csv"
    if not path.exists():
        path = Path("/work/shared/data/company-names/listed_companies_dev.csv")
    if not path.exists():
        pytest.skip("dev company names not available")
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    words: set[str] = set(D.INDUSTRY_WORDS) | set(D.ORG_FORMS) | set(D.GENERIC_TAILS)
    words |= {c for cs in D.CITIES.values() for c in cs} | {d for ds in D.DISTRICTS.values() for d in ds}
    words |= set(D.INDUSTRY_ABBREVIATIONS) | {a for abbrs in D.INDUSTRY_ABBREVIATIONS.values() for a in abbrs}
    names = {r["full_name"] for r in rows} | {r["short_name"] for r in rows if len(r["short_name"]) >= 3}
    # short names that are themselves a place or an everyday industry word are fine
    general = {"机器人", "峨眉山", "中关村", "张家界", "连云港", "鄂尔多斯"}
    assert names & words <= general


# --- one key however the region is written (suspected new customers) ----------------------

def folded(name: str) -> str:
    return region_folded_key(normalize_name(name))


@pytest.mark.parametrize("spellings", [
    ("江苏省康达医疗", "江苏康达医疗", "康达医疗（江苏）", "康达医疗(江苏省)", "康达（江苏）医疗",
     "江苏 康达医疗"),
    ("苏州市康达", "苏州康达", "康达（苏州市）"),
    ("江苏康达医疗有限公司", "江苏省康达医疗有限公司", "康达医疗（江苏）有限公司"),
    ("创耀（苏州）通信科技股份有限公司", "苏州创耀通信科技股份有限公司",
     "苏州市创耀通信科技股份有限公司"),
    ("广西壮族自治区康达", "广西自治区康达", "广西康达"),
    ("香港特别行政区康达", "香港康达"),
    ("北京市康达", "北京康达"),
    ("恩施州康达", "恩施康达"),          # an autonomous prefecture's 州
    ("昆山市康达", "昆山康达"),          # a county-level city
    ("江苏省苏州市康达", "江苏苏州康达"),
    ("江苏省市场营销", "江苏市场营销"),    # 江苏's suffix is 省: the 市 of 江苏市场 is 市场's
    ("苏州市市场营销", "苏州市 市场营销"),
])
def test_the_ways_of_writing_a_region_give_one_key(spellings):
    assert len({folded(s) for s in spellings}) == 1, {s: folded(s) for s in spellings}


@pytest.mark.parametrize("one, other", [
    ("苏州市场营销", "苏州场营销"),      # 市场 is a word: 苏州 + 市场营销, not 苏州市 + 场营销
    ("苏州市场营销", "苏州市市场营销"),  # … nor provably 苏州 + 市场营销 either: left apart
    ("江苏省心医疗", "江苏心医疗"),      # 省心
    ("江苏省心医疗", "江苏省省心医疗"),
    ("北京市政工程", "北京政工程"),      # 市政
    ("昆山区块链科技", "昆山块链科技"),  # 区块
    ("南山区铝业", "南山铝业"),          # 南山 is a place only with its 区
    ("长治市康达", "长治康达"),
    ("吉林市康达", "吉林省康达"),        # 吉林: a city and a province
    ("康达医疗有限公司（江苏）", "江苏康达医疗有限公司"),  # a note after the legal name
    ("西门子（中国）", "中国西门子"),    # 中国 is no province or city
    ("苏州康达（江苏）医疗", "江苏苏州康达医疗"),
    ("江苏康达医疗", "苏州康达医疗"),
    ("江苏苏州康达", "苏州康达"),
    ("成都盟升电子", "成都升电子"),      # 盟 follows leagues only
])
def test_what_is_not_provably_the_same_name_keeps_its_own_key(one, other):
    assert folded(one) != folded(other)


def test_a_name_without_a_region_keys_as_its_normalised_self():
    for name in ("康达新材料", "苏州市场营销", "江苏省心医疗", "南山铝业", "西门子（中国）"):
        assert folded(name) == normalize_name(name)
    assert folded("江苏省康达医疗") == "江苏|康达医疗"


def test_no_two_listed_companies_share_a_key():
    """2,800 listed companies (full and short names): folding regions never makes two of
    them one."""
    path = Path("/work/shared/data/company-names/listed_companies_dev.csv")
    if not path.exists():
        pytest.skip("dev company names not available")
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    owners: dict[str, set[str]] = {}
    for r in rows:
        for name in (r["full_name"], r["short_name"]):
            owners.setdefault(folded(name), set()).add(r["full_name"])
    assert [o for o in owners.values() if len(o) > 1] == []
    assert sum("|" in folded(r["full_name"]) for r in rows) > len(rows) / 2

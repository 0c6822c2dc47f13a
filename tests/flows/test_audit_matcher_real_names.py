"""Audit (customer master data, the matcher): real listed-company names typed as reps type them.

A few hundred real companies (every tenth row of ../shared/data/company-names, with their short
and former names) are imported through `import_customers`, as `salesops customers import`
does; then a rep's order carrying a name goes through the intent-order flow's customer step
(`flows.customer_check.check_customer`). The worst outcome is a WRONG-PARTY auto link: the order
silently put on another company's file. Each such case names the company the rep meant (not
on file, or on file under another name) and the company the hub picked instead.
"""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from bench.matcher_accuracy import default_data_dir
from flows import customer_check
from flows.batch import OrderHeld
from flows.customer_import import import_customers
from flows.hub import current_hub
from models import Customer, IntentOrder
from models.db import session_scope
from tests.support import order_payload, post_order

DATA = default_data_dir()
FORMER_KINDS = ("former_full_name", "former_short_name", "status_period_short_name")


def _listed() -> tuple[dict[str, dict], dict[str, list[str]]]:
    with open(DATA / "listed_companies_dev.csv", encoding="utf-8") as f:
        rows = {r["full_name"]: r for r in csv.DictReader(f) if r["full_name"]}
    former: dict[str, list[str]] = {}
    with open(DATA / "former_names_dev.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["kind"] in FORMER_KINDS and r["former_name"]:
                former.setdefault(r["full_name"], []).append(r["former_name"])
    return rows, former


pytestmark = pytest.mark.skipif(not (DATA / "listed_companies_dev.csv").exists(),
                                reason="real company names not available")


def import_listed(hub, tmp_path: Path, *, also: tuple[str, ...] = (),
                  leave_out: tuple[str, ...] = (), extra_rows: tuple[str, ...] = ()) -> None:
    """Every tenth listed company plus `also`, minus `leave_out` (the company the rep means
    and the hub must not know), with their short and former names, through the import."""
    rows, former = _listed()
    names = list(rows)[::10]
    names += [n for n in also if n not in names]
    names = [n for n in names if n not in leave_out]
    path = tmp_path / "listed.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["legal_name", "short_names", "former_names"])
        for n in names:
            short = rows[n]["short_name"] if n in rows else ""
            w.writerow([n, short, ";".join(former.get(n, ()))])
        for n in extra_rows:
            w.writerow([n, "", ""])
    report = import_customers(hub.db_url, path, actor="ops-01", review_out=tmp_path / "r.xlsx")
    assert report.created >= 250, report


@pytest.fixture
def rep_types(hub):
    """A rep's order (through the webhook) carrying `typed`; the flow's customer step runs.
    Returns the legal name of the file the order was put on, or None while it waits."""
    with TestClient(create_app(hub.settings, launcher=None)) as client:
        def typed_order(typed: str) -> str | None:
            answer = post_order(client, order_payload(name=typed))
            assert answer.status_code == 202, answer.text
            order_id = answer.json()["order_id"]
            try:
                customer_check.check_customer(current_hub(), order_id)
            except OrderHeld:
                return None
            with session_scope(hub.db_url) as s:
                order = s.get(IntentOrder, order_id)
                return s.get(Customer, order.customer_id).legal_name if order.customer_id else None
        yield typed_order


# --- wrong party: a sibling / look-alike company not on file -----------------------------

@pytest.mark.parametrize("typed, meant, picked", [
    # 国药股份 (Beijing) and 国药一致 (Shenzhen): two listed subsidiaries of one group
    ("国药集团药业", "国药集团药业股份有限公司", "国药集团一致药业股份有限公司"),
    # 神州数码 and 神州信息: two listed companies, one trade name
    ("神州数码集团", "神州数码集团股份有限公司", "神州数码信息服务集团股份有限公司"),
    ("神州数码股份", "神州数码集团股份有限公司", "神州数码信息服务集团股份有限公司"),
    # same business, two provinces
    ("新华传媒股份", "上海新华传媒股份有限公司", "安徽新华传媒股份有限公司"),
    ("华微电子股份", "吉林华微电子股份有限公司", "成都华微电子科技股份有限公司"),
])
def test_a_name_without_form_of_a_company_not_on_file_is_not_put_on_its_look_alike(
        hub, tmp_path, rep_types, typed, meant, picked):
    """A rep types a company the hub does not know yet (no organisation form, so the
    registry is not asked). He expects a suspected new customer (the order waits, the
    look-alike at most suggested). The matcher answers `auto` for another real company of the
    same group / the same business in another province, and the order lands on its file."""
    import_listed(hub, tmp_path, also=(picked,), leave_out=(meant,))
    linked = rep_types(typed)
    assert linked != picked, f"“{typed}”（{meant}）的意向单被自动挂到了“{picked}”的档案上"


@pytest.mark.parametrize("typed, meant, picked", [
    # 有限 dropped from the registered name (no registry can identify the spelling)
    ("中远海运科技股份公司", "中远海运科技股份有限公司", "中远海运控股股份有限公司"),
    ("航天科技控股集团股份公司", "航天科技控股集团股份有限公司", "航天通信控股集团股份有限公司"),
    ("北方华锦化学工业股份公司", "北方华锦化学工业股份有限公司", "北方化学工业股份有限公司"),
    ("中船科技股份公司", "中船科技股份有限公司", "中船汉光科技股份有限公司"),
    ("国药集团药业股份公司", "国药集团药业股份有限公司", "国药集团一致药业股份有限公司"),
    # the region left out of the registered name (贵阳新天药业, 深圳同兴达科技, 苏州兴业材料)
    ("新天药业股份有限公司", "贵阳新天药业股份有限公司", "新天地药业股份有限公司"),
    ("同兴达科技股份有限公司", "深圳同兴达科技股份有限公司", "同兴环保科技股份有限公司"),
    ("兴业材料科技股份有限公司", "苏州兴业材料科技股份有限公司", "兴业皮革科技股份有限公司"),
])
def test_a_slightly_misspelt_full_name_is_not_put_on_another_company(
        hub, tmp_path, rep_types, typed, meant, picked):
    """A rep types the registered name of a company not on file with a rep's slip (有限
    dropped, or the region left out). The registry cannot identify that spelling exactly, so
    the matcher decides: it treats a trade name that merely starts like another's (新天 /
    新天地, 同兴达 / 同兴, 中船 / 中船汉光) or an industry sharing one word (海运科技 /
    海运控股, 科技控股 / 通信控股) as the same company and links the order to another real
    company — the matcher's own docstring names 新天药业 ↔ 新天地药业 as a pair that must never
    link alone."""
    import_listed(hub, tmp_path, also=(picked,), leave_out=(meant,))
    linked = rep_types(typed)
    assert linked != picked, f"“{typed}”（{meant}）的意向单被自动挂到了“{picked}”的档案上"


def test_matcher_auto_links_the_exact_legal_name_of_a_sibling_not_on_file(hub, tmp_path):
    """`salesops customers match` / the suggest field on the exact registered names of
    companies not on file: the matcher says `auto` for another company of the group (only the
    registry step, when it answers, keeps an order from following it). 山东泰山石油 even goes
    to the 上海 company: both names are read as regions (中国, 山东) and (中国, 上海), and the
    shared national prefix 中国 counts as "same region", so 山东 ≠ 上海 is no conflict."""
    from flows.customer_index import customer_index

    cases = [
        ("中国石化山东泰山石油股份有限公司", "中国石化上海石油化工股份有限公司"),
        ("中远海运科技股份有限公司", "中远海运控股股份有限公司"),
        ("神州数码集团股份有限公司", "神州数码信息服务集团股份有限公司"),
        ("国药集团药业股份有限公司", "国药集团一致药业股份有限公司"),
    ]
    import_listed(hub, tmp_path, also=tuple(p for _, p in cases),
                  leave_out=tuple(t for t, _ in cases))
    index = customer_index(hub.db_url, 0)
    wrong = []
    for typed, picked in cases:
        result = index.search(typed)
        if result.decision == "auto" and result.candidates[0].legal_name == picked:
            wrong.append(f"{typed} → {picked}")
    assert wrong == [], "未建档公司的工商全称被自动链接到同集团另一家公司：" + "；".join(wrong)


# --- wrong party: both companies on file ---------------------------------------------------

def test_short_name_with_gufen_gongsi_goes_to_the_company_of_that_short_name(
        hub, tmp_path, rep_types):
    """Both on file: 南通泰禾化工股份有限公司 (short name 泰禾股份) and 泰禾集团股份有限公司 (泰禾集团).
    A rep writes 泰禾股份公司 (the short name + 公司). He expects 南通泰禾化工, or at least a
    question; the matcher auto-links 泰禾集团 (score 95, “字号与行业一致”), not even
    weighing the file whose short name he typed."""
    import_listed(hub, tmp_path, also=("南通泰禾化工股份有限公司", "泰禾集团股份有限公司"))
    linked = rep_types("泰禾股份公司")
    assert linked != "泰禾集团股份有限公司", "“泰禾股份公司”被自动挂到泰禾集团，而非简称为泰禾股份的南通泰禾化工"


@pytest.mark.parametrize("typed, meant, picked", [
    # 浩洋股份 with its first character dropped
    ("洋股份", "广州市浩洋电子股份有限公司", "江苏洋河酒厂股份有限公司"),
    # 星云股份 with its first character dropped: 云 read as 云南, matched to 丽江股份
    ("云股份", "福建星云电子股份有限公司", "丽江玉龙旅游股份有限公司"),
])
def test_a_short_name_missing_a_character_is_not_linked_to_another_company(
        hub, tmp_path, rep_types, typed, meant, picked):
    """Both on file. A three-character query that takes ONE character of another company's
    short name plus the generic 股份 is linked alone: against a short-name alias (洋河股份)
    股份 is parsed as part of the trade name, so the "trade name + generic word only" rule
    (never linked alone) does not see it."""
    import_listed(hub, tmp_path, also=(meant, picked))
    linked = rep_types(typed)
    assert linked != picked, f"“{typed}”被自动挂到了“{picked}”"


def test_a_branch_of_one_sibling_is_not_put_on_the_other_siblings_branch(
        hub, tmp_path, rep_types):
    """On file: 国药集团药业股份有限公司 with its 广州办事处 (a branch file), and 国药集团一致药业
    股份有限公司. A rep types 国药集团一致药业股份有限公司广州办事处 (the other company's office in
    the same city, not on file). He expects it suggested under its head office 国药一致; the
    order is put on 国药股份's Guangzhou office (same branch part, head offices 'similar')."""
    import_listed(hub, tmp_path, also=("国药集团药业股份有限公司", "国药集团一致药业股份有限公司"),
                  extra_rows=("国药集团药业股份有限公司广州办事处",))
    linked = rep_types("国药集团一致药业股份有限公司广州办事处")
    assert linked != "国药集团药业股份有限公司广州办事处", \
        "国药一致的广州办事处被自动挂到了国药股份广州办事处的档案上"


# --- an existing customer held as a suspect -------------------------------------------------

@pytest.mark.parametrize("typed, legal", [
    ("上海电气集团股份公司", "上海电气集团股份有限公司"),
    ("长沙银行股份公司", "长沙银行股份有限公司"),
])
def test_a_dropped_youxian_links_a_name_without_trade_name_as_it_does_others(
        hub, tmp_path, rep_types, typed, legal):
    """河南恒星科技股份公司 (有限 dropped) is linked to 河南恒星科技股份有限公司; the same slip on a
    name made of region + industry (上海电气集团, 长沙银行: no 字号) holds the order as a suspected
    new customer although the file scores 98 and nothing else comes close (`_full_compare`
    lets a name link only when a trade name exists and agrees)."""
    import_listed(hub, tmp_path, also=(legal, "河南恒星科技股份有限公司"))
    assert rep_types("河南恒星科技股份公司") == "河南恒星科技股份有限公司"
    assert rep_types(typed) == legal, f"“{typed}”被当作疑似新客户，而档案“{legal}”已在"


# --- checked and fine -----------------------------------------------------------------------

def test_short_former_and_branch_names_find_their_own_files(hub, tmp_path, rep_types):
    """Short names, former names (曾用名), full-width letters and a branch's own spelling go to
    the right file; a branch not on file is never put on its head office."""
    import_listed(hub, tmp_path, also=("TCL中环新能源科技股份有限公司", "TCL科技集团股份有限公司",
                                       "中信证券股份有限公司", "国药集团一致药业股份有限公司"),
                  extra_rows=("中信证券股份有限公司上海分公司",))
    assert rep_types("天津中环半导体股份有限公司") == "TCL中环新能源科技股份有限公司"
    assert rep_types("ＴＣＬ科技") == "TCL科技集团股份有限公司"
    assert rep_types("国药一致") == "国药集团一致药业股份有限公司"
    assert rep_types("中信证券上海分公司") == "中信证券股份有限公司上海分公司"
    assert rep_types("中信证券（上海分公司）") == "中信证券股份有限公司上海分公司"
    assert rep_types("中信证券北京分公司") is None

"""Realistic customer lists of Chinese enterprises for the import bench and tests.

Deterministic by seed. A legal name is built as the naming rules build it: region (province,
city, 省/市 or not, sometimes in brackets after the trade name) + trade name (字号) + industry
words + organisation form. Customers carry short names (trade name + industry abbreviation,
region short form + trade name, trade name + 股份/集团 …) and former names (a listing's
有限公司 → 股份有限公司, a renamed trade name, an old short name), a USCC (valid, malformed or
missing), province / city / tier / owner columns as an ERP export has them.

Some rows are branches of another row (…有限公司苏州分公司), a few of a head office that is not
in the list; some rows are planted duplicates of another row, as customer lists have them:
another organisation form, another wording of the industry, the region written differently,
the same USCC under another name, or a legal name that is another row's former name. No two
base companies share province and trade name, so every duplicate in the list is a planted one.

It builds on the vocabulary of bench/names_gen.py (trade-name characters, weighted picks) and
adds what an import meets: industry wordings, USCCs, regions and planted duplicates.

    python -m bench.customer_names [--n 20] [--seed 1]      # print a sample
"""
from __future__ import annotations

import argparse
import csv
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.names_gen import TRADE_CHARS, weighted
from models import name_data as D
from models.uscc import ALPHABET, make_uscc

# (family, wordings, weight): the wordings of one line of business, first is the usual one,
# each with the abbreviation short names use
INDUSTRIES: tuple[tuple[tuple[str, str], ...], ...] = (
    (("医疗设备", "医疗"), ("医疗器械", "医械"), ("医疗科技", "医疗"), ("医疗器材", "医疗")),
    (("医药", "医药"), ("药业", "药业"), ("制药", "制药")),
    (("生物科技", "生物"), ("生物技术", "生物"), ("生物工程", "生物")),
    (("电子科技", "电子"), ("电子", "电子"), ("电子技术", "电子")),
    (("电气", "电气"), ("电器", "电器"), ("电器设备", "电器")),
    (("机械", "机械"), ("机电", "机电"), ("装备", "装备")),
    (("仪器仪表", "仪表"), ("仪器", "仪器")),
    (("新材料", "新材"), ("材料", "材料")),
    (("化工", "化工"), ("化学", "化学")),
    (("贸易", "贸易"), ("商贸", "商贸"), ("工贸", "工贸")),
    (("信息技术", "信息"), ("信息科技", "信息"), ("软件", "软件")),
    (("智能科技", "智能"), ("自动化", "自动化")),
    (("环保科技", "环保"), ("环保设备", "环保"), ("环境科技", "环境")),
    (("汽车零部件", "汽配"), ("汽车部件", "汽配")),
    (("包装", "包装"),), (("五金", "五金"),), (("纺织", "纺织"),), (("食品", "食品"),),
    (("光电", "光电"),), (("建材", "建材"),), (("物流", "物流"), ("供应链", "供应链")),
)
INDUSTRY_WEIGHTS = (14, 8, 5, 8, 5, 8, 3, 4, 4, 9, 5, 4, 3, 3, 2, 2, 2, 3, 2, 2, 2)
ORG_FORMS = (("有限公司", 60), ("有限责任公司", 14), ("股份有限公司", 14), ("集团有限公司", 4),
             ("集团股份有限公司", 2), ("厂", 3), ("商行", 1))
FORM_VARIANTS = {"有限公司": ("有限责任公司", "股份有限公司"), "有限责任公司": ("有限公司",),
                 "股份有限公司": ("有限公司", "股份公司"), "集团有限公司": ("有限公司", "集团股份有限公司"),
                 "集团股份有限公司": ("股份有限公司", "集团有限公司"), "厂": ("有限公司",),
                 "商行": ("有限公司",)}
BRANCH_MARKERS = (("分公司", 8), ("办事处", 2), ("营业部", 1), ("分厂", 1))
GENERIC_SHORT = ("股份", "集团", "科技", "控股")
# GB/T 2260 province codes (first two digits of a USCC division)
PROVINCE_CODES = {
    "北京": "11", "天津": "12", "河北": "13", "山西": "14", "内蒙古": "15", "辽宁": "21", "吉林": "22",
    "黑龙江": "23", "上海": "31", "江苏": "32", "浙江": "33", "安徽": "34", "福建": "35", "江西": "36",
    "山东": "37", "河南": "41", "湖北": "42", "湖南": "43", "广东": "44", "广西": "45", "海南": "46",
    "重庆": "50", "四川": "51", "贵州": "52", "云南": "53", "西藏": "54", "陕西": "61", "甘肃": "62",
    "青海": "63", "宁夏": "64", "新疆": "65",
}
SALES_REGIONS = {
    "华东": ("江苏", "浙江", "上海", "安徽", "福建", "江西", "山东"), "华南": ("广东", "广西", "海南"),
    "华北": ("北京", "天津", "河北", "山西", "内蒙古"), "华中": ("河南", "湖北", "湖南"),
    "西南": ("重庆", "四川", "贵州", "云南", "西藏"), "西北": ("陕西", "甘肃", "青海", "宁夏", "新疆"),
    "东北": ("辽宁", "吉林", "黑龙江"),
}
SALES_REGION_OF = {p: r for r, ps in SALES_REGIONS.items() for p in ps}
# provinces weighted as a manufacturer's customers are (the east and south weigh most)
PROVINCE_WEIGHTS = {p: 1 for p in PROVINCE_CODES} | {
    "江苏": 9, "浙江": 8, "广东": 9, "上海": 6, "山东": 6, "北京": 4, "福建": 4, "河南": 3, "湖北": 3,
    "四川": 3, "安徽": 3, "湖南": 2, "河北": 2, "天津": 2, "重庆": 2, "辽宁": 2, "陕西": 2}
PROVINCE_SUFFIX = {p: suffix for p, suffix, _ in D.PROVINCES}
PROVINCE_SHORTS = {p: shorts for p, _, shorts in D.PROVINCES}
DUPLICATE_KINDS = ("form", "industry", "region", "uscc", "former")


@dataclass
class GeneratedCustomer:
    legal_name: str
    short_names: list[str] = field(default_factory=list)
    former_names: list[str] = field(default_factory=list)
    uscc: str = ""
    province: str = ""          # the province column as written ("江苏" / "江苏省" / "")
    city: str = ""
    region: str = ""            # 大区
    tier: str = ""
    owner: str = ""
    kind: str = "base"          # base | branch | orphan-branch | dup:<kind>
    of: int | None = None       # index of the row it is a branch / duplicate of
    in_file: bool = True        # False: the head office of an orphan branch (not in the list)
    # what the name is made of (for variants)
    province_name: str = ""
    city_name: str = ""
    trade: str = ""
    family: int = 0
    wording: int = 0
    form: str = ""
    region_style: str = ""

    def row(self) -> dict[str, str]:
        return {"legal_name": self.legal_name, "short_names": ";".join(self.short_names),
                "former_names": "；".join(self.former_names), "uscc": self.uscc,
                "province": self.province, "city": self.city, "region": self.region,
                "tier": self.tier, "owner": self.owner}


class CustomerListGenerator:
    def __init__(self, seed: int = 1, owners: tuple[str, ...] = ("rep-zhangwei", "rep-lina")):
        self.rng = random.Random(seed)
        self.owners = owners
        self.taken: set[tuple[str, str]] = set()     # (province, trade name)
        # a name without region is registered nationally: its trade name is nobody else's
        self.national: set[str] = set()
        self.used: Counter[str] = Counter()           # trade name -> provinces using it
        self.codes: set[str] = set()
        self.provinces = [(p, PROVINCE_WEIGHTS[p]) for p in PROVINCE_CODES]
        self.families = list(zip(range(len(INDUSTRIES)), INDUSTRY_WEIGHTS))

    # -- pieces --
    def trade(self, province: str, national: bool = False) -> str:
        rng = self.rng
        while True:
            length = 2 if rng.random() < 0.8 else 3
            name = "".join(rng.choice(TRADE_CHARS) for _ in range(length))
            if len(set(name)) < length or (province, name) in self.taken \
                    or name in self.national or (national and self.used[name]):
                continue
            self.taken.add((province, name))
            self.used[name] += 1
            if national:
                self.national.add(name)
            return name

    def uscc(self, province: str) -> str:
        rng = self.rng
        while True:
            division = PROVINCE_CODES[province] + rng.choice(("0100", "0200", "0500", "0000"))
            body = "".join(rng.choice(ALPHABET[:10] if rng.random() < 0.7 else ALPHABET)
                           for _ in range(8))
            code = make_uscc("9", "1", division, body)
            if code not in self.codes:
                self.codes.add(code)
                return code

    def malformed(self, code: str) -> str:
        last = ALPHABET[(ALPHABET.index(code[-1]) + 1 + self.rng.randrange(29)) % 31]
        return code[:-1] + last

    @staticmethod
    def compose(c: GeneratedCustomer, *, form: str | None = None, wording: int | None = None,
                style: str | None = None, trade: str | None = None) -> str:
        form = form or c.form
        industry = INDUSTRIES[c.family][c.wording if wording is None else wording][0]
        trade = trade or c.trade
        style = style or c.region_style
        p, city = c.province_name, c.city_name
        if style == "province":
            return f"{p}{trade}{industry}{form}"
        if style == "province_suffix":
            return f"{p}{PROVINCE_SUFFIX[p]}{trade}{industry}{form}"
        if style == "city":
            return f"{city}{trade}{industry}{form}"
        if style == "city_suffix":
            return f"{city}市{trade}{industry}{form}"
        if style == "bracket":
            return f"{trade}{industry}({p}){form}"
        return f"{trade}{industry}{form}"  # no region written

    def short_names(self, c: GeneratedCustomer) -> list[str]:
        rng = self.rng
        abbr = INDUSTRIES[c.family][c.wording][1]
        options = [c.trade + abbr]
        shorts = PROVINCE_SHORTS.get(c.province_name, ())
        if shorts:
            options.append(shorts[0] + c.trade)
        options.append(c.trade + rng.choice(GENERIC_SHORT))
        options.append(c.trade + INDUSTRIES[c.family][0][0])
        rng.shuffle(options)
        n = weighted(rng, ((1, 2), (2, 6), (3, 2)))
        return list(dict.fromkeys(options[:n]))

    # -- customers --
    def base(self) -> GeneratedCustomer:
        rng = self.rng
        province = weighted(rng, self.provinces)
        cities = D.CITIES.get(province) or ()
        city = rng.choice(cities) if cities else province
        style = rng.random()
        style = ("province" if style < 0.45 else "city" if style < 0.65 else
                 "province_suffix" if style < 0.72 else "city_suffix" if style < 0.78
                 else "bracket" if style < 0.85 else "none")
        if style in ("city", "city_suffix") and city == province:
            style = "province"
        c = GeneratedCustomer(legal_name="", province_name=province, city_name=city,
                              trade=self.trade(province, national=style == "none"),
                              family=weighted(rng, self.families),
                              form=weighted(rng, ORG_FORMS), region_style=style)
        c.wording = 0 if rng.random() < 0.7 else rng.randrange(len(INDUSTRIES[c.family]))
        c.legal_name = self.compose(c)
        c.short_names = self.short_names(c)
        # former names: a listing (有限公司 → 股份有限公司), a rename, an old short name
        roll = rng.random()
        if c.form == "股份有限公司" and roll < 0.6:
            c.former_names.append(self.compose(c, form="有限公司"))
        elif roll < 0.55:
            old_trade = self.trade(province, national=c.region_style == "none")
            c.former_names.append(self.compose(c, trade=old_trade))
            if rng.random() < 0.5:
                c.former_names.append(old_trade + INDUSTRIES[c.family][c.wording][1])
        elif roll < 0.85:
            # the region added or dropped at a re-registration (nationally: if nobody else
            # uses the trade name)
            if c.region_style != "none" and self.used[c.trade] == 1 \
                    and c.trade not in self.national:
                self.national.add(c.trade)
                style = "none"
            else:
                style = "province_suffix" if c.region_style == "province" else "province"
            c.former_names.append(self.compose(c, form=rng.choice(FORM_VARIANTS[c.form]),
                                               style=style))
        roll = rng.random()
        c.uscc = "" if roll < 0.1 else self.uscc(province)
        if c.uscc and roll > 0.99:
            c.uscc = self.malformed(c.uscc)
        self.columns(c)
        if c.region_style == "none" and not c.province:
            c.province = province  # an export without region in the name keeps the column
        return c

    def columns(self, c: GeneratedCustomer) -> None:
        rng = self.rng
        p = c.province_name
        roll = rng.random()
        c.province = p if roll < 0.7 else p + PROVINCE_SUFFIX[p] if roll < 0.85 else ""
        if rng.random() < 0.7 and c.city_name != p:
            c.city = c.city_name + ("市" if rng.random() < 0.6 else "")
        c.region = SALES_REGION_OF.get(p, "") if rng.random() < 0.8 else ""
        c.tier = weighted(rng, (("A", 1), ("B", 3), ("C", 5), ("D", 1), ("", 1)))
        c.owner = rng.choice(self.owners) if self.owners and rng.random() < 0.8 else ""

    def branch(self, parent: GeneratedCustomer, index: int, used: set) -> GeneratedCustomer | None:
        rng = self.rng
        province = weighted(rng, self.provinces)
        cities = D.CITIES.get(province) or (province,)
        city = rng.choice(cities)
        marker = weighted(rng, BRANCH_MARKERS)
        if (index, city) in used:
            return None
        used.add((index, city))
        b = GeneratedCustomer(legal_name=f"{parent.legal_name}{city}{marker}", kind="branch",
                              of=index, province_name=province, city_name=city,
                              trade=parent.trade, family=parent.family, form=parent.form)
        b.short_names = [f"{parent.trade}{city}{marker}"]
        b.uscc = self.uscc(province) if rng.random() < 0.7 else ""
        self.columns(b)
        return b

    def duplicate(self, base: GeneratedCustomer, index: int, kind: str) -> GeneratedCustomer | None:
        rng = self.rng
        d = GeneratedCustomer(legal_name="", kind=f"dup:{kind}", of=index,
                              province_name=base.province_name, city_name=base.city_name,
                              trade=base.trade, family=base.family, wording=base.wording,
                              form=base.form, region_style=base.region_style)
        if kind == "form":
            d.form = rng.choice(FORM_VARIANTS[base.form])
        elif kind == "industry":
            others = [i for i in range(len(INDUSTRIES[base.family])) if i != base.wording]
            if not others:
                return None
            d.wording = rng.choice(others)
        elif kind == "region":
            styles = {"province": ("bracket", "province_suffix", "none"),
                      "province_suffix": ("province", "bracket"),
                      "city": ("city_suffix",), "city_suffix": ("city",),
                      "bracket": ("province", "province_suffix"), "none": ("province", "bracket")}
            d.region_style = rng.choice(styles[base.region_style])
        if kind in ("form", "industry", "region"):
            d.legal_name = self.compose(d)
            d.short_names = self.short_names(d)
            d.uscc = base.uscc if base.uscc and rng.random() < 0.4 else ""
        elif kind == "uscc":
            if not base.uscc:
                return None
            d.trade = self.trade(base.province_name)
            d.legal_name = self.compose(d)
            d.short_names = self.short_names(d)
            d.uscc = base.uscc
        elif kind == "former":
            full = [f for f in base.former_names if f.endswith(("公司", "厂", "商行"))]
            if not full:
                return None
            d.legal_name = full[0]
            d.short_names = []
        if d.legal_name == base.legal_name:
            return None
        self.columns(d)
        d.province = d.province or base.province
        return d

    def generate(self, n: int, *, branch_rate: float = 0.05, orphan_rate: float = 0.2,
                 duplicate_rate: float = 0.02) -> list[GeneratedCustomer]:
        """`n` rows (plus the head offices of orphan branches, marked in_file=False)."""
        rng = self.rng
        out: list[GeneratedCustomer] = []
        names: set[str] = set()
        used_branches: set = set()
        bases: list[int] = []
        rows = 0
        while rows < n:
            roll = rng.random()
            made = None
            if roll < branch_rate and bases:
                if rng.random() < orphan_rate:
                    parent = self.base()
                    parent.in_file = False
                    out.append(parent)
                    names.add(parent.legal_name)
                    made = self.branch(parent, len(out) - 1, used_branches)
                    if made:
                        made.kind = "orphan-branch"
                else:
                    i = rng.choice(bases[-500:])
                    made = self.branch(out[i], i, used_branches)
            elif roll < branch_rate + duplicate_rate and bases:
                i = rng.choice(bases[-500:])
                made = self.duplicate(out[i], i, rng.choice(DUPLICATE_KINDS))
            else:
                made = self.base()
            if made is None or made.legal_name in names:
                continue
            names.add(made.legal_name)
            out.append(made)
            if made.kind == "base":
                bases.append(len(out) - 1)
            rows += 1
        return out


def generate_customers(n: int, seed: int = 1, **kw) -> list[GeneratedCustomer]:
    owners = kw.pop("owners", ("rep-zhangwei", "rep-lina"))
    return CustomerListGenerator(seed, owners).generate(n, **kw)


CSV_HEADER = ("legal_name", "short_names", "former_names", "uscc", "province", "city", "region",
              "tier", "owner")


def write_csv(customers: list[GeneratedCustomer], path: Path, *, encoding: str = "utf-8") -> int:
    """The rows that are in the file (orphan branches' head offices are not); returns count."""
    rows = [c.row() for c in customers if c.in_file]
    with open(path, "w", encoding=encoding, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_HEADER)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def queries(customers: list[GeneratedCustomer], n: int, seed: int = 2) -> list[str]:
    """What reps type for these customers: short names, legal names, slips, former names, and
    names of companies that are not customers at all."""
    rng = random.Random(seed)
    present = [c for c in customers if c.in_file]
    stranger = CustomerListGenerator(seed + 1000, ())
    stranger.taken = {(c.province_name, c.trade) for c in customers}  # not a customer
    stranger.national = {c.trade for c in customers if c.region_style == "none"}
    stranger.used = Counter(c.trade for c in customers)
    out = []
    while len(out) < n:
        roll = rng.random()
        c = rng.choice(present)
        if roll < 0.5 and c.short_names:
            out.append(rng.choice(c.short_names))
        elif roll < 0.7:
            out.append(c.legal_name)
        elif roll < 0.8:
            name = c.legal_name
            k = rng.randrange(1, len(name) - 1)
            out.append(name[:k] + name[k + 1:])  # a character left out
        elif roll < 0.9 and c.former_names:
            out.append(rng.choice(c.former_names))
        else:
            out.append(stranger.base().legal_name)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    for c in generate_customers(args.n, args.seed):
        flag = "" if c.in_file else "（不在文件中）"
        print(f"{c.kind:14} {c.legal_name}{flag} | 简称 {'、'.join(c.short_names)} | "
              f"曾用名 {'、'.join(c.former_names)} | {c.uscc or '-'} | {c.province} {c.city} "
              f"{c.tier} {c.owner}")


if __name__ == "__main__":
    main()

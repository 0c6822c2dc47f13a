"""Generator of realistic Chinese enterprise names, deterministic by seed.

A name is built the way the registration rules and habit build it: region (province, city or
district, sometimes with 省/市, sometimes in brackets after the trade name) + trade name (字号,
two to four characters from the characters firms like) + industry words + organisation form;
some customers are branches (parent's full name + place + 分公司/办事处/…). Short names are
derived as people derive them (trade name + industry word or its abbreviation, region short form
+ trade name, trade name + 股份/集团, …); former names change the trade name, the region or the
organisation form (有限公司 → 股份有限公司 at a listing). `typo` makes the slips reps make.

    python -m bench.names_gen [--n 20] [--seed 1]      # print a sample
"""
from __future__ import annotations

import argparse
import random
from dataclasses import dataclass

from models import name_data as D

# characters firms like in trade names (general usage, deliberately overlapping so that trade
# names collide as they do in a real customer file)
TRADE_CHARS = (
    "华信达康恒瑞金宏盛泰德鑫源通天海中新安利隆兴昌和永佳美力博远祥丰顺宇嘉诚润腾飞创科凯明"
    "智捷锦益欣晨星光辉正立威东南北西长大同福万百千聚合弘睿峰冠卓越君志荣升展航亿宝龙凤骏豪"
    "杰帆舟桥森林松竹雅轩逸致道仁义勤华汇联融晟昊旭曜璟琪瑾铭铂钧铠锐锋驰骐骋朗朋策协众普惠"
    "泽洋浩清澜沃淳涵润滨江河山岳川峻岭川原野田禾谷稼穗粮丰茂蓝青绿红紫橙彩虹霞云雷电风雨雪"
    "春夏秋冬阳明月星辰宇宙乾坤坤元亨贞吉祥瑞福禄寿喜康健宁静致远开拓进取精诚团结奋发图强"
    "高科技术新世纪环球国际亚太欧美中兴华夏神州九州四海八方五洲三江两河一统万家千禧百年"
)
INDUSTRIES = (
    ("医疗器械", 8), ("医疗设备", 6), ("医疗科技", 5), ("生物科技", 4), ("医药", 3), ("药业", 3),
    ("制药", 2), ("科技", 10), ("电子", 4), ("电子科技", 3), ("机械", 4), ("精密机械", 2),
    ("自动化设备", 2), ("电气", 3), ("新材料", 3), ("材料科技", 2), ("贸易", 4), ("商贸", 3),
    ("化工", 2), ("仪器", 2), ("仪器仪表", 1), ("信息技术", 2), ("智能科技", 3), ("环保科技", 2),
    ("包装", 1), ("塑胶", 1), ("五金", 1), ("实业", 3), ("工贸", 1), ("供应链", 1),
    ("医用材料", 1), ("健康科技", 2), ("生物工程", 1), ("光电", 1), ("汽车零部件", 1),
)
ORG_FORMS = (
    ("有限公司", 55), ("有限责任公司", 14), ("股份有限公司", 14), ("集团有限公司", 4),
    ("(集团)股份有限公司", 1), ("集团股份有限公司", 2), ("厂", 3), ("合伙企业(有限合伙)", 1),
    ("研究院", 1), ("商行", 1),
)
BRANCH_MARKERS = (("分公司", 8), ("办事处", 2), ("营业部", 1), ("分厂", 1), ("经营部", 1))
GENERIC = ("股份", "集团", "控股", "科技")
_PROVINCES = [(p, suffix, shorts) for p, suffix, shorts in D.PROVINCES if p not in ("台湾",)]


def weighted(rng: random.Random, items):
    total = sum(w for _, w in items)
    x = rng.uniform(0, total)
    for item, w in items:
        x -= w
        if x <= 0:
            return item
    return items[-1][0]


@dataclass(frozen=True)
class NameParts:
    province: str
    region: str          # as written in front ("" when none / in brackets)
    bracket_region: str  # written in brackets after the trade name
    trade: str
    industry: str
    org_form: str

    @property
    def legal_name(self) -> str:
        bracket = f"({self.bracket_region})" if self.bracket_region else ""
        return f"{self.region}{self.trade}{bracket}{self.industry}{self.org_form}"


@dataclass(frozen=True)
class GeneratedCompany:
    customer_id: int
    legal_name: str
    parts: NameParts
    short_names: tuple[str, ...]
    former_names: tuple[str, ...]
    parent_id: int | None = None   # branches: the parent's customer id


class NameGenerator:
    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)
        self._used: set[str] = set()

    def trade(self) -> str:
        rng = self.rng
        k = weighted(rng, ((2, 70), (3, 22), (4, 8)))
        return "".join(rng.choice(TRADE_CHARS) for _ in range(k))

    def parts(self) -> NameParts:
        rng = self.rng
        province, suffix, _ = rng.choice(_PROVINCES)
        cities = D.CITIES.get(province, ())
        districts = D.DISTRICTS.get(province, ())
        style = weighted(rng, (("province", 30), ("city", 45), ("district", 8), ("none", 10),
                                ("bracket", 7)))
        region = bracket = ""
        if style == "province" or (style in ("city", "bracket") and not cities):
            region = province + (suffix if rng.random() < 0.3 and len(suffix) == 1 else "")
        elif style == "city":
            city = rng.choice(cities)
            region = city + ("市" if rng.random() < 0.35 else "")
        elif style == "district" and districts:
            region = rng.choice(districts)
        if style == "bracket":
            bracket, region = (rng.choice(cities) if cities else province), ""
        words = [weighted(rng, INDUSTRIES)]
        if rng.random() < 0.04:
            words.insert(0, weighted(rng, INDUSTRIES))
        industry = "".join(dict.fromkeys(words))
        return NameParts(province, region, bracket, self.trade(), industry,
                         weighted(rng, ORG_FORMS))

    def unique_parts(self) -> NameParts:
        while True:
            p = self.parts()
            if p.legal_name not in self._used:
                self._used.add(p.legal_name)
                return p

    def short_names(self, p: NameParts) -> list[str]:
        """The ways people shorten a name (one to three of them)."""
        rng = self.rng
        prov_short = next((s[0] for name, _, s in _PROVINCES if name == p.province), "")
        industry = p.industry
        abbrev = [a for w, abbrs in D.INDUSTRY_ABBREVIATIONS.items() if w in industry for a in abbrs]
        first_word = industry[:2]
        place = (p.region or p.bracket_region).rstrip("省市")
        options = [
            p.trade + first_word,                              # 康达医疗
            p.trade + (rng.choice(abbrev) if abbrev else first_word),   # 康达医械
            p.trade + rng.choice(GENERIC),                     # 康达股份
            p.trade if len(p.trade) >= 3 else p.trade + first_word[:1],  # 康达医
        ]
        if place:
            options.append(prov_short + p.trade)               # 苏康达
            options.append(place + p.trade)                    # 江苏康达
        k = weighted(rng, ((1, 50), (2, 35), (3, 15)))
        return list(dict.fromkeys(rng.sample(options, min(k, len(options)))))

    def former_names(self, p: NameParts) -> list[str]:
        rng = self.rng
        out = []
        if rng.random() < 0.25:
            form = "有限公司" if "股份" in p.org_form else "股份有限公司"
            out.append(NameParts(p.province, p.region, p.bracket_region, p.trade, p.industry,
                                 form).legal_name)
        if rng.random() < 0.1:
            out.append(NameParts(p.province, p.region, p.bracket_region, self.trade(), p.industry,
                                 p.org_form).legal_name)
        return [n for n in out if n != p.legal_name]

    def company(self, customer_id: int) -> GeneratedCompany:
        p = self.unique_parts()
        return GeneratedCompany(customer_id, p.legal_name, p, tuple(self.short_names(p)),
                                tuple(self.former_names(p)))

    def branch(self, customer_id: int, parent: GeneratedCompany) -> GeneratedCompany:
        rng = self.rng
        province = parent.parts.province
        places = D.CITIES.get(province) or D.DISTRICTS.get(province) or (province,)
        while True:
            place = rng.choice(places)
            marker = weighted(rng, BRANCH_MARKERS)
            name = f"{parent.legal_name}{place}{marker}"
            if name not in self._used:
                self._used.add(name)
                break
        shorts = (f"{parent.short_names[0]}{place}{marker}",) if parent.short_names else ()
        return GeneratedCompany(customer_id, name, parent.parts, shorts, (), parent.customer_id)

    def companies(self, n: int, branch_share: float = 0.05) -> list[GeneratedCompany]:
        out: list[GeneratedCompany] = []
        for cid in range(1, n + 1):
            if out and self.rng.random() < branch_share:
                parent = self.rng.choice(out)
                if parent.parent_id is None and parent.parts.org_form not in ("厂", "商行"):
                    out.append(self.branch(cid, parent))
                    continue
            out.append(self.company(cid))
        return out


def typo(name: str, rng: random.Random) -> str:
    """One slip: a wrong character, a dropped one, two swapped, or another organisation form."""
    kind = rng.random()
    if kind < 0.2 and name.endswith("有限公司") and not name.endswith("有限责任公司"):
        return name[:-4] + "有限责任公司"
    chars = list(name)
    i = rng.randrange(len(chars))
    if kind < 0.55:
        chars[i] = rng.choice(TRADE_CHARS)
    elif kind < 0.8 and len(chars) > 4:
        del chars[i]
    elif i + 1 < len(chars):
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def generate_companies(n: int, seed: int = 0, branch_share: float = 0.05) -> list[GeneratedCompany]:
    return NameGenerator(seed).companies(n, branch_share)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="print generated enterprise names")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    for c in generate_companies(args.n, args.seed, branch_share=0.15):
        extra = f"  曾用名 {'、'.join(c.former_names)}" if c.former_names else ""
        parent = f"  （分支机构，总公司 #{c.parent_id}）" if c.parent_id else ""
        print(f"#{c.customer_id} {c.legal_name}  简称 {'、'.join(c.short_names)}  "
              f"错字 {typo(c.legal_name, rng)}{extra}{parent}")


if __name__ == "__main__":
    main()

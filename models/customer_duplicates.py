"""Would-be duplicate customer files, found cheaply and handed to a person (never merged here).

Three kinds of evidence, each found through a blocking key so that no name is compared with
more than a handful of others (an import of 100k rows must not run a matcher search per row):

* the same USCC (统一社会信用代码) under two legal names;
* one file's legal name is another file's alias (short name, former name …);
* names that differ only in organisation form, industry wording or the way the region is
  written (江苏康达医疗设备有限公司 / 江苏康达医疗器械有限责任公司 / 康达医疗(江苏)有限公司):
  blocked by trade name (字号) and province, then compared structurally within the block.
  Registration rules forbid two companies with the same region, trade name and industry, so
  a pair that agrees on those (industry "related", region compatible) is most likely one
  company written twice; two *valid* and different USCCs prove two legal persons, so such a
  pair is never reported on names alone.

A branch (分支机构) is never reported with its parent: it is a customer of its own.

Pure Python over plain records: the caller loads them (and writes the review workbook).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from models import name_data as D
from models.names import (
    CITY_NAMES, DISTRICT_NAMES, PROVINCE_OFFICIAL, flat, name_segments, parse_normalized,
)

#: what an alias kind is called in a reason
ALIAS_KIND_LABELS = {"short": "简称", "former": "曾用名", "typed": "录入名称", "merged": "合并客户名称"}

#: a USCC shorter than this is not compared (clearly a typing fragment, not an identity)
MIN_USCC_LENGTH = 15
#: a touched file is compared with at most this many names of its block (a trade name shared
#: by hundreds of files in one province carries no evidence)
MAX_COMPARISONS = 400

# industry words that say little about what a firm does (华信科技 / 华信电子科技 may be one)
_GENERIC_INDUSTRY = frozenset({
    "科技", "技术", "高科技", "高科", "高新技术", "高新", "新技术", "实业", "发展", "产业", "国际",
    "工业", "制造", "集团", "控股", "投资", "投资控股", "投资发展", "服务", "商务",
})
# wordings of one line of business (医疗设备 / 医疗器械; 医药 / 药业)
_INDUSTRY_FAMILIES: tuple[frozenset[str], ...] = tuple(frozenset(f) for f in (
    {"医疗器械", "医疗设备", "医疗科技", "医疗器材", "医疗用品", "医用器材", "医疗", "卫材", "医学"},
    {"医药", "制药", "药业", "药品", "生物医药", "生物制药", "中药", "中医药", "药房", "大药房"},
    {"生物科技", "生物技术", "生物工程", "生物", "生命科学"},
    {"贸易", "商贸", "工贸", "国际贸易", "进出口", "商业", "供应链"},
    {"电子", "电子科技", "电子技术", "微电子", "电科"},
    {"电气", "电器", "电工", "电器设备"},
    {"信息科技", "信息技术", "信息", "软件", "网络科技", "网络", "数字科技", "数据", "计算机"},
    {"智能科技", "智能装备", "智能", "自动化", "机器人"},
    {"机械", "机电", "装备", "设备", "精密", "精工", "工程机械"},
    {"仪器仪表", "仪器", "仪表", "测控", "计量", "检测"},
    {"新材料", "材料"},
    {"化工", "化学", "石化", "石油化工"},
    {"环保设备", "环保科技", "环保", "环境科技", "环境", "水处理", "节能"},
    {"建设", "建筑", "建工", "工程"},
    {"地产", "房地产", "置业", "置地"},
    {"物流", "运输", "交通运输", "供应链"},
    {"汽车零部件", "汽车部件", "汽配", "汽车"},
    {"能源", "新能源", "电力能源"},
    {"塑料", "塑胶", "塑业"},
))
_FAMILY_OF: dict[str, set[int]] = defaultdict(set)
for _i, _family in enumerate(_INDUSTRY_FAMILIES):
    for _w in _family:
        _FAMILY_OF[_w].add(_i)
_BRANCH_MARKERS = tuple(sorted(D.BRANCH_MARKERS, key=len, reverse=True))
_PLACES = frozenset(CITY_NAMES | DISTRICT_NAMES | set(PROVINCE_OFFICIAL))


@dataclass
class FileRecord:
    """One active customer file as the duplicate finder sees it."""

    customer_id: int
    legal_name: str
    name_key: str
    uscc: str | None = None          # cleaned (upper case, no spaces)
    uscc_ok: bool = False            # passed the GB 32100 check
    province: str | None = None      # the province column (canonical), if any
    parent_id: int | None = None
    touched: bool = False            # created or named by the current import


@dataclass(frozen=True)
class AliasName:
    customer_id: int
    name: str
    key: str
    kind: str


@dataclass(frozen=True)
class DuplicatePair:
    a: int                       # the smaller customer id
    b: int
    reasons: tuple[str, ...]
    score: float                 # similarity of the two names (0–100; 100 for USCC/alias)


@dataclass
class DuplicateCluster:
    number: int
    members: list[int]                          # customer ids, existing files first
    pairs: list[DuplicatePair] = field(default_factory=list)

    @property
    def score(self) -> float:
        return max((p.score for p in self.pairs), default=0.0)

    def reasons_for(self, customer_id: int) -> list[str]:
        """Why this file is in the cluster: its pairs, each naming the other file."""
        out = []
        for p in self.pairs:
            if customer_id in (p.a, p.b):
                other = p.b if p.a == customer_id else p.a
                out.append(f"与客户 {other}：" + "，".join(p.reasons))
        return out


@dataclass(frozen=True)
class _Shape:
    trades: tuple[str, ...]      # block keys: the trade name (or region + industry without
    #                              one), and the trade name without a place it starts with
    branch: str                  # branch place without marker / 市 / 省 ("" for a head office)
    regions: frozenset[str]
    provinces: frozenset[str]
    region_text: str             # as written, "(江苏)" when in brackets after the trade name
    words: tuple[str, ...]       # industry words
    industry: str
    org_form: str


def _branch_key(branch: str) -> str:
    text = flat(branch)
    for marker in _BRANCH_MARKERS:
        if text.endswith(marker):
            text = text[:-len(marker)]
            break
    return text.replace("市", "").replace("省", "") or "-"


def _shape(record: FileRecord) -> _Shape:
    p = parse_normalized(record.name_key)
    words = tuple(text for label, text in name_segments(record.name_key) if label == "I")
    provinces = frozenset(p.provinces) or (frozenset({record.province}) if record.province
                                           else frozenset())
    trade = flat(p.trade_name)
    trades = [trade or "".join(p.regions) + p.industry]
    # a place the parser left in the trade name (三明捷航禾: 三明 is read as a place only when
    # written 三明市) must not hide the pair 三明捷航禾 / 三明市捷航禾
    for n in range(2, min(5, len(trade) - 1)):
        if trade[:n] in _PLACES:
            trades.append(trade[n:])
    return _Shape(trades=tuple(trades), branch=_branch_key(p.branch) if p.is_branch else "",
                  regions=frozenset(p.regions), provinces=provinces,
                  region_text=f"({p.region})" if p.region_in_brackets else p.region,
                  words=words, industry=p.industry, org_form=p.org_form)


def industry_relation(a: tuple[str, ...], b: tuple[str, ...]) -> str | None:
    """"same", "wording" (one line of business written differently) or None (different)."""
    if a == b:
        return "same"
    sa = [w for w in a if w not in _GENERIC_INDUSTRY]
    sb = [w for w in b if w not in _GENERIC_INDUSTRY]
    if not sa or not sb or sa == sb:
        return "wording"
    for x in sa:
        for y in sb:
            if x in y or y in x or x[:2] == y[:2] \
                    or _FAMILY_OF.get(x, set()) & _FAMILY_OF.get(y, set()):
                return "wording"
    return None


def _compare(a: FileRecord, sa: _Shape, b: FileRecord,
             sb: _Shape) -> tuple[float, list[str]] | None:
    if sa.branch != sb.branch:
        return None  # a branch and its head office, or two different branches
    if a.uscc_ok and b.uscc_ok and a.uscc != b.uscc:
        return None  # two valid codes: two legal persons
    if sa.regions and sb.regions:
        if not (sa.regions <= sb.regions or sb.regions <= sa.regions):
            return None  # 江苏康达 / 苏州康达: registered by different authorities
    elif sa.provinces and sb.provinces and not (sa.provinces & sb.provinces):
        return None
    relation = industry_relation(sa.words, sb.words)
    if relation is None:
        return None
    reasons = []
    if sa.org_form != sb.org_form:
        reasons.append(f"组织形式不同（{sa.org_form or '无'}/{sb.org_form or '无'}）")
    if relation == "wording":
        reasons.append(f"行业表述不同（{sa.industry or '无'}/{sb.industry or '无'}）")
    if sa.region_text != sb.region_text:
        reasons.append(f"地区写法不同（{sa.region_text or '未写地区'}/{sb.region_text or '未写地区'}）")
    if not reasons:
        reasons.append("名称写法不同")
    return fuzz.ratio(flat(a.name_key), flat(b.name_key)), reasons


class _Clusters:
    """Union-find over customer ids, collecting the evidence of each pair."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.pairs: dict[tuple[int, int], tuple[list[str], float]] = {}

    def find(self, x: int) -> int:
        root = x
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while x != root:
            self.parent[x], x = root, self.parent.get(x, x)
        return root

    def union(self, a: int, b: int, reasons: list[str], score: float) -> None:
        key = (min(a, b), max(a, b))
        known, best = self.pairs.get(key, ([], 0.0))
        known.extend(r for r in reasons if r not in known)
        self.pairs[key] = (known, max(best, score))
        self.parent.setdefault(a, a)
        self.parent.setdefault(b, b)
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def find_duplicates(records: Mapping[int, FileRecord], aliases: Iterable[AliasName],
                    order: Mapping[int, int] | None = None) -> list[DuplicateCluster]:
    """Clusters of files that may be one customer, each holding at least one touched file.

    `records`: every active file by id (touched ones marked); `aliases`: their other names;
    `order`: where a touched file sits in the import (row number), for numbering the clusters
    in the order a person reads the file.
    """
    found = _Clusters()

    def related(a: FileRecord, b: FileRecord) -> bool:
        return a.parent_id == b.customer_id or b.parent_id == a.customer_id

    def pair(a: int, b: int, reasons: list[str], score: float) -> None:
        ra, rb = records[a], records[b]
        if a != b and (ra.touched or rb.touched) and not related(ra, rb):
            found.union(a, b, reasons, score)

    touched = [r for r in records.values() if r.touched]

    # 1. same USCC under different legal names
    by_uscc: dict[str, list[int]] = defaultdict(list)
    for r in records.values():
        if r.uscc and len(r.uscc) >= MIN_USCC_LENGTH:
            by_uscc[r.uscc].append(r.customer_id)
    for code, ids in by_uscc.items():
        if len(ids) > 1 and any(records[i].touched for i in ids):
            for k, a in enumerate(ids):
                for b in ids[k + 1:]:
                    pair(a, b, [f"统一社会信用代码相同（{code}）"], 100.0)

    # 2. one file's legal name is another file's alias
    by_alias: dict[str, list[AliasName]] = defaultdict(list)
    aliases_of: dict[int, list[AliasName]] = defaultdict(list)
    touched_ids = {r.customer_id for r in touched}
    for alias in aliases:
        if alias.customer_id in records:
            by_alias[alias.key].append(alias)
            if alias.customer_id in touched_ids:
                aliases_of[alias.customer_id].append(alias)
    by_legal = {r.name_key: r.customer_id for r in records.values()}
    def clash(legal: FileRecord, alias: AliasName) -> None:
        # one wording whichever side was found first, so a pair found twice reads once
        label = ALIAS_KIND_LABELS.get(alias.kind, "别名")
        pair(legal.customer_id, alias.customer_id,
             [f"“{alias.name}”是客户 {legal.customer_id} 的工商全称，也是客户 "
              f"{alias.customer_id} 的{label}"], 100.0)

    for r in touched:
        for alias in by_alias.get(r.name_key, ()):
            clash(r, alias)
        for alias in aliases_of.get(r.customer_id, ()):
            other = by_legal.get(alias.key)
            if other is not None:
                clash(records[other], alias)

    # 3. names written differently: block by trade name (+ branch place) and province
    shapes: dict[int, _Shape] = {}
    blocks: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    touched_trades = set()
    for r in touched:
        s = shapes[r.customer_id] = _shape(r)
        touched_trades.update((t, s.branch) for t in s.trades)
    for r in records.values():
        s = shapes.get(r.customer_id)
        if s is None:
            s = _shape(r)  # kept only when it shares a block with a touched file
            if not any((t, s.branch) in touched_trades for t in s.trades):
                continue
            shapes[r.customer_id] = s
        for trade in s.trades:
            if trade:
                for province in s.provinces or ("?",):
                    blocks[(trade, s.branch)][province].append(r.customer_id)
    for r in touched:
        s = shapes[r.customer_id]
        candidates = []
        for trade in s.trades:
            block = blocks.get((trade, s.branch))
            if not block:
                continue
            if s.provinces:
                candidates += [i for p in (*s.provinces, "?") for i in block.get(p, ())]
            else:  # no region in the name and no province column: any province may be meant
                candidates += [i for ids in block.values() for i in ids]
        seen = {r.customer_id}
        compared = 0
        for other in candidates:
            if other in seen:
                continue
            seen.add(other)
            compared += 1
            if compared > MAX_COMPARISONS:
                break
            o = records[other]
            # compared in id order, so that a pair reads the same whichever side was touched
            hit = (_compare(r, s, o, shapes[other]) if r.customer_id < other
                   else _compare(o, shapes[other], r, s))
            if hit is not None:
                score, reasons = hit
                pair(r.customer_id, other, reasons, score)

    # clusters, numbered in the order of the import rows
    members: dict[int, list[int]] = defaultdict(list)
    for cid in found.parent:
        members[found.find(cid)].append(cid)
    pairs_of: dict[int, list[DuplicatePair]] = defaultdict(list)
    for (a, b), (reasons, score) in sorted(found.pairs.items()):
        pairs_of[found.find(a)].append(DuplicatePair(a, b, tuple(reasons), round(score, 1)))
    order = order or {}
    far = max(order.values(), default=0) + 1

    def first_row(ids: list[int]) -> tuple[int, int]:
        return min(order.get(i, far) for i in ids), min(ids)

    def member_order(i: int) -> tuple[int, int]:
        # files the import did not name first, then the import's in row order
        return (order.get(i, 0) if records[i].touched else 0, i)

    return [DuplicateCluster(number, sorted(ids, key=member_order), pairs_of[root])
            for number, (root, ids) in enumerate(
                sorted(members.items(), key=lambda kv: first_row(kv[1])), start=1)]


def suggest_survivor(records: Mapping[int, FileRecord], members: Iterable[int],
                     orders: Mapping[int, int], existing: set[int]) -> tuple[int, str]:
    """The file to keep (and why): a valid USCC first, then the most orders, then a file that
    was on record before the import, then the oldest."""
    def rank(cid: int):
        r = records[cid]
        return (r.uscc_ok, orders.get(cid, 0), cid in existing, -cid)

    best = max(members, key=rank)
    r = records[best]
    why = []
    if r.uscc_ok:
        why.append("信用代码有效")
    why.append(f"订单 {orders.get(best, 0)} 笔")
    if best in existing:
        why.append("已有档案")
    return best, "、".join(why)

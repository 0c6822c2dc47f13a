"""Understanding Chinese enterprise names: normalisation and a structural parse.

A registered name is 行政区划 + 字号 + 行业或经营特点 + 组织形式 (region + trade name + industry +
organisation form), the region sometimes in brackets after the trade name (创耀(苏州)通信科技…), and
a branch (分支机构) appends its own part to its parent's full name (…有限公司苏州分公司).

Branch rule (decided here, relied on by the matcher): a name is a branch when it ends in a strong
branch marker (分公司, 分厂, 分店, 分行, 支行, 办事处, 代表处, 营业部, 分理处, 分部, 分院, 分所, 分中心,
分社, 分站, 分场), or in a weak marker (经营部, 服务部, 门市部, 销售部, 联络处, 工作站, 直营店, 专卖店,
加油站) right after a parent that carries an organisation form (…有限公司XX经营部); a bare
"张三五金经营部" is an individual business of its own, not a branch. 子公司 (subsidiaries) are
legal persons with their own legal names and are never branches.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache

from models import name_data as D

# full-width ASCII (Ｆ, ０ … ～) and the ideographic space, as typed in Chinese input mode, to
# half-width: `text.translate(HALF_WIDTH)`
HALF_WIDTH = {**{c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}, 0x3000: 0x20}

# --- normalisation ------------------------------------------------------------------

_BRACKETS = str.maketrans({
    "〔": "(", "〕": ")", "【": "(", "】": ")", "[": "(", "]": ")", "{": "(", "}": ")",
    "〈": "(", "〉": ")", "《": "(", "》": ")", "「": "(", "」": ")", "『": "(", "』": ")",
    "〖": "(", "〗": ")", "﹝": "(", "﹞": ")", "<": "(", ">": ")",
})


# common punctuation and spaces dropped by table (fast path); anything else odd goes through
# the per-character category check
_FAST = dict(_BRACKETS)
_FAST.update({ord(ch): None for ch in " \t\r\n\u3000\u00a0,.;:!?'\"`~@#$%^&*-_+=|\\/"
              "，。；：！？、·…—～“”‘’・﹒"})
_ODD = re.compile(r"[^\w()]|_")


def _drop(ch: str) -> bool:
    if ch in "()":
        return False
    cat = unicodedata.category(ch)
    return cat[0] in "PSZC"  # punctuation, symbols, separators (spaces), control


def normalize_name(name: str) -> str:
    """NFKC (full → half width), every bracket style → (), spaces and punctuation removed,
    latin lower-cased. Empty brackets go too."""
    text = unicodedata.normalize("NFKC", name or "").translate(_FAST)
    if _ODD.search(text):
        text = "".join(ch for ch in text if not _drop(ch))
    text = text.lower()
    return text.replace("()", "") if "()" in text else text


def flat(text: str) -> str:
    """A normalised name without its brackets (for character comparisons)."""
    return text.replace("(", "").replace(")", "")


# --- dictionaries, compiled once ------------------------------------------------------

PROVINCE_NAMES: tuple[str, ...] = tuple(p for p, _, _ in D.PROVINCES)
PROVINCE_OFFICIAL: dict[str, str] = {p: p + suffix for p, suffix, _ in D.PROVINCES}
#: short form → provinces (川 → 四川; 宁 → 宁夏 …)
PROVINCE_SHORT: dict[str, tuple[str, ...]] = {}
for _p, _, _shorts in D.PROVINCES:
    for _s in _shorts:
        PROVINCE_SHORT[_s] = PROVINCE_SHORT.get(_s, ()) + (_p,)
#: city / district → its province
PLACE_PROVINCE: dict[str, str] = {}
for _p, _cities in D.CITIES.items():
    for _c in _cities:
        PLACE_PROVINCE.setdefault(_c, _p)
for _p, _ds in D.DISTRICTS.items():
    for _d in _ds:
        PLACE_PROVINCE.setdefault(_d, _p)
CITY_NAMES = frozenset(c for cs in D.CITIES.values() for c in cs)
DISTRICT_NAMES = frozenset(d for ds in D.DISTRICTS.values() for d in ds)
#: region name → every one-character form that may stand for it in a short name
REGION_SHORT_FORMS: dict[str, frozenset[str]] = {}
for _p, _, _shorts in D.PROVINCES:
    REGION_SHORT_FORMS[_p] = frozenset(_shorts)
for _c, _shorts in D.CITY_SHORT_FORMS.items():
    REGION_SHORT_FORMS[_c] = REGION_SHORT_FORMS.get(_c, frozenset()) | frozenset(_shorts)
#: one character → regions it may stand for (粤 → 广东; 深 → 深圳; 苏 → 江苏, 苏州)
SHORT_FORM_REGIONS: dict[str, tuple[str, ...]] = {}
for _r, _shorts in REGION_SHORT_FORMS.items():
    for _s in _shorts:
        SHORT_FORM_REGIONS[_s] = SHORT_FORM_REGIONS.get(_s, ()) + (_r,)

_PROVINCE_SUFFIXES = ("壮族自治区", "回族自治区", "维吾尔自治区", "特别行政区", "自治区", "省", "市")
_CITY_SUFFIXES = ("地区", "市", "州", "盟")
# 州 and 盟 follow only autonomous prefectures and leagues (恩施州, 兴安盟), never a city:
# 成都盟升电子 is 成都 + 盟升
_PREFECTURE_SUFFIXES = {
    "州": frozenset({"延边", "恩施", "湘西", "阿坝", "甘孜", "凉山", "黔西南", "黔东南", "黔南", "楚雄",
                    "红河", "文山", "西双版纳", "大理", "德宏", "怒江", "迪庆", "临夏", "甘南", "海北",
                    "黄南", "果洛", "玉树", "海西", "昌吉", "博尔塔拉", "巴音郭楞", "克孜勒苏", "伊犁"}),
    "盟": frozenset({"兴安", "锡林郭勒", "阿拉善"}),
}
_DISTRICT_SUFFIXES = ("新区", "市", "区", "县")
_PLACE_SUFFIX_AFTER = ("市", "区", "县", "州", "盟", "省")

ORG_FORMS: tuple[str, ...] = tuple(sorted(D.ORG_FORMS, key=len, reverse=True))
_STRONG_BRANCH = ("分公司", "分厂", "分店", "分行", "支行", "办事处", "代表处", "营业部", "分理处", "分部",
                  "分院", "分所", "分中心", "分社", "分站", "分场")
_WEAK_BRANCH = tuple(m for m in D.BRANCH_MARKERS if m not in _STRONG_BRANCH)
_BRANCH_MARKERS = tuple(D.BRANCH_MARKERS)
_BRANCH_RE = re.compile("(" + "|".join(sorted(D.BRANCH_MARKERS, key=len, reverse=True)) + r")$")
# where a parent's full name ends inside a branch name: an organisation form, or a bank
_PARENT_ENDS = tuple(sorted(set(D.ORG_FORMS) | {"银行", "集团"}, key=len, reverse=True))

INDUSTRY_WORDS = frozenset(D.INDUSTRY_WORDS) | {"集团"}
_INDUSTRY_MAX = max(map(len, INDUSTRY_WORDS))
_MAX_REGION = 7


# --- parse ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ParsedName:
    normalized: str           # normalize_name(name)
    region: str               # region as written, prefix and/or bracketed: "深圳市", "苏州", "中国"
    trade_name: str           # 字号
    industry: str             # 行业或经营特点, e.g. "医疗设备", "医药科技"
    org_form: str             # 组织形式, e.g. "股份有限公司", "(集团)股份有限公司", "厂"
    branch: str               # branch part, e.g. "苏州分公司" ("" when not a branch)
    parent_name: str          # normalised name without the branch part (== normalized if none)
    is_branch: bool
    regions: tuple[str, ...] = ()    # canonical region names recognised, outermost first
    provinces: tuple[str, ...] = ()  # provinces implied by the regions (深圳 → 广东)
    region_in_brackets: bool = False

    @property
    def core(self) -> str:
        """Trade name + industry: what is left when region, form and branch are dropped."""
        return self.trade_name + self.industry


# place name → "p" (province), "c" (prefecture) or "d" (district / county-level city)
_PLACE_KIND: dict[str, str] = {}
for _d in DISTRICT_NAMES:
    _PLACE_KIND[_d] = "d"
for _c in CITY_NAMES:
    _PLACE_KIND[_c] = "c"
for _p in PROVINCE_NAMES:
    _PLACE_KIND[_p] = "p"
_PLACE_FIRST = frozenset(w[0] for w in _PLACE_KIND) | frozenset(n[0] for n in D.NATIONAL_PREFIXES)
_PLACE_LONGEST = max(map(len, _PLACE_KIND))


def _match_place(s: str, i: int) -> tuple[str, int] | None:
    """A region token starting at s[i]: (canonical name, end index)."""
    if i >= len(s) or s[i] not in _PLACE_FIRST:
        return None
    for nat in D.NATIONAL_PREFIXES:
        if s.startswith(nat, i):
            return "中国", i + len(nat)
    kinds = _PLACE_KIND
    for length in range(min(_PLACE_LONGEST, len(s) - i), 1, -1):
        word = s[i:i + length]
        kind = kinds.get(word)
        if kind is None:
            continue
        end = i + length
        if kind == "p":
            for suf in _PROVINCE_SUFFIXES:
                if s.startswith(suf, end):
                    return word, end + len(suf)
            return word, end
        suffix = ""
        for suf in (_CITY_SUFFIXES if kind == "c" else _DISTRICT_SUFFIXES):
            if s.startswith(suf, end) and (suf not in _PREFECTURE_SUFFIXES
                                           or word in _PREFECTURE_SUFFIXES[suf]):
                suffix = suf
                break
        if word in D.AMBIGUOUS_PLACES and not suffix:
            continue
        return word, end + len(suffix)
    return None


def _bracket_region(content: str) -> str | None:
    if content in ("中国", "中华"):
        return "中国"
    hit = _match_place(content, 0)
    if hit and hit[1] == len(content):
        return hit[0]
    return None


def _split_branch(s: str) -> tuple[str, str]:
    """(parent, branch) of a normalised name; branch "" when the name is not a branch. A
    branch part written in brackets (…股份有限公司（郑州分公司）, as ERPs and reps write it) is
    the same branch."""
    if s.endswith(")"):
        at = s.rfind("(")
        inner = s[at + 1:-1]
        if at >= 2 and inner.endswith(_BRANCH_MARKERS):
            parent, branch = _split_branch(s[:at] + inner)
            return (s[:at], branch) if branch and parent == s[:at] else (s, "")
        return s, ""
    if not s.endswith(_BRANCH_MARKERS):
        return s, ""
    m = _BRANCH_RE.search(s)
    if not m or m.start() == 0:
        return s, ""
    marker_start = m.start()
    best_end = -1
    for form in _PARENT_ENDS:
        pos = s.rfind(form, 0, marker_start)
        if pos > 0 and pos + len(form) > best_end and pos + len(form) <= marker_start:
            best_end = pos + len(form)
    if best_end > 0:
        parent, branch = s[:best_end], s[best_end:]
        if len(flat(parent)) >= 2:
            return parent, branch
    if m.group(1) in _WEAK_BRANCH:
        return s, ""
    # no organisation form in front: the branch part is the region run before the marker
    start = marker_start
    head = s[:marker_start]
    # walk back over region names written just before the marker (北京朝阳分公司)
    moved = True
    while moved:
        moved = False
        for length in range(min(_MAX_REGION + 3, start), 1, -1):
            hit = _match_place(head[start - length:start], 0)
            if hit and hit[1] == length and start - length >= 2:
                start -= length
                moved = True
                break
    ordinal = re.search(r"(第[一二三四五六七八九十\d]+|[一二三四五六七八九十\d]+)$", head[:start])
    if ordinal and ordinal.start() >= 2:
        start = ordinal.start()
    if start < 2:
        return s, ""
    return s[:start], s[start:]


def _industry_suffix(rest: str, keep: int) -> list[str]:
    """The longest tail of rest that is a sequence of industry words (fewest words), leaving
    at least `keep` characters in front: 天赐高新材料 → [高新, 材料] (not 新材料, which would
    strand 高 in the trade name)."""
    n = len(rest)
    best: list[list[str] | None] = [None] * (n + 1)
    best[n] = []
    for i in range(n - 1, keep - 1, -1):
        for length in range(min(_INDUSTRY_MAX, n - i), 1, -1):
            tail = best[i + length]
            if tail is not None and rest[i:i + length] in INDUSTRY_WORDS:
                cand = [rest[i:i + length]] + tail
                if best[i] is None or len(cand) < len(best[i]):
                    best[i] = cand
    for i in range(keep, n + 1):
        # a one-character trade name is left only by a region (秦皇岛|港), not by industry
        # words (成都|华微|电子: not 华 + 微电子)
        if best[i] is not None and i != 1:
            return best[i]
    return []


_ORG_FORM_SET = frozenset(ORG_FORMS)
_ORG_FORM_LENGTHS = sorted({len(f) for f in ORG_FORMS}, reverse=True)
_ORG_FORM_TAILS = tuple({f[-1] for f in ORG_FORMS})


def _split_org_form(s: str) -> tuple[str, str]:
    if not s.endswith(_ORG_FORM_TAILS):
        return s, ""
    n = len(s)
    for length in _ORG_FORM_LENGTHS:
        if length < n and s[n - length:] in _ORG_FORM_SET:
            form = s[n - length:]
            if len(flat(s)) - len(flat(form)) >= 2:
                return s[:n - length], form
    return s, ""


def _split_words(text: str, words: frozenset[str], longest: int) -> list[str]:
    """Greedy longest-first split of text into known words (unknown characters stay glued)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        for length in range(min(longest, len(text) - i), 1, -1):
            if text[i:i + length] in words:
                out.append(text[i:i + length])
                i += length
                break
        else:
            if out and out[-1] not in words:
                out[-1] += text[i]
            else:
                out.append(text[i])
            i += 1
    return out


_ORG_WORDS = frozenset({"集团", "股份", "控股", "有限", "责任", "公司", "有限公司", "合伙", "企业",
                        "有限合伙", "普通合伙", "特殊普通合伙", "合作", "总公司", "合伙企业"})


@cache
def _org_segments(org_form: str) -> tuple[tuple[str, str], ...]:
    return tuple(("O", w) for w in _split_words(flat(org_form), _ORG_WORDS, 6))


@dataclass(frozen=True)
class NameAnalysis:
    parsed: ParsedName
    segments: tuple[tuple[str, str], ...]  # (label, text) in order; texts join to flat(parent)


@lru_cache(maxsize=2048)
def analyse_name(norm: str) -> NameAnalysis:
    """Parse of a normalised name plus its labelled segments (what the matcher aligns to)."""
    parent, branch = _split_branch(norm)
    s, org_form = _split_org_form(parent)
    regions: list[str] = []
    region_text = ""
    in_brackets = False
    bracket_at = -1           # where a bracketed region sat in s once brackets are gone
    # bracketed parts: a region (创耀(苏州)通信科技), or a generic word ((集团), (控股))
    if "(" in s:
        pieces: list[str] = []
        for m in re.finditer(r"\(([^()]*)\)|[^()]+|[()]", s):
            content = m.group(1)
            if content is None:
                pieces.append(m.group(0).strip("()"))
                continue
            place = _bracket_region(content)
            if place and not region_text:
                region_text = content
                regions.append(place)
                in_brackets = True
                bracket_at = len("".join(pieces))
            else:
                pieces.append(content)
        s = "".join(pieces)
    # region prefix(es): 中国 / province / city / district, as long as ≥ 2 characters remain
    prefix_regions: list[str] = []
    prefix_tokens: list[str] = []
    i = 0
    while i < len(s):
        hit = _match_place(s, i)
        if not hit or len(s) - hit[1] < 1:  # 秦皇岛港: region 秦皇岛 + trade 港
            break
        prefix_regions.append(hit[0])
        prefix_tokens.append(s[i:hit[1]])
        i = hit[1]
    prefix = s[:i]
    if prefix_regions:
        region_text = prefix + (f"({region_text})" if region_text else "")
        regions = prefix_regions + regions
    rest = s[i:]
    # industry words at the end, while the trade name keeps ≥ 2 characters
    # (a name made of region + industry only, 浙江医药, keeps an empty trade name)
    keep = 0 if regions else 2
    industry_words = _industry_suffix(rest, keep)
    trade = rest[:len(rest) - sum(map(len, industry_words))]
    # a province written inside the trade part (华电辽宁能源 = 华电 + 辽宁 + 能源) is a region too
    trade_tail = ""
    mid_region = ""
    for k in range(2, len(trade) - 1):
        for length in (3, 2):
            word = trade[k:k + length]
            if len(word) == length and word in PROVINCE_OFFICIAL:
                mid_region, trade_tail = word, trade[k + length:]
                trade = trade[:k]
                break
        if mid_region:
            break
    if mid_region:
        regions.append(mid_region)
        if not region_text:
            region_text = mid_region
    provinces: list[str] = []
    for r in regions:
        p = r if r in PROVINCE_OFFICIAL else PLACE_PROVINCE.get(r)
        if p and p not in provinces:
            provinces.append(p)
    # segments in written order
    segs: list[tuple[str, str]] = []
    segs.extend(("R", tok) for tok in prefix_tokens)
    if trade:
        segs.append(("T", trade))
    if mid_region:
        segs.append(("R", mid_region))
        if trade_tail:
            segs.append(("T", trade_tail))
    segs.extend(("I", w) for w in industry_words)
    if bracket_at >= 0:
        inner = flat(region_text if not prefix else region_text[len(prefix) + 1:-1])
        at = bracket_at  # index within s (prefix included), as are the segment positions
        pos, out = 0, []
        placed = False
        for label, text in segs:
            if not placed and pos <= at < pos + len(text) and at > pos:
                out.append((label, text[:at - pos]))
                out.append(("R", inner))
                out.append((label, text[at - pos:]))
                placed = True
            elif not placed and at == pos:
                out.append(("R", inner))
                out.append((label, text))
                placed = True
            else:
                out.append((label, text))
            pos += len(text)
        if not placed:
            out.append(("R", inner))
        segs = out
    segs.extend(_org_segments(org_form))
    parsed = ParsedName(
        normalized=norm, region=region_text, trade_name=trade, industry="".join(industry_words),
        org_form=org_form, branch=branch, parent_name=parent, is_branch=bool(branch),
        regions=_shared(tuple(regions)), provinces=_shared(tuple(provinces)),
        region_in_brackets=in_brackets)
    return NameAnalysis(parsed, tuple(_shared((label, text)) if label != "T" else (label, text)
                                      for label, text in segs if text))


# Region, industry and organisation-form pieces come from a bounded vocabulary: one shared
# tuple each instead of new ones per parse (fewer young objects for the cyclic collector).
_SHARED: dict[tuple, tuple] = {}


def _shared(value: tuple) -> tuple:
    found = _SHARED.get(value)
    if found is None:
        if len(_SHARED) > 200_000:  # bound it anyway (odd inputs)
            return value
        found = _SHARED[value] = value
    return found


def may_be_branch(norm: str) -> bool:
    """A cheap test before a parse: whether a normalised name ends like a branch, its branch
    part bracketed or not."""
    return norm.endswith(_BRANCH_MARKERS) or (norm.endswith(")")
                                               and norm[:-1].endswith(_BRANCH_MARKERS))


def parse_company_name(name: str) -> ParsedName:
    return analyse_name(normalize_name(name)).parsed


def name_segments(norm: str) -> tuple[tuple[str, str], ...]:
    """Labelled pieces of a normalised name's parent part, in written order, brackets dropped:
    R region, T trade name, I industry word, O organisation-form word. Their texts join to
    flat(parent_name)."""
    return analyse_name(norm).segments


def strip_org_form(norm: str) -> str:
    """The normalised name without its organisation form (锦州港股份有限公司 → 锦州港)."""
    for form in ORG_FORMS:
        if norm.endswith(form) and len(norm) > len(form):
            return norm[:-len(form)]
    return norm


def region_short_forms(region: str) -> frozenset[str]:
    """One-character forms that stand for a region in short names (广东 → 粤)."""
    return REGION_SHORT_FORMS.get(region, frozenset())


def industry_abbreviations(word: str) -> tuple[str, ...]:
    return D.INDUSTRY_ABBREVIATIONS.get(word, ())


def parse_normalized(norm: str) -> ParsedName:
    """parse_company_name for a name that is already normalised (skips normalisation)."""
    return analyse_name(norm).parsed


def core_of(norm: str) -> str:
    """Flat parent name without organisation form: region + trade name + industry."""
    return "".join(text for label, text in analyse_name(norm).segments if label != "O")


def identity_of(norm: str) -> str:
    """Region + trade name (字号) + branch part of a normalised name: what tells one company
    from another, without the industry words and organisation form that many names share
    (浙江仁和医疗器械有限公司 → 浙江仁和; 某某医疗器械有限公司 → 某某). A name without a trade
    name is kept whole (flat): its region alone names no company."""
    analysis = analyse_name(norm)
    if not analysis.parsed.trade_name:
        return flat(norm)
    return "".join(text for label, text in analysis.segments if label in ("R", "T")) \
        + flat(analysis.parsed.branch)


# --- one key however the region is written ------------------------------------------------

#: the suffixes a province's own name takes (江苏省, 北京市, 广西壮族自治区 or 广西自治区)
_OWN_SUFFIXES: dict[str, tuple[str, ...]] = {
    p: tuple({official[len(p):]} | ({"自治区"} if official.endswith("自治区") else set()))
    for p, official in PROVINCE_OFFICIAL.items()}
# a suffix followed by these is maybe the first character of a word (市场, 省心, 市政 …)
_SUFFIX_WORDS = tuple(set(D.SUFFIX_WORDS) | INDUSTRY_WORDS)
_REGION_MARK = "|"  # never in a normalised name: a region-folded key never equals a plain one


def _region_token(s: str, i: int) -> tuple[str, int] | None:
    """A province, city or district written at s[i]: (how the key writes it, where it ends).
    The key drops the administrative suffix (江苏省 → 江苏, 苏州市 → 苏州, 恩施州 → 恩施) — but
    keeps it on a place that is one only with it (南山区: 南山 alone is a trade name), and gives
    None when the suffix may be the start of a word (苏州市场营销: 苏州 + 市场营销, or 苏州市 +
    场营销?). A province's suffix is its own (江苏市场: 江苏 + 市场)."""
    hit = _match_place(s, i)
    if hit is None or hit[0] == "中国":
        return None
    place, end = hit
    word_end = i + len(place)
    if s[i:word_end] != place:
        return None
    suffix = s[word_end:end]
    if not suffix:
        return place, end
    if place in _OWN_SUFFIXES and suffix not in _OWN_SUFFIXES[place]:
        return place, word_end
    if s.startswith(_SUFFIX_WORDS, word_end):
        return None
    if place in D.AMBIGUOUS_PLACES:
        return s[i:end], end
    return place, end


def _moved_bracket_region(norm: str) -> tuple[str, str] | None:
    """(region, the name without it) when the name's region is written in brackets after its
    trade name or business words (康达(江苏)医疗, 康达医疗(江苏省)): the same name as 江苏康达
    医疗 — the registry's name comparison counts names whose parts differ only in their order
    as the same name. Not a bracket after an organisation form (…有限公司(江苏) is a note on the
    name, maybe a branch), not (中国), not two bracketed regions."""
    parent, _ = _split_branch(norm)
    if not norm.startswith(parent):
        return None
    found = []
    for m in re.finditer(r"\(([^()]*)\)", parent):
        content = m.group(1)
        token = _region_token(content, 0)
        if token and token[1] == len(content):
            found.append((m.start(), m.end(), token[0]))
    if len(found) != 1:
        return None
    start, end, region = found[0]
    if parent[:start].endswith(ORG_FORMS):
        return None
    rest = norm[:start] + norm[end:]
    return (region, rest) if rest else None


def region_folded_key(norm: str) -> str:
    """The key of a normalised name that is the same however its region is written: a leading
    province / city / district without its administrative suffix (江苏省康达医疗 = 江苏康达医疗,
    苏州市康达 = 苏州康达), a region written in brackets moved in front (康达医疗(江苏) =
    江苏康达医疗). Only what is provably the same name folds: 苏州市场营销 keeps its 市
    (市场), 南山区 its 区, a name with no region is its normalised self. Regions and the rest
    are joined by "|", which no normalised name contains."""
    regions: list[str] = []
    i = 0
    while True:
        token = _region_token(norm, i)
        if token is None or token[1] >= len(norm):
            break
        regions.append(token[0])
        i = token[1]
    rest = norm[i:]
    if not regions and _match_place(norm, 0) is None:
        moved = _moved_bracket_region(norm)
        if moved:
            regions, rest = [moved[0]], moved[1]
    return "".join(regions) + _REGION_MARK + rest if regions else norm

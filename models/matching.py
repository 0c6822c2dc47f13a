"""Customer name matcher: which customer does a typed name mean?

Pure Python over an in-memory index (no database): the integration builds a NameIndex from the
customer file (legal names and aliases) at process start and keeps it current with add/remove.

How a query is scored against one stored name (an "entry"):

* exact: the normalised query equals the normalised stored name (legal name or alias): 100.
* short-name explanation (queries of up to 8 characters, what reps type): Chinese short names
  take characters *in order* from the legal name — the trade name (字号) first, then an
  industry word or a generic tail (股份/集团/控股), the region dropped or written as its
  one-character form (粤 = 广东, 沪 = 上海, 深 = 深圳). The query is aligned to the name's
  labelled characters (region / trade name / industry / organisation form); the best alignment
  earns points for each character by what it took (trade name most), for contiguous runs and
  for starting at word boundaries, and loses points for jumping into the middle of words,
  for skipping the trade name, and for query characters the name does not contain.
* full-name comparison (queries with an organisation form or 7+ characters): rapidfuzz ratio
  over the flat names and cores plus structure: the same trade name, region and industry is the
  same company written differently (有限责任公司 vs 有限公司, 有限 dropped); a different region
  or trade name is a different company. A trade name that only starts like the other's (新天 /
  新天地, 中船 / 中船汉光) or an industry sharing a word (海运科技 / 海运控股) is suggested: siblings
  and look-alikes look like that. A name without a trade name (上海电气集团, 长沙银行) links on
  an equal region and industry and the same form but for a slip. The national prefix 中国 says
  nothing about the region when both names write a place (中国石化山东… ≠ 中国石化上海…).
* branches (分支机构) are customers of their own: a branch query prefers the branch's entry,
  never auto-links to the parent (nor a parent query to a branch); with the branch not on file
  the parent is suggested with "分支机构未建档，总公司为…". A branch links to a stored branch
  only when the branch parts agree and the head office typed with a form is the stored one
  (exactly, without its form, or with a slip in the form); a head office typed as a short name
  (康达医疗苏州分公司) links by the short-name rules.

Decision (see the constants below): ``auto`` only when the best customer's evidence is of a kind
that may link alone, scores at least AUTO_MIN_SCORE and leads the next customer by
AUTO_MIN_MARGIN; ``suggest`` when something scores at least SUGGEST_MIN_SCORE; else ``unknown``.
Evidence that never links alone, whatever its score (see _weak_evidence): a non-exact query
of one or two characters; one distinguishing character with generic words (洋股份 ↔ 洋河股份:
a 股份 / 集团 / 控股 at the end of a short name is a generic word, not trade name); a trade
name plus only generic words (方盛股份, 兴业科技) unless that is all the name says; a name
written as words without a form (trade + industry + 股份/集团) that leaves out trade, industry
or region words of the stored name (神州数码集团 ↔ 神州数码信息服务集团, 新华传媒股份 ↔
安徽新华传媒); region + trade name when the name goes on with a specific industry (辽宁成大 ↔
辽宁成大生物: a group and its subsidiary); only the first two characters of a trade name of
four or more (航天电子 ↔ 航天南湖电子) or two of three; query characters the name lacks; a
dropped region short form; a full name with another region, legal form or trade name, a trade
name that only starts like the other, or an industry that only shares a word; anything between
a branch and its parent. A full name whose part before its form (泰禾股份公司 → 泰禾股份) is
exactly another file's name is suggested with that file next.

Candidate generation never scans the index. Each name posts keys: its core's character
bigrams, pairs of word initials (首都开发 → 首开), "region short form + word initial" (粤高,
沪农), the trade name's first two characters, and single trade-name characters; 1–2 character
keystrokes use name / trade-name prefix lists. A query looks its keys up rarest first; the pool
of names they post is pre-scored in C by rapidfuzz (LCS for short names, ratio for full names)
and only the best 8–12 are scored in detail.

Not thread-safe: guard add/remove against concurrent search (or build a new index and swap).
"""
from __future__ import annotations

import gc
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

from rapidfuzz import fuzz, process
from rapidfuzz.distance import LCSseq

from models import name_data as D
from models.names import (
    PROVINCE_SHORT,
    REGION_SHORT_FORMS,
    SHORT_FORM_REGIONS,
    NameAnalysis,
    ParsedName,
    analyse_name,
    flat,
    normalize_name,
)

# --- decision thresholds (scores are 0–100) -------------------------------------------
#: exact normalised match of a stored legal name or alias
EXACT_SCORE = 100.0
#: the query is the stored name without its organisation form (锦州港 ↔ 锦州港股份有限公司)
CORE_EXACT_SCORE = 97.0
#: minimum score to link without a person. A short name scoring this took (nearly) every
#: character from the trade name / industry / region in order, starting at a word boundary.
#: On the tuning half of the listed-company bench 94 % of real short names score this for
#: their own company, while only 1.4 % of the short names of companies *not* on file reach it
#: for some other company (and the margin and weak-evidence rules stop those).
AUTO_MIN_SCORE = 75.0
#: ... and lead over the next customer by this much: two customers explaining the query about
#: equally well (三元股份 ↔ 北京三元食品 / 山东三元生物) must go to a person.
AUTO_MIN_MARGIN = 12.0
#: below this nothing is plausible: "unknown" (a suspected new customer)
SUGGEST_MIN_SCORE = 25.0
#: a parent suggested for a branch query (or a branch for a parent query) never scores above
#: this: the evidence says "related", not "same customer"
RELATED_CAP = 70.0
#: best score of a short name whose characters the name holds in another order (suggest only)
REORDER_MAX_SCORE = 48.0
#: a full name that cannot be parsed into parts (a slip in the organisation form) links alone
#: only when this close to the stored name (one or two characters in a dozen)
FULL_NAME_TYPO_RATIO = 90.0
#: non-exact queries shorter than this never auto-link (东电 fits too many names)
AUTO_MIN_QUERY_LEN = 3

# --- candidate generation limits -------------------------------------------------------
#: keys with more postings than this never feed the pool (too common to say anything)
KEY_FEED_CAP = 4000
#: a key feeds the pool only while the pool stays within this many names
POOL_FEED_LIMIT = 1500
POOL_FEED_LIMIT_FULL = 800
#: no further key feeds a pool this big (rarest keys first: the rest add little)
POOL_ENOUGH = 400
#: single characters feed the pool only when pairs found too little, and only rare ones
UNIGRAM_FEED_CAP = 1500
#: below this many names from pairs, rare single characters add theirs
TOP_K = 48
#: names scored in detail per query (after a rapidfuzz pre-score): short names, full names,
#: and queries with an exact hit
SCORE_K = 12
SCORE_K_FULL = 12
SCORE_K_EXACT = 8
#: prepared stored names kept between queries
TARGET_CACHE = 2048
#: entries taken for a 1–2 character keystroke prefix
PREFIX_SCAN = 24
#: short-name alignment is tried for queries up to this length
ALIGN_MAX_LEN = 8

KIND_LABELS = {"legal": "工商全称", "short": "简称", "former": "曾用名", "branch": "分支机构名称",
               "typed": "录入名称", "merged": "合并客户名称"}

# alignment points per character by what it took
_VAL = {"T": 10, "I": 7, "R": 5, "G": 6, "O": 1}
_VAL_NO_TRADE = {**_VAL, "R": 10}
_VAL_SHORT_REGION = 8      # 粤 for 广东 in the name
_VAL_DROPPED_REGION = 1    # 苏 for a name with no region written (苏常柴 ↔ 常柴股份)
_VAL_GENERIC_TAIL = 2      # 控股 added by the short name, absent from the name
_PTS_SKIP = -6             # a query character the name does not contain
_PTS_START_WORD = 2
_PTS_START_MID = -6
_PTS_CONTIGUOUS = 4
_PTS_JUMP_MID = -4
_PTS_NEXT_INITIAL = 2  # the initial of the very next word (中国电力建设 → 中国电建)
_PTS_NO_HEAD = -14         # trade name not used at all
_PTS_NO_HEAD_REGION = -6   # ... but region + industry taken instead (苏能股份 ↔ 江苏徐矿能源)
_PTS_HEAD_LATE = -6        # trade name used but not its first character
_PTS_HEAD_LATE_SOFT = -3   # ... starting at its second two-character word (中国国际海运 → 海运)
_PTS_HEAD_FULL = 3         # every trade-name character used
_PTS_HEAD_GAP = -4         # per trade-name character skipped between used ones
_PTS_HEAD_HALF = -3        # one character of a two-character trade name (广汇汽车 → 广汽)
_PTS_TRUNCATED = -3        # the query stops inside a word (康达医 ↔ 康达医疗)
_PTS_PER_CHAR = 14         # normaliser: a trade-name character in a contiguous run
_GENERIC_WORDS = frozenset({"集团", "股份", "控股"})
_GENERIC_TAILS = tuple(sorted(D.GENERIC_TAILS, key=len, reverse=True))
# leading one-character forms that may stand for a region the legal name does not write
_DROPPABLE_LEADING = frozenset(PROVINCE_SHORT) | frozenset("深穗甬杭厦蓉汉锡")


@dataclass(frozen=True)
class NameEntry:
    entry_id: str      # unique key of this name row, e.g. "c:123" (legal name), "a:456" (alias)
    customer_id: int
    name: str          # as stored
    kind: str          # legal | short | former | branch | typed | merged


@dataclass(frozen=True)
class Candidate:
    customer_id: int
    legal_name: str
    matched_alias: str
    matched_kind: str
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class MatchResult:
    query: str
    normalized: str
    decision: str          # "auto" | "suggest" | "unknown"
    candidates: tuple[Candidate, ...]


# --- per-name analysis ----------------------------------------------------------------

@lru_cache(maxsize=8192)
def _segment_info(label: str, text: str) -> tuple[str, tuple[bool, ...], tuple[bool, ...], bool,
                                                 tuple[tuple[int, int], ...]]:
    """(label per character, word starts, word ends, generic industry word?, abbreviation
    links as offsets) of one labelled piece of a name."""
    lab = ("G" if text in _GENERIC_WORDS else "O") if label == "O" else label
    n = len(text)
    # long trade names and compound industry words read as two-character words
    # (中岩|大地, 农村|商业|银行, 高速|公路)
    split = label in "TI"
    ws = [k == 0 or (split and k % 2 == 0) for k in range(n)]
    we = tuple(k == n - 1 or (split and k % 2 == 1) for k in range(n))
    links: list[tuple[int, int]] = []
    if label == "I":
        # usual abbreviations of industry words (农村商业银行 → 农商行) count as contiguous runs
        for word, abbrevs in D.INDUSTRY_ABBREVIATIONS.items():
            at = text.find(word)
            if at < 0:
                continue
            for abbr in abbrevs:
                path, k = [], 0
                for ch in abbr:
                    k = word.find(ch, k)
                    if k < 0:
                        break
                    path.append(at + k)
                    k += 1
                else:
                    for a, b in pairwise(path):
                        links.append((a, b))
                        ws[b] = True
    return (lab * n, tuple(ws), we, label == "I" and text in D.GENERIC_INDUSTRY_WORDS,
            tuple(links))


class _Target:
    """A stored name (or a query) prepared for scoring."""
    __slots__ = (
        "after_region",
        "branch",
        "chars",
        "core",
        "ext_trade",
        "full",
        "generic_i",
        "has_region",
        "head",
        "labels",
        "links",
        "next_ws",
        "norm",
        "parsed",
        "pflat",
        "regions",
        "segments",
        "shorts",
        "val",
        "we",
        "ws",
    )

    def __init__(self, norm: str):
        pr = analyse_name(norm)
        p = pr.parsed
        segs = _generic_tail_apart(pr)
        self.norm = norm
        self.parsed = p
        self.full = flat(norm)
        self.branch = flat(p.branch) if p.branch else ""
        self.segments = segs
        labels: list[str] = []
        ws: list[bool] = []
        we: list[bool] = []
        generic_i: list[bool] = []
        links: set[tuple[int, int]] = set()
        head: range = range(0)
        offset = 0
        for label, text in segs:
            lab, w_s, w_e, generic, lk = _segment_info(label, text)
            n = len(text)
            if label == "T" and not head:
                head = range(offset, offset + n)
            labels.append(lab)
            ws.extend(w_s)
            we.extend(w_e)
            generic_i.extend([generic] * n)
            for a, b in lk:
                links.add((offset + a, offset + b))
            offset += n
        self.chars = self.pflat = "".join(text for _, text in segs)
        # the core as parsed (a generic tail taken apart above stays in it: 洋河股份 is not
        # written 洋河 plus a form, and candidate keys and core-exact matches read it so)
        self.core = "".join(text for label, text in pr.segments if label != "O")
        self.labels = labels = "".join(labels)
        # bytes and ranges are not containers the cyclic collector tracks: cached targets cost
        # it nothing (per-position flags as 0/1 bytes)
        self.ws = bytes(ws)
        self.we = bytes(we)
        self.generic_i = bytes(generic_i)
        self.links = frozenset(links) if links else _NO_LINKS
        self.head = head
        regions = p.regions + p.provinces
        self.regions = frozenset(regions)
        self.has_region = bool(p.regions)
        self.shorts = _short_forms(regions)
        # without a trade name (浙江医药, 东莞发展控股) the region carries the identity
        self.val = _VAL if head else _VAL_NO_TRADE
        # trade name span, a region written inside it included (华电|辽宁|…): [lo, hi)
        if head:
            hi = head[-1] + 1
            if not p.region_in_brackets:  # a bracketed region is not part of the trade
                for i in range(hi, len(labels)):
                    if labels[i] == "R":
                        hi = i + 1
            self.ext_trade = (head[0], hi)
        else:
            self.ext_trade = (0, 0)
        # the start of the word after position i (电力|建设: 电 → 建 takes the next initial)
        nxt, next_ws = len(ws), [0] * len(ws)
        for i in range(len(ws) - 1, -1, -1):
            next_ws[i] = nxt
            if ws[i]:
                nxt = i
        self.next_ws = bytes(next_ws) if len(ws) < 256 else tuple(next_ws)
        # the first position after the leading region (沪|农商行): a region short form runs on
        self.after_region = (len(labels) - len(labels.lstrip("R"))) if labels[:1] == "R" else -1


_NO_LINKS: frozenset[tuple[int, int]] = frozenset()


def _generic_tail_apart(pr: NameAnalysis) -> tuple[tuple[str, str], ...]:
    """The labelled segments of a name, a trailing 股份 / 控股 / 集团 that the parse left in the
    trade name taken apart as a generic word. A short name has no organisation form, so
    洋河股份 parses as the trade name 洋河股份 and 丽江股份 as 丽江 + the trade name 股份; read so,
    a query that takes one character and the generic word (洋股份, 云股份 with 云 = 云南) looks
    like a whole trade name, and the "trade name + generic word only" rule does not see it."""
    segs = pr.segments
    if pr.parsed.org_form or not segs or segs[-1][0] != "T":
        return segs
    text = segs[-1][1]
    for word in _GENERIC_WORDS:
        if text == word and len(segs) > 1:
            return segs[:-1] + (("O", word),)
        if text.endswith(word) and len(text) > len(word):
            return segs[:-1] + (("T", text[:-len(word)]), ("O", word))
    return segs


@lru_cache(maxsize=4096)
def _short_forms(regions: tuple[str, ...]) -> frozenset[str]:
    out: set[str] = set()
    for r in regions:
        out |= REGION_SHORT_FORMS.get(r, frozenset())
    return frozenset(out)


def _region_word(t: _Target, ch: str) -> str:
    for r in SHORT_FORM_REGIONS.get(ch, ()):
        if r in t.regions:
            return r
    return ""


# --- short-name alignment -------------------------------------------------------------

@dataclass
class _Align:
    points: float
    path: tuple[int, ...]   # per query char: position, or -1 short region form, -2 dropped
    #                         region form, -3 skipped, -4 generic tail not in the name
    skips: int
    generic: int


def _generic_tail_start(q: str) -> int:
    for word in _GENERIC_TAILS:
        if q.endswith(word) and len(q) - len(word) >= 2:
            return len(q) - len(word)
    return -1


def _positions(chars: str, ch: str) -> list[int]:
    out = []
    i = chars.find(ch)
    while i >= 0:
        out.append(i)
        i = chars.find(ch, i + 1)
    return out


class _Search:
    """State of one alignment search. Module-level functions walk it: nested recursive
    closures would form reference cycles, garbage that only the cyclic collector frees (and
    its full passes are the latency tail of a serving process)."""
    __slots__ = ("best", "best_pts", "head_set", "m", "max_skips", "occ", "t", "tail")

    def __init__(self, m: int, t: _Target, occ: list[list[int]], tail: int, max_skips: int):
        self.m, self.t, self.occ, self.tail, self.max_skips = m, t, occ, tail, max_skips
        self.head_set = t.head  # a range: O(1) membership
        self.best: _Align | None = None
        self.best_pts = -1e9


def _finish(st: _Search, pts: float, path: list[int], skips: int, generic: int) -> None:
    t = st.t
    head, labels, ws = t.head, t.labels, t.ws
    used = [p for p in path if p >= 0]
    if head:
        used_head = [p for p in used if p in st.head_set]
        if not used_head:
            region_used = path[0] == -1 or any(labels[p] == "R" for p in used)
            pts += _PTS_NO_HEAD_REGION if region_used else _PTS_NO_HEAD
        else:
            first_used = used_head[0]
            if first_used != head[0]:
                pts += _PTS_HEAD_LATE_SOFT if ws[first_used] else _PTS_HEAD_LATE
            if len(used_head) == len(head):
                pts += _PTS_HEAD_FULL
            elif len(head) == 2:
                pts += _PTS_HEAD_HALF
            else:
                gap = sum(1 for p in head if used_head[0] < p < used_head[-1]
                          and p not in used_head)
                pts += _PTS_HEAD_GAP * gap
    if used:
        last = used[-1]
        if path[-1] == last and not t.we[last] and last + 1 < len(labels) \
                and labels[last + 1] == labels[last] and labels[last] in "TI":
            pts += _PTS_TRUNCATED
    if pts > st.best_pts:
        st.best = _Align(pts, tuple(path), skips, generic)
        st.best_pts = pts


def _walk(st: _Search, i: int, prev: int, contiguous_ok: bool, pts: float, path: list[int],
          skips: int, generic: int) -> None:
    m = st.m
    if i == m:
        _finish(st, pts, path, skips, generic)
        return
    # branch and bound: even perfect characters from here on cannot beat the best
    if pts + _PTS_PER_CHAR * (m - i) + _PTS_HEAD_FULL <= st.best_pts:
        return
    t = st.t
    if i == st.tail and generic == 0:
        # the rest is a generic tail (股份/集团/控股 …) the name may not contain
        _walk(st, m, prev, False, pts + _VAL_GENERIC_TAIL * (m - i), path + [-4] * (m - i),
              skips, m - i)
    labels, ws, val = t.labels, t.ws, t.val
    for p in st.occ[i]:
        if p <= prev:
            continue
        v = val[labels[p]]
        if prev < 0:  # first character taken from the name
            if path and path[-1] == -1 and p == t.after_region:
                v += _PTS_CONTIGUOUS  # 粤|电力: the short form runs on into the name
            else:
                v += _PTS_START_WORD if ws[p] else _PTS_START_MID
        elif contiguous_ok and (p == prev + 1 or (prev, p) in t.links):
            v += _PTS_CONTIGUOUS
        elif not ws[p]:
            v += _PTS_JUMP_MID
        elif p == t.next_ws[prev]:
            v += _PTS_NEXT_INITIAL
        path.append(p)
        _walk(st, i + 1, p, True, pts + v, path, skips, generic)
        path.pop()
    if skips < st.max_skips and (i > 0 or m > 2):
        path.append(-3)
        _walk(st, i + 1, prev, False, pts + _PTS_SKIP, path, skips + 1, generic)
        path.pop()


def _align(q: str, t: _Target, max_skips: int) -> _Align | None:
    """Best alignment of the short query q to the name t (branch and bound over the few
    positions each query character can take), or None when it needs more than max_skips
    characters the name lacks."""
    m = len(q)
    chars = t.chars
    first = q[0]
    short_start = first in t.shorts
    dropped_start = not short_start and not t.has_region and first in _DROPPABLE_LEADING and m >= 3
    # how many query characters can never be placed in order: rapidfuzz LCS in C
    lcs = LCSseq.similarity(q, chars)
    if short_start or dropped_start:
        lcs = max(lcs, 1 + LCSseq.similarity(q[1:], chars))
    tail = _generic_tail_start(q)
    need = m - lcs
    if tail >= 0:
        need = min(need, max(0, tail - LCSseq.similarity(q[:tail], chars)))
    if need > max_skips:
        return None
    st = _Search(m, t, [_positions(chars, ch) for ch in q], tail, need)
    _walk(st, 0, -1, False, 0.0, [], 0, 0)
    if short_start:
        _walk(st, 1, -1, False, _VAL_SHORT_REGION + _PTS_START_WORD, [-1], 0, 0)
    elif dropped_start:
        _walk(st, 1, -1, False, _VAL_DROPPED_REGION, [-2], 0, 0)
    return st.best


def _align_reasons(q: str, t: _Target, a: _Align) -> list[str]:
    reasons: list[str] = []
    p = t.parsed
    if a.skips == 0 and a.generic == 0 and -2 not in a.path:
        reasons.append("简称字符按序取自全称")
    for i, x in enumerate(a.path):
        if x == -1:
            region = _region_word(t, q[i])
            kind = "省份简称" if region in PROVINCE_SHORT.get(q[i], ()) else "地区简称"
            reasons.append(f"{kind} {q[i]}={region}")
        elif x == -2:
            regions = "/".join(SHORT_FORM_REGIONS.get(q[i], ()))
            reasons.append(f"地区简称 {q[i]}={regions}（全称未写地区）")
    used = {x for x in a.path if x >= 0}
    trade = t.chars[t.head[0]:t.head[-1] + 1] if t.head else ""
    if trade and t.head and all(h in used for h in t.head):
        reasons.append(f"字号“{trade}”完整出现")
    elif trade and t.head and t.head[0] in used:
        reasons.append(f"取字号“{trade}”开头")
    elif trade and t.head and not any(h in used for h in t.head):
        reasons.append(f"未用字号“{trade}”")
    if p.region and not any(t.labels[x] == "R" for x in used) and -1 not in a.path:
        reasons.append(f"省略地区“{p.region}”")
    if a.generic:
        reasons.append(f"含通用后缀“{q[-a.generic:]}”")
    if a.skips:
        missing = "".join(q[i] for i, x in enumerate(a.path) if x == -3)
        reasons.append(f"“{missing}”未在名称中出现")
    return reasons


def _weak_evidence(q: str, t: _Target, a: _Align) -> str:
    """Why an otherwise good alignment of the query q must not link alone ("" when it may).

    * at most one distinguishing character taken (of the trade name, the region as written or
      a specific industry word), the rest generic words or a region short form (洋股份 ↔
      洋河股份, 云股份 ↔ 丽江股份 with 云 = 云南): one character fits too many names.
    * trade name + generic words only (方盛股份, 兴业科技): fits every company of that trade
      name; allowed only when the query also took every industry word of the name (恒星科技 ↔
      河南恒星科技, 红相股份 ↔ 红相股份有限公司), not for 凯龙股份 ↔ 凯龙高科技.
    * a name written as words without its organisation form — trade name, a specific industry
      word and 股份 / 集团 / 控股 (神州数码集团, 新华传媒股份, 国药集团药业) — while the stored name has
      trade, industry or region words the query left out (神州数码信息服务集团, 安徽新华传媒,
      国药集团一致药业): a sibling of the group or the same business in another province.
    * region + trade name while the name goes on with a specific industry (辽宁成大 ↔
      辽宁成大生物): a group and its subsidiaries share region and trade name.
    * two characters of a three-character trade name (新天药业 ↔ 新天地药业).
    """
    used = [x for x in a.path if x >= 0]
    labels = t.labels
    cats = set()
    for x in used:
        lab = labels[x]
        if lab == "I":
            cats.add("g" if t.generic_i[x] else "i")
        else:
            cats.add(lab)
    if -1 in a.path:
        cats.add("R")
    distinct = sum(1 for x in used if labels[x] in "TR" or (labels[x] == "I" and not t.generic_i[x]))
    if distinct <= 1:
        return "仅一个有区分度的字（其余为通用词或地区），需人工确认"
    if "T" not in cats:
        return ""
    whole = all(h in used for h in t.head)
    generic_used = bool(a.generic) or "g" in cats or "G" in cats
    if "i" not in cats and "R" not in cats and generic_used:
        every_industry = all(k in used for k, lab in enumerate(labels) if lab == "I")
        if not (whole and every_industry):
            return "仅字号加通用词，需人工确认"
    if "i" in cats and any(w in q for w in _GENERIC_WORDS):
        region_used = -1 in a.path
        left = [k for k, lab in enumerate(labels)
                if k not in used and (lab in "TI" or (lab == "R" and not region_used))]
        if left:
            words = "".join(t.chars[k] for k in left)
            return f"名称未写组织形式，且略去了全称中的“{words}”（可能为同一集团或另一地区的企业），需人工确认"
    if "i" not in cats and "R" in cats and any(
            lab == "I" and not t.generic_i[k] and k not in used for k, lab in enumerate(labels)):
        return "仅地区加字号，名称另有行业词（可能为同一集团的其他企业），需人工确认"
    if len(t.head) == 3 and not whole:
        return "只取三字字号的两字，需人工确认"
    return ""


def _long_trade_prefix_only(t: _Target, a: _Align) -> bool:
    """Only the first two characters of a trade name of four or more (航天南湖, 华电+辽宁) were
    used: that pair is often a group's or a brand family's, shared by many companies."""
    lo, hi = t.ext_trade
    if hi - lo < 4:
        return False
    used = [x for x in a.path if lo <= x < hi]
    return bool(used) and all(x < lo + 2 for x in used)


def _align_score(a: _Align, m: int) -> float:
    return max(0.0, min(99.0, 100.0 * a.points / (_PTS_PER_CHAR * m)))


# --- full-name comparison -------------------------------------------------------------

def _industry_related(a: str, b: str) -> bool:
    if a == b:
        return True
    if not a or not b:
        return False
    return a in b or b in a or LCSseq.similarity(a, b) >= 2


_ORG_FAMILIES = (("股份",), ("合伙",), ("集团",), ("有限", "公司"))


def _org_family(form: str) -> str:
    """有限公司 and 有限责任公司 are one family (a slip between them is a typo); a joint-stock
    company, a group or a partnership is another legal form."""
    for family in _ORG_FAMILIES:
        if any(word in form for word in family):
            return family[0]
    return form


def _is_full_name(q: _Target) -> bool:
    """Typed like a registered name: an organisation form (a bare 集团 does not count) or long."""
    return (bool(q.parsed.org_form) and q.parsed.org_form != "集团") or len(q.pflat) >= 7


_NATIONAL = frozenset({"中国"})


def _regions_conflict(a: _Target, b: _Target) -> bool:
    """Both names write a region and share none. The national prefix 中国 is left out of the
    comparison when both also write a place: 中国石化山东泰山石油 and 中国石化上海石油化工 share
    only 中国, and 山东 ≠ 上海 is a conflict. (中国… against 上海… is one too, as before.)"""
    if not (a.parsed.regions and b.parsed.regions):
        return False
    ra, rb = a.regions - _NATIONAL, b.regions - _NATIONAL
    if ra and rb:
        return not (ra & rb)
    return not (a.regions & b.regions)


def _form_key(form: str) -> str:
    """An organisation form without the words a rep drops or adds by slip (有限, 责任):
    股份公司 = 股份有限公司, 有限责任公司 = 有限公司; 集团 and 股份 stay (another legal form)."""
    return flat(form).replace("有限", "").replace("责任", "")


def _form_folded(x: _Target) -> str:
    """A name (its parent part) with its organisation form folded (`_form_key`), wherever the
    parse put a bracketed word: 中化国际(控股)股份公司 and 中化国际(控股)股份有限公司 read the same
    though 控股 is parsed as industry in one and as form in the other."""
    form = flat(x.parsed.org_form)
    if not form or not x.pflat.endswith(form):
        return x.pflat
    return x.pflat[:-len(form)] + _form_key(form)


def _parse_slip(a: ParsedName, b: ParsedName) -> bool:
    """Whether two trade names of which one starts with the other are one trade name that a
    slip misparsed: a slipped, dropped or swapped character in the industry or the form
    (医疗设被, 疗器械, 有限公静 …) leaves its characters glued to the trade name, so the longer
    trade name's extra characters are the other name's industry and form, in order (one may
    be the slipped one): 康达医疗设被 / 康达 + 医疗设备, 东方铁塔股份有限公静 / 东方铁塔 + 股份有限
    公司. Two clean parses are two trade names: the extra 地 of 新天地 is not in 药业股份有限公司,
    华锦 of 北方华锦 not in 化学工业…, 汉光 of 中船汉光 not in 科技…."""
    long, short = (a, b) if len(a.trade_name) > len(b.trade_name) else (b, a)
    extra = flat(long.trade_name[len(short.trade_name):])
    rest = short.industry + flat(short.org_form)
    if not extra or not rest:
        return False
    return LCSseq.similarity(extra, rest) >= max(1, len(extra) - 1)


def _full_compare(q: _Target, t: _Target) -> tuple[float, list[str], bool]:
    """A full name against a stored name: rapidfuzz ratio, then structure. The same trade name,
    region and industry with an organisation form of the same family is the same company
    written differently (有限责任公司 for 有限公司, a slipped character); another region, trade
    name or legal form is another company.

    Linking alone needs the trade names EQUAL (after normalisation) and the industries equal:
    a trade name that merely starts like another's (新天/新天地, 同兴达/同兴, 中船/中船汉光,
    北方华锦/北方) or an industry sharing a word (海运科技/海运控股, 科技控股/通信控股,
    数码/数码信息服务) is often a sibling or a look-alike — suggested, never linked alone. A
    name without a trade name (上海电气集团, 长沙银行: region + industry) links alone when its
    region and industry equal the stored name's and the forms differ only by a slip (有限
    dropped): the region carries the identity there."""
    qp, tp = q.parsed, t.parsed
    both_full = bool(qp.org_form) and bool(tp.org_form)
    r_full = fuzz.ratio(q.pflat, t.pflat)
    if both_full and q.core and t.core:
        # the shared 有限公司 says nothing: weigh the names without their forms
        score = 0.8 * fuzz.ratio(q.core, t.core) + 0.2 * r_full
    else:
        score = r_full
    reasons = [f"全称相似度 {round(score)}"]
    region_conflict = _regions_conflict(q, t)
    region_one_sided = bool(qp.regions) != bool(tp.regions)
    qt, tt = qp.trade_name, tp.trade_name
    same_trade = bool(qt) and qt == tt
    trade_compat = same_trade or (len(qt) >= 2 and len(tt) >= 2
                                  and (qt.startswith(tt) or tt.startswith(qt)))
    # a trade name that only starts like the other's links alone only when a slip broke the
    # parse of the longer one (康达医疗设被 / 康达 + 医疗设备): not when both parse cleanly
    slip = not same_trade and trade_compat and _parse_slip(qp, tp)
    same_family = _org_family(qp.org_form) == _org_family(tp.org_form)
    can_auto = (same_trade or slip) and not region_conflict and not region_one_sided
    if same_trade and both_full:
        if qp.industry == tp.industry or _form_folded(q) == _form_folded(t):
            score = max(score, 94.0 if same_family else 80.0)
            reasons = [f"字号“{tt}”与行业一致"]
        elif _industry_related(qp.industry, tp.industry):
            score = max(score, 84.0 if same_family else 76.0)
            reasons = [(f"字号“{tt}”一致，行业表述不同（{qp.industry or '无'}/{tp.industry or '无'}），"
                        "可能为同一集团的其他企业，需人工确认")]
            can_auto = False
        else:
            score = min(score, 70.0)
            reasons = [f"字号“{tt}”一致，但行业不同（{qp.industry or '无'}/{tp.industry or '无'}）"]
            can_auto = False
    elif qt and tt and not trade_compat:
        score -= 8
        reasons.append(f"字号不同（{qt}/{tt}）")
        can_auto = False
    elif qt and tt and not same_trade and not slip:
        reasons.append(f"字号仅开头相同（{qt}/{tt}），需人工确认")
    elif not qt and not tt and both_full and qp.industry and qp.industry == tp.industry \
            and qp.regions and q.regions == t.regions \
            and _form_key(qp.org_form) == _form_key(tp.org_form):
        # no trade name on either side (上海电气集团股份公司 ↔ 上海电气集团股份有限公司)
        can_auto = True
        reasons.append("无字号，地区与行业一致")
    elif not both_full and score < FULL_NAME_TYPO_RATIO:
        can_auto = False
    if tp.org_form and not qp.org_form and len(q.pflat) > len(t.pflat) \
            and q.pflat.startswith(t.pflat):
        # the whole registered name and more after its form (…有限公司南京): a branch written
        # without its marker, not a slip in the form
        can_auto = False
        reasons.append(f"全称之后另有“{q.pflat[len(t.pflat):]}”，可能是分支机构，需人工确认")
    if region_conflict:
        score -= 30
        reasons.append(f"地区不同（{qp.region}/{tp.region}）")
    elif region_one_sided:
        reasons.append(f"地区仅一方写明（{qp.region or tp.region}）")
    elif qp.regions:
        reasons.append(f"地区一致（{tp.region}）")
    if qp.org_form and tp.org_form and qp.org_form != tp.org_form:
        reasons.append(f"组织形式不同（{qp.org_form}/{tp.org_form}）")
        if not same_family:
            can_auto = False
    return max(0.0, min(99.0, score)), reasons, can_auto


# --- scoring one entry ----------------------------------------------------------------

def _name_score(q: _Target, t: _Target) -> tuple[float, list[str], bool]:
    """How well q (its parent part) names t (its parent part). (score, reasons, may auto)"""
    qf = q.pflat
    if not qf:
        return 0.0, [], False
    if qf == t.pflat:
        return EXACT_SCORE, ["总公司名称一致"], True  # only met with a branch part aside
    if qf == t.core and len(qf) >= 2:
        return CORE_EXACT_SCORE, ["与全称去掉组织形式后一致"], True
    best = (0.0, [], False)
    m = len(qf)
    if m <= ALIGN_MAX_LEN:
        a = _align(qf, t, max_skips=max(1, m // 2))
        if a is not None and len([x for x in a.path if x >= 0 or x == -1]) >= min(2, m):
            s = _align_score(a, m)
            may = a.skips == 0 and a.generic == 0 and -2 not in a.path and m >= AUTO_MIN_QUERY_LEN
            reasons = _align_reasons(qf, t, a)
            weak = _weak_evidence(qf, t, a) if may else ""
            if weak:
                may = False
                reasons.append(weak)
            elif may and _long_trade_prefix_only(t, a):
                may = False
                reasons.append(f"仅取字号“{t.chars[t.ext_trade[0]:t.ext_trade[1]]}”的前两字，需人工确认")
            best = (s, reasons, may)
            if a.skips:
                # characters all present but in another order (工业富联 ↔ 富士康工业互联网)
                present = sum(1 for ch in qf if ch in t.chars)
                alt = REORDER_MAX_SCORE * (present / m) ** 2
                if present > m - a.skips and alt > s:
                    best = (alt, ["简称字符均出现在全称中（顺序不同）"], False)
    if _is_full_name(q):
        s, reasons, may = _full_compare(q, t)
        if s > best[0] or (s == best[0] and may and not best[2]):
            best = (s, reasons, may)
    return best


def _same_head_office(qp: _Target, t: _Target) -> bool:
    """Whether a branch query's head office (qp, its parent part) is exactly the stored
    branch's: the same name, or the same name without its organisation form (中信证券上海分公司
    ↔ 中信证券股份有限公司上海分公司), or the same core with a slip in the form (有限 dropped) or
    only the form's first words (杭叉集团上海分公司 ↔ 杭叉集团股份有限公司上海分公司).
    A branch links to a branch only then: two similar head offices are two companies."""
    if not qp.pflat:
        return False
    if qp.pflat in (t.pflat, t.core):
        return True
    return bool(qp.core) and qp.core == t.core and bool(qp.parsed.org_form) \
        and _form_key(t.parsed.org_form).startswith(_form_key(qp.parsed.org_form))


def _branch_key(branch: str) -> str:
    return branch.replace("市", "").replace("省", "")


# --- the index ------------------------------------------------------------------------

class NameIndex:
    """In-memory index of customer names; see the module docstring."""

    def __init__(self) -> None:
        self._slot_of: dict[str, int] = {}
        self._entries: list[NameEntry | None] = []
        self._norms: list[str] = []
        self._flats: list[str] = []
        self._by_customer: dict[int, set[int]] = {}
        self._legal: dict[int, int] = {}
        # exact tables hold a slot, or a list of slots when a name is shared (saves memory)
        self._exact: dict[str, int | list[int]] = {}
        self._core_exact: dict[str, int | list[int]] = {}
        self._post: defaultdict[str, list[int]] = defaultdict(list)     # read with .get()
        self._prefix: defaultdict[str, list[int]] = defaultdict(list)
        self._targets: dict[int, _Target] = {}
        self._live = 0
        self._dead = 0

    # -- maintenance --
    def __len__(self) -> int:
        return self._live

    @classmethod
    def build(cls, entries: Iterable[NameEntry]) -> NameIndex:
        """Bulk build. The collector is paused meanwhile: the index holds no reference cycles
        and hundreds of thousands of new lists would otherwise trigger full collections."""
        index = cls()
        paused = gc.isenabled()
        gc.disable()
        try:
            for entry in entries:
                index.add(entry)
        finally:
            if paused:
                gc.enable()
        return index

    def add(self, entry: NameEntry) -> None:
        """Insert, or replace the entry with the same entry_id (it may move customer)."""
        if entry.entry_id in self._slot_of:
            self.remove(entry.entry_id)
        norm = normalize_name(entry.name)
        slot = len(self._entries)
        self._entries.append(entry)
        self._norms.append(norm)
        fl = flat(norm)
        self._flats.append(fl)
        self._slot_of[entry.entry_id] = slot
        slots = self._by_customer.get(entry.customer_id)
        if slots is None:
            self._by_customer[entry.customer_id] = {slot}
        else:
            slots.add(slot)
        if entry.kind == "legal":
            self._legal[entry.customer_id] = slot
        self._live += 1
        if not fl:
            return
        _put(self._exact, fl, slot)
        keys, prefixes, core = _index_keys(norm)
        if core:
            _put(self._core_exact, core, slot)
        post = self._post
        for key in keys:
            post[key].append(slot)
        pre = self._prefix
        for key in prefixes:
            pre[key].append(slot)

    def remove(self, entry_id: str) -> None:
        slot = self._slot_of.pop(entry_id, None)
        if slot is None:
            return
        entry = self._entries[slot]
        self._entries[slot] = None
        self._targets.pop(slot, None)
        slots = self._by_customer.get(entry.customer_id)
        if slots is not None:
            slots.discard(slot)
            if not slots:
                del self._by_customer[entry.customer_id]
        if self._legal.get(entry.customer_id) == slot:
            del self._legal[entry.customer_id]
        _take(self._exact, self._flats[slot], slot)  # (core table: dead slots filtered on read)
        self._live -= 1
        self._dead += 1
        # postings keep dead slots (filtered on read) until they outweigh the live ones
        if self._dead > 1000 and self._dead > self._live:
            self._compact()

    def remove_customer(self, customer_id: int) -> None:
        # ids first: a compaction during the removals renumbers the slots
        ids = [self._entries[slot].entry_id for slot in self._by_customer.get(customer_id, ())]
        for entry_id in ids:
            self.remove(entry_id)

    def _compact(self) -> None:
        live = [e for e in self._entries if e is not None]
        fresh = NameIndex.build(live)
        self.__dict__.update(fresh.__dict__)

    # -- search --
    def _target(self, slot: int) -> _Target:
        t = self._targets.get(slot)
        if t is None:
            t = _Target(self._norms[slot])
            if TARGET_CACHE:
                if len(self._targets) >= TARGET_CACHE:  # evict the oldest: no bulk free stalls
                    del self._targets[next(iter(self._targets))]
                self._targets[slot] = t
        return t

    def _candidate_slots(self, q: _Target) -> dict[int, float]:
        """Names worth scoring, with a retrieval weight (exact hits first)."""
        entries = self._entries
        out: dict[int, float] = {}
        for table, key in ((self._exact, q.full), (self._exact, q.pflat), (self._core_exact, q.core),
                           (self._core_exact, q.pflat)):
            for s in _slots(table, key):
                if entries[s] is not None:
                    out[s] = math.inf
        body = q.core or q.pflat
        if q.parsed.is_branch:
            body = (q.core or q.pflat) + _strip_marker(q.branch)
        if len(body) <= 2:
            # keystrokes: names (or their trade names) starting with what was typed
            for key in {body, body[:1]} if len(body) == 2 else {body}:
                lst = self._prefix.get(key, ())
                n = 0
                w = 1.0 if key == body else 0.5
                for s in lst:
                    if entries[s] is not None:
                        out.setdefault(s, w)
                        n += 1
                        if n >= PREFIX_SCAN:
                            break
            if len(body) < 2:
                return out
        keys = _query_keys(body)
        post = self._post
        total = max(1, self._live)
        found = []
        for key, w in keys.items():
            lst = post.get(key)
            if lst:
                found.append((len(lst), key, w, lst))
        found.sort(key=lambda x: x[0])
        pool: dict[int, float] = {}
        # rare keys first; a key whose postings would overflow the pool is left out (the
        # rapidfuzz pre-score in _shortlist ranks the pool on every character anyway). A full
        # name has many informative pairs: its rarest ones suffice.
        limit = POOL_FEED_LIMIT_FULL if _is_full_name(q) else POOL_FEED_LIMIT
        for n, key, w, lst in found:
            if pool and (n > KEY_FEED_CAP or len(pool) + n > limit or len(pool) >= POOL_ENOUGH):
                continue
            idf = w * math.log(1 + total / n)
            get = pool.get
            for s in lst[:limit]:
                pool[s] = get(s, 0.0) + idf
        if len(pool) < TOP_K:
            # few names share a pair of characters with the query: rare single characters
            singles = []
            for ch in set(body):
                lst = post.get("~" + ch)
                if lst and len(lst) <= UNIGRAM_FEED_CAP:
                    singles.append((len(lst), lst))
            singles.sort(key=lambda x: x[0])
            for n, lst in singles:
                if len(pool) + n > POOL_FEED_LIMIT:
                    break
                idf = 0.3 * math.log(1 + total / n)
                get = pool.get
                for s in lst:
                    pool[s] = get(s, 0.0) + idf
        for s, w in pool.items():
            if out.get(s, 0.0) < w and entries[s] is not None:
                out[s] = w
        return out

    def _shortlist(self, q: _Target, cands: dict[int, float]) -> list[int]:
        """Rank the candidates with rapidfuzz (in C) on the whole query — LCS for short names
        (characters taken in order), ratio for full names — ties broken by retrieval weight;
        the best go on to the detailed scoring. Exact hits always do."""
        qf = q.pflat
        m = len(qf)
        flats = self._flats
        exact = [s for s, w in cands.items() if w == math.inf]
        full = _is_full_name(q)
        # an exact hit needs only its near rivals; a full name is ranked well by its ratio
        keep = SCORE_K_EXACT if exact else SCORE_K_FULL if full else SCORE_K
        if len(cands) <= keep:
            return list(cands)
        choices = {s: flats[s] for s, w in cands.items() if w != math.inf}
        if m <= ALIGN_MAX_LEN and not full:
            lead = 1 if qf[0] in SHORT_FORM_REGIONS else 0
            cutoff = max(0, m - max(1, m // 2) - lead)
            hits = process.extract(qf, choices, scorer=LCSseq.similarity, limit=keep * 3,
                                   score_cutoff=cutoff)
        else:
            hits = process.extract(qf, choices, scorer=fuzz.ratio, limit=keep * 3)
        hits.sort(key=lambda h: (h[1], cands[h[2]]), reverse=True)
        return exact + [h[2] for h in hits[:keep]]

    def search(self, query: str, limit: int = 5) -> MatchResult:
        norm = normalize_name(query)
        if not flat(norm):
            return MatchResult(query, norm, "unknown", ())
        q = _Target(norm)
        slots = self._shortlist(q, self._candidate_slots(q))
        best: dict[int, tuple[float, bool, int, list[str]]] = {}
        for slot in slots:
            entry = self._entries[slot]
            score, reasons, may = self._score(q, slot)
            if score <= 0:
                continue
            cur = best.get(entry.customer_id)
            if cur is None or score > cur[0] or (score == cur[0] and may and not cur[1]):
                best[entry.customer_id] = (score, may, slot, reasons)
        if q.regions and _is_full_name(q):
            self._check_legal_regions(q, best)
        stem_owners = self._stem_owners(q)
        for cid, slot in stem_owners.items():
            if cid not in best:
                score, reasons, _ = self._score(q, slot)
                best[cid] = (max(score, SUGGEST_MIN_SCORE), False, slot, reasons)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))
        ranked = [kv for kv in ranked if kv[1][0] >= SUGGEST_MIN_SCORE]
        if not ranked:
            return MatchResult(query, norm, "unknown", ())
        top_score, top_may = ranked[0][1][0], ranked[0][1][1]
        second = ranked[1][1][0] if len(ranked) > 1 else 0.0
        decision = "suggest"
        if top_may and top_score >= AUTO_MIN_SCORE and top_score - second >= AUTO_MIN_MARGIN:
            decision = "auto"
        if stem_owners.keys() - {ranked[0][0]}:
            # the typed name minus (part of) its form is exactly another file's name
            # (泰禾股份公司: 泰禾股份 is 南通泰禾化工's short name): a person chooses, the files
            # of that name listed right after the best
            decision = "suggest"
            top_cid, (score, may, slot, reasons) = ranked[0]
            names = "、".join(dict.fromkeys(self._entries[s].name for s in stem_owners.values()
                                            if self._entries[s].customer_id != top_cid))
            ranked[0] = (top_cid, (score, may, slot,
                                   reasons + [f"去掉组织形式后与其他客户的名称“{names}”一致，需人工确认"]))
            owners = [kv for kv in ranked[1:] if kv[0] in stem_owners]
            ranked = ranked[:1] + owners + [kv for kv in ranked[1:] if kv[0] not in stem_owners]
        candidates = []
        for i, (cid, (score, may, slot, reasons)) in enumerate(ranked[:max(1, limit)]):
            entry = self._entries[slot]
            legal_slot = self._legal.get(cid)
            legal = self._entries[legal_slot].name if legal_slot is not None else entry.name
            rs = list(reasons)
            if entry.kind != "legal":
                rs.insert(0, f"匹配{KIND_LABELS.get(entry.kind, entry.kind)}“{entry.name}”")
            if i == 0 and decision == "suggest" and len(ranked) > 1 and top_score - second < AUTO_MIN_MARGIN \
                    and top_score >= AUTO_MIN_SCORE:
                rs.append("与其他客户难以区分，请人工确认")
            candidates.append(Candidate(cid, legal, entry.name, entry.kind, round(score, 1),
                                        tuple(dict.fromkeys(rs))))
        return MatchResult(query, norm, decision, tuple(candidates))

    def _stem_owners(self, q: _Target) -> dict[int, int]:
        """Customers (→ the slot) having a name exactly equal to the typed name without its
        organisation form or its last words (泰禾股份公司 → 泰禾股份, 泰禾). A rep who adds 公司
        to a short name means the file of that short name as much as the file whose legal name
        the result resembles."""
        segs = q.segments
        if not q.parsed.org_form or q.parsed.is_branch:
            return {}
        out: dict[int, int] = {}
        n = len(segs)
        while n > 1 and segs[n - 1][0] == "O":
            n -= 1
            stem = "".join(text for _, text in segs[:n])
            if len(stem) < 2:
                break
            for slot in _slots(self._exact, stem):
                entry = self._entries[slot]
                if entry is not None:
                    out.setdefault(entry.customer_id, slot)
        return out

    def _check_legal_regions(self, q: _Target, best: dict) -> None:
        """A full name with a region names another company when the customer's legal name
        has a different region, whatever alias matched (浙江康达… is not 江苏康达…)."""
        for cid, (score, may, slot, reasons) in list(best.items()):
            legal_slot = self._legal.get(cid)
            if legal_slot is None or legal_slot == slot or score >= EXACT_SCORE:
                continue
            lt = self._target(legal_slot)
            if _regions_conflict(q, lt):
                best[cid] = (score - 30, False, slot,
                             reasons + [f"地区不同（{q.parsed.region}/{lt.parsed.region}）"])

    def _score(self, q: _Target, slot: int) -> tuple[float, list[str], bool]:
        entry = self._entries[slot]
        fl = self._flats[slot]
        if q.full == fl:
            label = KIND_LABELS.get(entry.kind, entry.kind)
            # a one-character name is too thin to link alone, even when it is on file
            return EXACT_SCORE, [f"与{label}完全一致"], len(fl) >= 2
        t = self._target(slot)
        qb, tb = q.parsed.is_branch, t.parsed.is_branch or entry.kind == "branch"
        if not qb and not tb:
            return _name_score(q, t)
        if qb and t.parsed.is_branch:
            qp = _parent_target(q)
            score, reasons, may = _name_score(qp, t)
            if _branch_key(q.branch) == _branch_key(t.branch):
                if may and qp.parsed.org_form and not _same_head_office(qp, t):
                    # the same office of two similar head offices (国药集团一致药业…广州办事处 /
                    # 国药集团药业…广州办事处) is another company's office. A head office typed
                    # as a short name (康达医疗苏州分公司) links by the short-name rules.
                    may = False
                    reasons = reasons + ["总公司名称不完全一致，需人工确认"]
                return score, [f"分支机构一致（{t.parsed.branch}）"] + reasons, may
            return (min(score, RELATED_CAP) - 10, [f"分支机构不同（{q.parsed.branch}/{t.parsed.branch}）"]
                    + reasons, False)
        if qb:
            # scaled, not cut at the cap: the head office the branch name spells out must rank
            # above companies that only resemble it (上海电气集团…上海分公司: 上海电气集团, not
            # 上海摩恩电气, both "related" once cut)
            score, reasons, _ = _name_score(_parent_target(q), t)
            return (min(score * RELATED_CAP / EXACT_SCORE, RELATED_CAP),
                    [f"分支机构未建档，总公司为“{entry.name}”"] + reasons, False)
        score, reasons, _ = _name_score(q, t)
        parent = t.parsed.parent_name if t.parsed.is_branch else entry.name
        return (min(score - 10, RELATED_CAP), [f"该名称为分支机构，总公司为“{parent}”"] + reasons,
                False)


def _put(table: dict, key: str, slot: int) -> None:
    cur = table.get(key)
    if cur is None:
        table[key] = slot
    elif type(cur) is int:
        table[key] = [cur, slot]
    else:
        cur.append(slot)


def _slots(table: dict, key: str) -> tuple[int, ...] | list[int]:
    cur = table.get(key)
    return () if cur is None else (cur,) if type(cur) is int else cur


def _take(table: dict, key: str, slot: int) -> None:
    cur = table.get(key)
    if cur is None:
        return
    if type(cur) is int:
        if cur == slot:
            del table[key]
    elif slot in cur:
        cur.remove(slot)
        if len(cur) == 1:
            table[key] = cur[0]


def _parent_target(q: _Target) -> _Target:
    return _Target(q.parsed.parent_name)


def _strip_marker(branch: str) -> str:
    for marker in sorted(D.BRANCH_MARKERS, key=len, reverse=True):
        if branch.endswith(marker):
            return branch[:-len(marker)]
    return branch


_analyse_uncached = analyse_name.__wrapped__  # stored names are parsed once: skip the cache


def _index_keys(norm: str) -> tuple[set[str], set[str], str]:
    """(posting keys, prefix keys, core) of a stored name."""
    pr = _analyse_uncached(norm)
    p = pr.parsed
    segs = pr.segments
    core = ""
    initials: list[str] = []
    head = ""
    later: list[str] = []
    for label, text in segs:
        if label == "O":
            continue
        core += text
        if label == "R":
            initials.append(text[0])
        else:
            initials.extend(text[::2])
            if not head and label == "T":
                head = text
            if len(later) < 3:
                later.append(text[0])
    if not head:
        head = next((text for label, text in segs if label == "I"), "")
    body = core + _strip_marker(flat(p.branch)) if p.branch else core
    keys = {body[i:i + 2] for i in range(len(body) - 1)}
    # initials of the words (two-character pieces of trade names and industry words): short
    # names combine them (首都开发 → 首开, 航空材料 → 航材)
    n = len(initials)
    for i in range(n - 1):
        a = initials[i]
        for b in initials[i + 1:i + 4]:
            keys.add(a + b)
    prefixes = {body[:1], body[:2]}
    if head:
        prefixes.add(head[:1])
        prefixes.add(head[:2])
        keys.add("^" + head[:2])
        for r in p.regions + p.provinces:
            for sf in REGION_SHORT_FORMS.get(r, ()):
                for ch in later:
                    keys.add(sf + ch)
                prefixes.add(sf)
                prefixes.add(sf + head[0])
    # single characters of the trade name (of the industry words when there is none): the
    # last resort for short names that share no pair with the name
    lead = "T" if any(label == "T" for label, _ in segs) else "I"
    keys.update("~" + ch for label, text in segs if label == lead for ch in text)
    prefixes.discard("")
    return keys, prefixes, core


def _query_keys(body: str) -> dict[str, float]:
    """Bigram keys of a query with their weights: contiguous pairs weigh most; short queries
    add ordered non-adjacent pairs (short names skip characters) and trade-name starts."""
    keys: dict[str, float] = {}
    n = len(body)
    for i in range(n - 1):
        keys[body[i:i + 2]] = 1.0
    if n <= ALIGN_MAX_LEN:
        for i in range(n):
            for j in range(i + 2, n):
                keys.setdefault(body[i] + body[j], 0.6)
        for i in range(min(2, n - 1)):
            keys["^" + body[i:i + 2]] = 1.5
    return keys

"""Rebate policy documents (返利政策): the schema, its validation and the book of versions.

A document is YAML or JSON written by the sales-ops clerk (docs/rebates.md). Parsing keeps
every number as its exact decimal text (YAML would otherwise read 0.025 as a float) and
reports ALL problems at once, each naming its field, in Chinese.
"""
from __future__ import annotations

import bisect
import datetime as dt
import difflib
import json
import re
import reprlib
import unicodedata
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import yaml

from models.base import SHANGHAI
from models.names import HALF_WIDTH, identity_of, normalize_name
from models.rebates.formatting import exact_percent, plain_number
from models.staff import normalize_region

MEASURES = ("amount", "quantity")
PERIODS = ("month", "quarter")
STYLES = ("retroactive", "marginal")
STACKINGS = ("stack", "exclusive")
NO_HISTORY = ("pass", "fail")
# how the Chinese texts name the document's words
MEASURE_LABELS = {"amount": "金额", "quantity": "数量"}
PERIOD_LABELS = {"month": "按月", "quarter": "按季"}
STYLE_LABELS = {"retroactive": "追溯（全额按达到档）", "marginal": "分段累进"}
STACKING_LABELS = {"stack": "叠加", "exclusive": "互斥"}


def _choices(labels: dict[str, str]) -> str:
    return "（请写 " + " 或 ".join(f"{k}（{v}）" for k, v in labels.items()) + "）"


# what a rule's required field takes, said where it is missing
_REQUIRED_HINTS = {
    "measure": _choices(MEASURE_LABELS), "period": _choices(PERIOD_LABELS),
    "style": _choices(STYLE_LABELS), "stacking": _choices(STACKING_LABELS),
    "priority": "（请写一个整数，如 10：同一订单行有多条互斥条款时，数字大的优先）",
}

# the days a policy, or a month to settle or replay, may name: date arithmetic around them
# (the day before, the end of the quarter) never leaves what a date can hold
FIRST_DATE, LAST_DATE = dt.date(2000, 1, 1), dt.date(2099, 12, 31)
# numbers of a document: thresholds and caps far above any real one (10 万亿 yuan or units),
# at most 10 decimal places; every such number fits the decimal context exactly
MAX_NUMBER = Decimal(10) ** 13
MAX_PLACES = 10
MAX_DEPTH = 20  # nesting levels of a document (a real one uses 6)
# a tier rate written as a bare fraction above this (10 %) must carry its % sign instead:
# `rate: 0.5` is far more often 0.5 % without its sign than a 50 % rebate
BARE_RATE_MAX = Decimal("0.1")

# codes end up inside bucket keys "code|rule|customer|period" and in 40-character columns
_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
_RULE_ID_RE = re.compile(r"^[a-z0-9-]{1,40}$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


# --------------------------------------------------------------------------- value types

@dataclass(frozen=True)
class Problem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class PolicyDocumentError(ValueError):
    """The document cannot be published; `problems` lists everything wrong with it."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class TierSpec:
    """One tier: `lower` inclusive, `upper` exclusive (None: open). Yuan for `amount`,
    whole units for `quantity`. `rate` is a fraction (0.025 for 2.5 %)."""

    lower: Decimal
    upper: Decimal | None
    rate: Decimal


@dataclass(frozen=True)
class DateWindow:
    start: dt.date | None = None
    end: dt.date | None = None  # inclusive

    def contains(self, day: dt.date) -> bool:
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class PaymentRateCondition:
    min: Decimal  # fraction, inclusive: a rate equal to it passes
    no_history: str = "fail"  # pass | fail when no invoice was due in the window


@dataclass(frozen=True)
class AppliesTo:
    """Conditions of a rule; None means no condition of that kind."""

    product_lines: tuple[str, ...] | None = None
    skus: tuple[str, ...] | None = None
    customer_tiers: tuple[str, ...] | None = None
    regions: tuple[str, ...] | None = None
    order_dates: DateWindow | None = None
    payment_rate: PaymentRateCondition | None = None


@dataclass(frozen=True)
class Exclusions:
    skus: tuple[str, ...] = ()
    product_lines: tuple[str, ...] = ()
    customers: tuple[str, ...] = ()  # USCC or legal name


@dataclass(frozen=True)
class RuleSpec:
    id: str
    name: str
    clause: str | None
    applies_to: AppliesTo
    exclude: Exclusions
    measure: str  # amount | quantity
    period: str  # month | quarter
    style: str  # retroactive | marginal
    tiers: tuple[TierSpec, ...]
    cap: Decimal | None  # yuan per customer and period
    priority: int
    stacking: str  # stack | exclusive

    @property
    def citation(self) -> str:
        """How a text cites the rule: 第二条「季度销售额阶梯返利」."""
        cited = self.clause or f"规则 {self.id}"
        return cited if self.name in (cited, self.id) else f"{cited}「{self.name}」"


@dataclass(frozen=True)
class PolicySpec:
    code: str
    name: str
    effective_from: dt.date
    effective_to: dt.date | None
    text: str | None
    rules: tuple[RuleSpec, ...]

    def rule(self, rule_id: str) -> RuleSpec | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def to_json(self) -> str:
        """Normalised JSON for the `spec` column. It is itself a valid policy document:
        `from_json(spec.to_json()) == spec` and the text is stable."""
        return json.dumps(_spec_to_doc(self), ensure_ascii=False, sort_keys=True,
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> PolicySpec:
        # a published version reads back as it was accepted, whatever checks came later
        return _parse(text, authoring=False)


# --------------------------------------------------------------------------- loading text

class _Mapping(dict):
    """A dict that remembers keys written twice (YAML and JSON would keep the last one), and
    its keys in the order written, repeats included (`{from: 1,000,000}` is from, 000, 000)."""

    duplicates: list[str]
    order: list[str]

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.duplicates = []
        self.order = []


class _TooDeep(yaml.MarkedYAMLError):
    pass


class _DocumentLoader(yaml.SafeLoader):
    """Safe YAML where every plain scalar stays text except null: numbers keep their exact
    decimal text, dates are checked by the validator, and `no`/`on` stay words. Nesting
    deeper than MAX_DEPTH is refused before the (recursive) composer runs out of stack."""

    _depth = 0

    def compose_node(self, parent, index):
        if self._depth >= MAX_DEPTH:
            raise _TooDeep(problem=_TOO_DEEP, problem_mark=self.peek_event().start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_NULL_TAG = "tag:yaml.org,2002:null"
_DocumentLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag == _NULL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_DocumentLoader.yaml_implicit_resolvers = {
    k: v for k, v in _DocumentLoader.yaml_implicit_resolvers.items() if v}


def _construct_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return loader.construct_scalar(node)


for _tag in ("int", "float", "bool", "timestamp"):
    # explicit tags (!!float 0.1) also stay text: no float ever enters
    _DocumentLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _construct_text)


def _construct_map(loader: yaml.SafeLoader, node: yaml.MappingNode):
    data = _Mapping()
    yield data
    # a key reading as null (`null:`, `~:`, nothing before the colon) is no field: kept as
    # written, so that the problem names it as the clerk sees it, not as "None"
    node.value = [(yaml.ScalarNode("tag:yaml.org,2002:str", k.value, k.start_mark, k.end_mark)
                   if isinstance(k, yaml.ScalarNode) and k.tag == _NULL_TAG else k, v)
                  for k, v in node.value]
    seen: set = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value != "<<":
            if key_node.value in seen:
                data.duplicates.append(key_node.value)
            seen.add(key_node.value)
            data.order.append(key_node.value)
    data.update(loader.construct_mapping(node, deep=True))


_DocumentLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)


def _json_pairs(pairs: list[tuple[str, Any]]) -> _Mapping:
    data = _Mapping()
    for k, v in pairs:
        if k in data:
            data.duplicates.append(k)
        data[k] = v
        data.order.append(k)
    return data


def _json_constant(name: str):
    raise ValueError(f"不支持的数值 {name}")


_TOO_DEEP = f"文档嵌套层数过深（超过 {MAX_DEPTH} 层），请检查括号是否配对"
# text that can only be meant as JSON: its syntax errors are reported as JSON's
_CLEARLY_JSON = re.compile(r'\s*(\[|\{\s*")')
# full-width punctuation that breaks YAML/JSON syntax, and what to write instead
_FULL_WIDTH = {"：": ":", "，": ",", "［": "[", "］": "]", "｛": "{", "｝": "}", "％": "%",
               "－": "-", "\u3000": " ", "\u00a0": " "}
# spaces a clerk cannot see: named instead of quoted (an input method's full-width space, and
# the no-break space of text copied from a web page or Word)
_ODD_SPACES = {"\u3000": "全角空格", "\u00a0": "不换行空格（网页或 Word 复制来的空格）"}
# where such a space breaks the syntax: indenting a line from its start or before a key,
# after a list's dash or a key's colon (inside a text, e.g. the 　　 that indents a paragraph
# of the policy text, it is only a character)
_SYNTAX_SPACE = re.compile("^[\u3000\u00a0]|^ *[\u3000\u00a0]+[^\\s:：]+:( |$)"
                           "|^ *[-－][\u3000\u00a0]|:[\u3000\u00a0]")

# the common PyYAML problems (matched on "context problem"), in Chinese
_YAML_PROBLEMS = (
    (r"could not find expected ':'", "找不到字段名后的冒号（应写成“字段: 值”，半角冒号后加空格）"),
    (r"mapping values are not allowed here",
     "此处不能出现“: ”（检查缩进是否对齐；文本中含“: ”时请给整段文本加引号）"),
    (r"found character '\\t'", "含有制表符（Tab），YAML 只能用空格缩进"),
    (r"cannot start any token|while scanning an? (alias|anchor|tag)|while parsing a tag",
     "该字符不能出现在值的开头，请给这个值加引号"),  # also * & ! (YAML's alias, anchor, tag)
    (r"expected ',' or '\]'", "列表 [ … ] 缺少逗号或右方括号“]”"),
    (r"expected ',' or '\}'", "映射 { … } 缺少逗号或右花括号“}”"),
    (r"quoted scalar.*end of stream", "引号未闭合（缺少结尾的引号）"),
    (r"unknown escape character", "双引号文本中有无效的转义（反斜杠请写成 \\\\，或改用单引号）"),
    (r"expected <block end>|did not find expected key|expected '-' indicator",
     "缩进不一致（同一层的字段须左对齐，列表项以“- ”开头）"),
    (r"undefined alias", "引用了未定义的锚点（*名称 前须有 &名称）"),
    (r"could not determine a constructor", "不支持的类型标签（以 ! 开头）"),
    (r"expected the node content", "此处缺少值"),
    (r"while scanning a block scalar",
     "“|”或“>”之后不能在同一行写文字：多行文本请从下一行开始，并比字段名多缩进两格"),
    (r"sequence entries are not allowed here",
     "值不能以“- ”开头（列表项须另起一行并缩进；如是文字请给这个值加引号）"),
    (r"while scanning a directive", "行首的“%”会被当成 YAML 指令，请给这个值加引号"),
    (r"found incompatible YAML document",
     "不支持的 YAML 版本：只能读取 YAML 1.x，请删去开头的“%YAML …”一行"),
    (r"found duplicate YAML directive|duplicate tag handle",
     "文档开头的“%”指令重复，请删去重复的一行"),
    (r"mapping keys are not allowed here", "值不能以“? ”开头，请给这个值加引号"),
    (r"expected a single document",
     "一个文件只能写一份政策（此处又以“---”开始了另一份，请分成两个文件分别发布）"),
    (r"recursive node", "锚点引用了自身（&名称 标记的内容里又用了 *名称）"),
    (r"unhashable key", "字段名不能是列表或映射（检查是否多写了括号或问号）"),
)
_JSON_PROBLEMS = (
    ("Expecting value", "此处缺少值（或多了一个逗号）"),
    ("Expecting ',' delimiter", "缺少逗号，或括号未闭合"),
    ("Expecting ':' delimiter", "字段名后缺少冒号“:”"),
    ("Expecting property name", "字段名须用英文双引号括起（或最后多了一个逗号）"),
    ("Unterminated string", "字符串缺少结尾的双引号"),
    ("Invalid control character", "字符串中含有控制字符（换行、制表符须写成 \\n、\\t）"),
    ("Invalid \\", "无效的转义字符"),
    ("Extra data", "文档结束后还有多余内容"),
)


def _load_text(text: str) -> Any:
    """YAML or JSON → plain data; raises PolicyDocumentError for a syntax error."""
    data = _load_syntax(text)
    bad = _unstorable(data)
    if bad == "\0":  # PostgreSQL keeps no NUL in a text column
        raise PolicyDocumentError([Problem("", "含有空字符 \\u0000（转义写出的 NUL），请删除")])
    if bad is not None:  # it could be neither stored nor sent back in an answer
        raise PolicyDocumentError([Problem("", (
            f"含有无效的转义字符 \\u{ord(bad):04x}（半个 UTF-16 代理对，不是完整的字符），"
            "请直接写出该字符"))])
    return data


_UNSTORABLE = re.compile("[\0\ud800-\udfff]")


def _unstorable(data: Any) -> str | None:
    """The first character no database text column can hold — NUL, or half of a UTF-16 pair
    (escapes such as `"\\u0000"`, `"\\ud800"` decode to them) — in any key or text of the
    document, else None. Walked without recursion, each shared (anchored) part once."""
    stack, seen = [data], set()
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            found = _UNSTORABLE.search(value)
            if found:
                return found.group()
        elif isinstance(value, (dict, list)) and id(value) not in seen:
            seen.add(id(value))
            parts = ([p for pair in value.items() for p in pair] if isinstance(value, dict)
                     else value)
            stack += reversed(parts)  # the first one in document order is named
    return None


def _load_syntax(text: str) -> Any:
    text = text.lstrip("\ufeff")
    if _CLEARLY_JSON.match(text):
        return _load_json(text)
    if text.lstrip().startswith("{"):  # JSON, or a YAML flow mapping: JSON first
        try:
            return _load_json(text)
        except PolicyDocumentError:
            pass
    try:
        return yaml.load(text, Loader=_DocumentLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise PolicyDocumentError([Problem("", _yaml_error(text, exc))]) from exc


def _load_json(text: str) -> Any:
    try:
        data = json.loads(text, parse_float=Decimal, parse_int=Decimal,
                          parse_constant=_json_constant, object_pairs_hook=_json_pairs)
    except RecursionError:
        data = _BAD
    except json.JSONDecodeError as exc:
        raise PolicyDocumentError([Problem("", _json_error(text, exc))]) from exc
    except ValueError as exc:  # NaN, Infinity
        raise PolicyDocumentError([Problem("", f"JSON 格式错误：{exc}")]) from exc
    if data is _BAD or _too_deep(data):
        raise PolicyDocumentError([Problem("", f"JSON 格式错误：{_TOO_DEEP}")])
    return data


def _too_deep(data: Any) -> bool:
    """More than MAX_DEPTH levels of nested lists and mappings (walked without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                return True
            stack += [(v, depth + 1) for v in (value.values() if isinstance(value, dict)
                                               else value)]
    return False


def _json_error(text: str, exc: json.JSONDecodeError) -> str:
    end = len(text.rstrip())
    if exc.pos >= end:  # the text stopped inside a list, a mapping or a string
        line = text.count("\n", 0, end) + 1
        what = "文档意外结束（括号或引号未闭合）"
        return f"JSON 格式错误，第 {line} 行末尾：{what}{_full_width_hint(text, line, line)}"
    what = _json_word_hint(text, exc.pos) or next(
        (zh for en, zh in _JSON_PROBLEMS if exc.msg.startswith(en)), f"无法解析（{exc.msg}）")
    return (f"JSON 格式错误，第 {exc.lineno} 行第 {exc.colno} 列：{what}"
            f"{_full_width_hint(text, exc.lineno, exc.lineno)}")


# an unquoted number that JSON read up to where a clerk's unit or sign follows (`1%`, `10万`)
_JSON_WORD = re.compile(r"""(?<![\w."])(-?\d+(?:\.\d+)?)[ \t]*([^\s,:\[\]{}"]+)""")


def _json_word_hint(text: str, pos: int) -> str:
    """`“1%”须加英文双引号，写成 "1%"` where a JSON number stopped at what a clerk writes
    after it (a percent sign, 万, 元; `1.5 %` too), where JSON itself only says a comma is
    missing; '' otherwise."""
    end = pos
    while end > 0 and text[end - 1] in " \t":
        end -= 1
    start = end
    while start > 0 and (text[start - 1].isdigit() or text[start - 1] in ".-"):
        start -= 1
    found = _JSON_WORD.match(text, start)
    if start == end or found is None or found.start(2) != pos:
        return ""
    word = found.group(1) + found.group(2)
    if word[-1] in "%％" and _NUMBER_RE.match(word[:-1]):
        return f"比例“{word}”须加英文双引号，写成 \"{word[:-1]}%\"（或写成小数）"
    hint = _number_hint(word)
    return f"数字后多了“{found.group(2)}”{hint}" if hint else ""


def _yaml_error(text: str, exc: yaml.YAMLError) -> str:
    """`YAML 格式错误，第 2 行第 1 列：…` at the line where the broken construct starts (a key
    without its colon, an unclosed bracket or quote), in Chinese, with a hint about
    full-width punctuation on the lines concerned."""
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        return f"YAML 格式错误，第 {line} 行：含有不能使用的控制字符（#x{exc.character:04x}）"
    context, problem = getattr(exc, "context", None), getattr(exc, "problem", None)
    found = getattr(exc, "problem_mark", None)
    start = getattr(exc, "context_mark", None)
    if start is None or (context or "").startswith(("while parsing a block",
                                                     "expected a single document")):
        start = found  # a block's (or the document's) start is far from the problem
    if start is None:
        return f"YAML 格式错误：无法解析（{exc}）"
    said = f"{context or ''} {problem or ''}"
    what = problem if isinstance(exc, _TooDeep) else next(
        (zh for en, zh in _YAML_PROBLEMS if re.search(en, said)), f"无法解析（{said.strip()}）")
    where = f"第 {start.line + 1} 行第 {start.column + 1} 列"
    if found is not None and found.line != start.line:
        what += f"（解析到第 {found.line + 1} 行时发现）"
    last = found.line + 1 if found is not None else start.line + 1
    # a full-width colon makes a line part of the text above it: look one line up too
    hint = _full_width_hint(text, max(1, min(start.line + 1, last - 1)), last)
    return f"YAML 格式错误，{where}：{what}{hint}"


def _full_width_hint(text: str, first: int, last: int) -> str:
    """`；第 2 行用了全角标点“：”，请改为半角“:”` for lines `first` … `last` (1-based)."""
    lines = text.splitlines()[first - 1:last]
    for number, line in enumerate(lines, first):
        marks = [c for c in _FULL_WIDTH if c in line
                 and (c not in _ODD_SPACES or _SYNTAX_SPACE.search(line))]
        if marks:
            wrong = "、".join(_ODD_SPACES.get(c, f"“{c}”") for c in marks)
            right = "、".join("空格" if c in _ODD_SPACES else f"“{_FULL_WIDTH[c]}”"
                             for c in marks)
            kind = "" if any(c in _ODD_SPACES for c in marks) else "全角标点"
            return f"；第 {number} 行用了{kind}{wrong}，请改为半角{right}"
    return ""


# --------------------------------------------------------------------------- validation

_MISSING = object()
_BAD = object()


class _Check:
    """Collects problems while reading a document tree."""

    def __init__(self, authoring: bool = True) -> None:
        self.problems: list[Problem] = []
        # checks of what a clerk writes now; a published version is read back without them
        self.authoring = authoring
        # fields holding what YAML left of a number cut at its comma inside braces (`{rate:
        # 2,5%}` holds "2"): the cut is said at its tail, the field is not read
        self.cut: set[str] = set()

    def add(self, path: str, message: str) -> object:
        self.problems.append(Problem(path, message))
        return _BAD

    # -- structure
    def mapping(self, value: Any, path: str, required: tuple[str, ...] = (),
                single: str | None = None) -> dict | object:
        """The mapping at `path`, holding the fields `_SCHEMA` gives its place. `single`: the
        field a lone value written in place of the mapping is meant for (`cap: 60000` is
        `cap: {amount_per_period: 60000}`)."""
        allowed = _SCHEMA[_place(path)]
        if not isinstance(value, dict):
            if single and isinstance(value, (str, int, Decimal)) and not isinstance(value, bool):
                grouped = single not in _RATE_FIELDS
                shown = format(value, "f") if isinstance(value, Decimal) else str(value).strip()
                if grouped and _THOUSANDS.match(shown.translate(HALF_WIDTH)):
                    shown = shown.translate(HALF_WIDTH).replace(",", "")  # braces would cut 1,000
                if _NUMBER_RE.match(shown.rstrip("%％").strip()):
                    if not grouped and shown == shown.rstrip("%％") and Decimal(shown) > 1:
                        shown += "%"  # `payment_rate: 90`: a fraction above 1 would be refused
                    return self.add(path, f"应为键值映射（字段: 值），请写成 {{{single}: {shown}}}")
                if hint := _number_hint(shown, grouped):  # 6万: the number to write as well
                    return self.add(path, f"应为键值映射（字段: 值），请写成 {{{single}: 数字}}{hint}")
            return self.add(path, "应为键值映射（字段: 值）")
        tails = self._cut_numbers(value, path, allowed)
        for key in value:
            if key in tails:  # said with the number it was cut from
                continue
            if not str(key).strip():  # `"": 1`, or a YAML key left empty (`? `)
                self.add(path, "键不能为空：冒号前须写字段名")
            elif key == "<<":  # YAML's merge key: every field is read as written, none merged
                self.add(_join(path, key), "不支持 YAML 合并键“<<”（如 <<: *共用条件），"
                                           "请把共用的字段直接写在每一处")
            elif key not in allowed:
                self.add(_join(path, key), _unknown_field(str(key), path, value[key]))
        for key in dict.fromkeys(getattr(value, "duplicates", ())):
            if key not in tails:  # (1,000,000 cut at its commas: the tails are said above)
                self.add(_join(path, key), "字段重复出现")
        # 生效日期 written for effective_from: the problem with that key says it all
        renamed = {f for key in value if key not in allowed
                   for f in _meant_fields(str(key), path) if f in allowed}
        for key in required:
            if value.get(key) is None and key not in renamed:
                self.add(_join(path, key), f"缺少必填字段{_REQUIRED_HINTS.get(key, '')}")
        return value

    def _cut_numbers(self, value: dict, path: str, allowed: tuple[str, ...]) -> set[str]:
        """Numbers YAML cut at their commas inside `{ … }`: `{from: 100,000}` reads as from "100"
        and a key "000" without a value, `{rate: 2,5%}` as rate "2" and a key "5%". Each is
        said once, at its first tail, as the number written: thousands (not in a rate, which
        never has any) with the number to write, else a decimal comma with the number it most
        likely means. The field before the comma is then not read (`number`), and the tails
        are returned: no field of their own."""
        tails: set[str] = set()
        runs: list[tuple[str, list[str]]] = []  # (field holding the number's head, its tails)
        for key in getattr(value, "order", None) or list(value):
            if key not in value:
                continue
            if (runs and runs[-1][1] is not None and key not in allowed and value[key] is None
                    and _CUT_TAIL.match(str(key))):
                runs[-1][1].append(str(key))
                continue
            held = value[key]
            head = isinstance(held, str) and _NUMBER_RE.match(held.translate(HALF_WIDTH).strip())
            runs.append((key, [] if head else None))
        for field, cut in runs:
            if not cut:
                continue
            tails.update(cut)
            where = _join(path, field)
            self.cut.add(where)
            written = ",".join([value[field].translate(HALF_WIDTH).strip(),
                                *(re.sub(r"\s+", "", tail) for tail in cut)])
            said = "花括号 { … } 中的逗号分隔字段，"
            if field not in _RATE_FIELDS and _THOUSANDS.match(written):
                said += (f"数字中的千位分隔符“,”把 {written} 断开了，逗号后的部分被当成了字段名："
                         f"请写成 {written.replace(',', '')}（不加逗号），或给数字加引号 "
                         f"\"{written}\"")
            else:
                hint = _number_hint(written, grouped=field not in _RATE_FIELDS)
                said += (f"{field}: {written} 在逗号处被断开，逗号后的部分被当成了字段名"
                         + (hint or "：请去掉逗号，或给这个值加引号"))
            self.add(_join(path, cut[0]), said)
        return tails

    # -- scalars
    def text(self, value: Any, path: str, max_len: int | None = None) -> str | object:
        if isinstance(value, bool) or isinstance(value, (dict, list)):
            return self.add(path, "应为文本")
        if isinstance(value, (int, Decimal)):
            value = str(value)
        if not isinstance(value, str):
            return self.add(path, "应为文本")
        value = value.strip()
        if not value:
            return self.add(path, "不能为空")
        if max_len is not None and len(value) > max_len:
            return self.add(path, f"不能超过 {max_len} 个字符")
        return value

    def date(self, value: Any, path: str) -> dt.date | object:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):  # full-width ２０２７－０１－０１, as full-width numbers are read
            value = value.translate(HALF_WIDTH)
        if not isinstance(value, str) or not _DATE_RE.match(value.strip()):
            return self.add(path, f"日期格式应为 YYYY-MM-DD（如 2027-01-01），实为 {_shown(value)}"
                                  f"{_date_hint(value)}")
        try:
            day = dt.date.fromisoformat(value.strip())
        except ValueError:
            return self.add(path, f"不是有效日期：{value.strip()}")
        if not FIRST_DATE <= day <= LAST_DATE:
            return self.add(path, f"日期须在 {FIRST_DATE} 至 {LAST_DATE} 之间（实为 {day}）")
        return day

    def number(self, value: Any, path: str, written: Any = None,
               grouped: bool = True) -> Decimal | object:
        """`written`: the value as the document holds it, when `value` is a part of it (the
        number of a percentage): problems quote what the clerk wrote. `grouped`: thousands
        separators (1,000,000 — how amounts are written in China) are read; not in a rate,
        where a comma can only be a decimal comma (12,5%)."""
        shown = value if written is None else written
        if path in self.cut:  # what is left of a number cut at its comma: said at its tail
            return _BAD
        if isinstance(value, bool):
            return self.add(path, f"应为数字，实为 {str(value).lower()}")
        if isinstance(value, float):
            # a float would already have lost the exact decimal the clerk wrote
            return self.add(path, "应为数字（不接受浮点数）")
        # full-width ２．５ read as 2.5 (only those forms: 100000¹ stays wrong)
        half = value.translate(HALF_WIDTH).strip() if isinstance(value, str) else None
        if isinstance(value, (int, Decimal)):
            number = Decimal(value)
        elif half is not None and _NUMBER_RE.match(half):
            number = Decimal(half)
        elif grouped and half is not None and _THOUSANDS.match(half):
            number = Decimal(half.replace(",", ""))  # also １，０００ (full-width, as typed)
        else:
            return self.add(path, f"应为数字，实为 {_shown(shown)}{_number_hint(shown, grouped)}")
        # checked before any arithmetic: 1e400 would overflow the decimal context
        if not number.is_finite():
            return self.add(path, "应为有限的数字")
        if number.copy_abs() > MAX_NUMBER:
            return self.add(path, f"数值过大（绝对值不能超过 {plain_number(MAX_NUMBER)}，"
                                  f"即 10 万亿），实为 {_shown(shown)}")
        if _places(number) > MAX_PLACES:
            return self.add(path, f"小数位数过多（最多 {MAX_PLACES} 位），实为 {_shown(shown)}"
                                  f"{_float_noise_hint(number, _written_as_percent(shown))}")
        return _canon(number)

    def integer(self, value: Any, path: str) -> int | object:
        number = self.number(value, path)
        if number is _BAD:
            return _BAD
        if number != number.to_integral_value():
            return self.add(path, f"应为整数，实为 {plain_number(number)}")
        return int(number)

    def rate(self, value: Any, path: str, whole: str = "全额返利") -> Decimal | object:
        """'2.5%' (or full-width '2.5％') or a fraction 0.025 → Decimal fraction, 0 ≤ rate ≤ 1.
        `whole`: what 100 % means here, for the question a bare 1 raises."""
        if isinstance(value, str):
            value = value.replace("％", "%")
        if isinstance(value, str) and value.strip().endswith("%"):
            number = self.number(value.strip()[:-1].strip(), path, written=value, grouped=False)
            if number is _BAD:
                return _BAD
            number = _canon(number.scaleb(-2))
            if _places(number) > MAX_PLACES:  # the spec stores the fraction: it must read back
                return self.add(path, f"小数位数过多（百分比最多 {MAX_PLACES - 2} 位小数），"
                                      f"实为 {_shown(value)}")
        else:
            number = self.number(value, path, grouped=False)
            if number is _BAD:
                return _BAD
        if number < 0:
            return self.add(path, f"比例不能为负（{_rate_text(value)}）")
        percent = isinstance(value, str) and value.strip().endswith("%")
        # 1 as a fraction is 100 %: from a clerk more likely a slip for 1 %; in the published
        # spec (rates as fractions) it is the 100 % the clerk wrote, and must read back
        if number == 1 and not percent and self.authoring:
            return self.add(path, f"比例 1 含义不明：如指 1%，请写成 \"1%\"；如确为{whole}，"
                                  "请写成 \"100%\"")
        if number > 1:
            hint = ""
            if not percent:
                hint = f"；如指 {plain_number(number)}%，请写成 \"{plain_number(number)}%\""
            return self.add(path, f"比例不能超过 100%（{_rate_text(value)}）{hint}")
        return number

    def choice(self, value: Any, path: str, options: tuple[str, ...]) -> str | object:
        if not isinstance(value, str) or value.strip() not in options:
            meant = None
            if isinstance(value, str):  # 季度 → quarter; Quarter, ｑｕａｒｔｅｒ → quarter
                half = value.translate(HALF_WIDTH).strip()
                meant = _CHOICE_WORDS.get(half, half.casefold())
            hint = f"（“{value.strip()}”请写成 {meant}）" if meant in options else ""
            if not hint and isinstance(value, str):  # quater → quarter
                hint = _did_you_mean(value.strip(), options)
            return self.add(path, f"应为 {' 或 '.join(options)} 之一，实为 {_shown(value)}{hint}")
        return value.strip()

    def text_list(self, value: Any, path: str) -> tuple[str, ...] | object:
        if not isinstance(value, list):
            brackets = isinstance(value, str) and any(c in value for c in "【】［］")
            return self.add(path, "应为列表（如 [A, B]）" + (
                "：列表须用半角方括号 [ ]，不能用【】或［］" if brackets else ""))
        if not value:
            return self.add(path, "列表不能为空（不设此条件请删除该字段）")
        items = [self.text(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if any(v is _BAD for v in items):
            return _BAD
        return tuple(dict.fromkeys(items))  # duplicates in a list change nothing


# the Chinese words a clerk writes for the document's words ("累进" alone is either style)
_CHOICE_WORDS = {
    **{w: "amount" for w in ("金额", "含税金额", "销售额", "采购额", "按金额")},
    **{w: "quantity" for w in ("数量", "销量", "件数", "台数", "按数量")},
    **{w: "month" for w in ("月", "月度", "按月", "每月", "自然月")},
    **{w: "quarter" for w in ("季", "季度", "按季", "按季度", "每季度", "自然季度")},
    **{w: "retroactive" for w in ("追溯", "全额", "全额追溯", "全额累进", "追溯返利")},
    **{w: "marginal" for w in ("分段", "超额累进", "分段累进", "超额", "分段返利")},
    **{w: "stack" for w in ("叠加", "可叠加")},
    **{w: "exclusive" for w in ("互斥", "不叠加", "排他", "不可叠加")},
    **{w: "pass" for w in ("通过", "视为满足", "视为通过")},
    **{w: "fail" for w in ("不通过", "不享受", "视为不满足")},
}
_QUOTES = "“”‘’「」"
# what YAML leaves of a number after its comma inside braces: 000 of 100,000, 500.50 of
# 12,500.50, 5 of 1000,5, 5% of 2,5%
_CUT_TAIL = re.compile(r"^\d+(\.\d+)?\s*[%％]?$")  # also `12,5 %`: the tail is "5 %"
# the fields read as rates (`_Check.rate`): a comma in them is a decimal comma, never thousands
_RATE_FIELDS = ("rate", "min")
_GROUPED = re.compile(r"^[+-]?\d{1,3}([,，]\d{3})+(\.\d+)?$")  # also a full-width comma
# thousands separators read as such (half-width by then): 1,000,000 and 12,500.50; not 0,125
# nor 1,00,000 nor 12,5 (a decimal comma)
_THOUSANDS = re.compile(r"^[+-]?[1-9]\d{0,2}(,\d{3})+(\.\d+)?$")
# a decimal comma (12,5 or 1.000,5 with dots grouping the thousands: not Chinese usage, and a
# misread would pay ten or a thousand times): refused with the number it most likely means
_DECIMAL_COMMA = re.compile(r"^([+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)),(\d+)$")
_DOT_GROUPED = re.compile(r"^[+-]?[1-9]\d{0,2}(\.\d{3}){2,}$")  # 1.000.000
_WAN_GROUPED = re.compile(r"^[+-]?[1-9]\d{0,3}(,\d{4})+$")  # 1,0000: digits by 万, not a decimal
_SCALED = re.compile(r"^([+-]?(\d+(\.\d*)?|\.\d+))\s*(万|千|亿)\s*(元|件|台|盒)?$")
_WITH_UNIT = re.compile(r"^([+-]?(\d+(\.\d*)?|\.\d+))\s*(元|件|台|盒)$")
_SCALES = {"千": 3, "万": 4, "亿": 8}
# a bound written with its comparison: ≥90%, >=100000, 不低于 90%, 10万以上
_COMPARED = re.compile(r"^(?:(?P<op>≥|>=|＞＝|≧|不低于|不少于|达到|满|>|＞|超过)\s*(?P<a>.+?)"
                       r"|(?P<b>.+?)\s*(?:及以上|以上))$")
_TRAILING = "。；，、;,.： "  # punctuation a number copied from a sentence keeps
_STRICT = (">", "＞", "超过")  # its bound is not the number itself: no guess


def _number_hint(value: Any, grouped: bool = True) -> str:
    """How to write a number a clerk wrote the way people say it: `（“10万”请写成 100000）`.
    `grouped`: as in `_Check.number` (False for a rate: a comma is a decimal comma)."""
    if not isinstance(value, str):
        return ""
    text = value.strip()
    bare = text.strip(_QUOTES).strip()
    if bare != text and bare and _NUMBER_RE.match(bare.rstrip("%％").strip()):
        return f"（中文引号须去掉，写成 {bare}）"
    if (cut := text.rstrip(_TRAILING).strip()) != text and cut \
            and _NUMBER_RE.match(cut.rstrip("%％").strip()):  # 1%； copied with its sentence
        return f"（末尾多了“{text[len(cut):].strip()}”，请写成 {cut}）"
    if m := _COMPARED.match(text):  # the threshold itself is 达到/不低于: only the number
        inner = (m["a"] or m["b"]).strip()
        plain = inner.rstrip("%％").strip()
        if m["op"] not in _STRICT and _NUMBER_RE.match(plain):
            written = plain + ("%" if plain != inner else "")
            return f"（“{text}”请写成 {written}：只写数字，不加比较词或符号，达到该值即适用）"
        return f"（“{text}”只写数字，不加比较词或符号，达到该值即适用）{_number_hint(inner, grouped)}"
    if _NUMBER_RE.match(text.rstrip("%％").strip()) and text.count("%") + text.count("％") > 1:
        return f"（“{text}”多了百分号，请写成 {text.rstrip('%％').strip()}%）"
    if text.endswith("‰") and _NUMBER_RE.match(text[:-1].strip()):  # per mille
        percent = plain_number(Decimal(text[:-1].strip()).scaleb(-1))
        return f"（“{text}”是千分比，请写成百分比 {percent}%）"
    if said := _decimal_comma_hint(text, grouped) or _chinese_number_hint(text):
        return said
    if text[:1] in "¥￥" and _NUMBER_RE.match(text[1:].strip()):
        written = plain_number(Decimal(text[1:].strip()))
    elif grouped and _GROUPED.match(text):
        written = text.replace(",", "").replace("，", "")
    elif m := _SCALED.match(text):
        written = plain_number(Decimal(m.group(1)).scaleb(_SCALES[m.group(4)]))
    elif m := _WITH_UNIT.match(text):
        written = plain_number(Decimal(m.group(1)))
    else:
        return ""
    return f"（“{text}”请写成 {written}：金额以元、数量以件为单位，只写数字）"


def _decimal_comma_hint(text: str, grouped: bool = True) -> str:
    """`（逗号不能作小数点：如指 12.5%，请写成 12.5%）` for 12,5% or 1.000,5 (1000.5); 1.000.000
    (dots grouping the thousands) and 1,0000 (commas grouping by 万: 10000, not 1) likewise;
    '' otherwise. `grouped` False (a rate): every comma is a decimal comma (0,025; 2,5 —
    meant as 2.5 %, the fraction 2.5 being no rate)."""
    half = text.translate(HALF_WIDTH).strip()
    percent = half.endswith("%")
    body = half[:-1].strip() if percent else half
    if _DOT_GROUPED.match(body):
        meant = body.replace(".", "") + ("%" if percent else "")
        return f"（“{text}”请写成 {meant}：千位分隔符只能用逗号“,”，也可以不写）"
    if grouped and not percent and _WAN_GROUPED.match(body):  # four digits a group (万): never a ¥1
        return f"（“{text}”请写成 {body.replace(',', '')}：逗号只能三位一组分隔千位，也可以不写）"
    found = _DECIMAL_COMMA.match(body)
    if not found or (grouped and not percent and _THOUSANDS.match(body)):
        return ""
    number = Decimal(f"{found.group(1).replace('.', '')}.{found.group(2)}")
    # a rate above 1 as a fraction is refused: 2,5 in a rate is 2.5 %
    meant = plain_number(number) + ("%" if percent or (not grouped and number > 1) else "")
    return f"（逗号不能作小数点，小数点请用半角“.”：如指 {meant}，请写成 {meant}）"


# Chinese numerals, also the capital forms (大写) contracts write amounts in: 壹拾万元
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "壹": 1, "二": 2, "两": 2, "贰": 2, "三": 3, "叁": 3,
              "四": 4, "肆": 4, "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7, "八": 8,
              "捌": 8, "九": 9, "玖": 9}
_CN_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_CN_CHARS = frozenset(_CN_DIGITS) | frozenset(_CN_UNITS) | frozenset("万亿")
_CN_NUMERAL = re.compile(f"^[{''.join(sorted(_CN_CHARS))}]+(点[{''.join(sorted(_CN_DIGITS))}]+)?$")
_CN_PERCENT = re.compile(r"^(百分之|千分之)(.+)$|^(.+?)\s*%$")
# what an amount (or a quantity) is wrapped in as a contract writes it: 人民币壹拾万元整,
# 100000元整, 300台
_CN_AMOUNT = re.compile(r"^(?:人民币)?\s*(.*?)\s*(?:[元圆件台盒]整?|整)?$")


def _chinese_number(text: str) -> Decimal | None:
    """十二点五 → 12.5, 一百二十万 → 1200000, 一千零五 → 1005, 人民币壹拾万元整 → 100000 (or
    12.5 written in digits, as after 百分之, and 100000元整); None for anything else."""
    text = _CN_AMOUNT.match(text.strip()).group(1)
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return Decimal(text)
    if not _CN_NUMERAL.match(text) or len(text) > 40:  # (no real number is that long)
        return None
    whole, _, fraction = text.partition("点")
    total = section = 0
    digit: int | None = None
    for c in whole:
        if c in _CN_DIGITS:
            if digit:  # 一二: digits in a row are no number people say
                return None
            digit = _CN_DIGITS[c]
        elif c in _CN_UNITS:
            section += (1 if digit is None else digit) * _CN_UNITS[c]  # 十二: 一 unsaid
            digit = None
        elif c == "万":
            total, section, digit = total + (section + (digit or 0)) * 10 ** 4, 0, None
        else:  # 亿
            total, section, digit = (total + section + (digit or 0)) * 10 ** 8, 0, None
    places = "".join(str(_CN_DIGITS[c]) for c in fraction)
    return Decimal(f"{total + section + (digit or 0)}{'.' + places if places else ''}")


def _chinese_number_hint(text: str) -> str:
    """`（“百分之十二点五”请写成 12.5%）`, `（“十万”请写成 100000：…）`; '' for any other text."""
    if not any(c in _CN_CHARS for c in text) and _CN_AMOUNT.match(text).group(1) == text:
        return ""  # 12.5% or a word: not this hint's
    found = _CN_PERCENT.match(text)
    if found:
        number = _chinese_number((found.group(2) or found.group(3)).strip())
        if number is None:
            return ""
        if found.group(1) == "千分之":
            number = number.scaleb(-1)
        return f"（“{text}”请写成 {plain_number(number)}%）"
    number = _chinese_number(text)
    if number is None:
        return ""
    return f"（“{text}”请写成 {plain_number(number)}：金额以元、数量以件为单位，只写数字）"


# dates as people and spreadsheets write them: 2027/1/1, 2027.1.1, 2027年1月1日, 20270101,
# 2027-01-01 00:00:00 (a date cell exported with its time), an Excel serial number (46388)
_DATE_PART = r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
_SPOKEN_DATE = re.compile(rf"^{_DATE_PART}$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
# a time zone (a script's toISOString: 2026-12-31T16:00:00.000Z is 1 January in Shanghai)
_DATE_TIME = re.compile(rf"^{_DATE_PART}(?:T|\s+)(\d{{1,2}}):(\d{{2}})(?::(\d{{2}})(?:\.\d+)?)?"
                        r"(Z|[+-]\d{2}:?\d{2})?$")
_EXCEL_EPOCH = dt.date(1899, 12, 30)  # serial 1 is 1900-01-01 (Excel's phantom 1900-02-29)


def _date_hint(value: Any) -> str:
    """How to write a date written another way: `（“2027/1/1”请写成 2027-01-01）`; '' when
    the value is no recognisable date."""
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value.translate(HALF_WIDTH).strip()
    else:
        return ""
    found = _SPOKEN_DATE.match(text) or _COMPACT_DATE.match(text) or _DATE_TIME.match(text)
    if found:
        try:
            day = dt.date(*map(int, found.group(1, 2, 3)))
            zone = found.group(7) if found.re is _DATE_TIME else None
            if zone:  # the business date is Shanghai's
                offset = dt.timedelta() if zone == "Z" else (1 if zone[0] == "+" else -1) * (
                    dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[-2:])))
                moment = dt.datetime.combine(day, dt.time(*map(int, (
                    found.group(4), found.group(5), found.group(6) or 0))), dt.timezone(offset))
                day = moment.astimezone(SHANGHAI).date()
        except ValueError:
            return ""
        if found.re is _DATE_TIME:
            return f"（只写日期，不带时间：{f'该时刻在北京时间是 {day}，' if zone else ''}请写成 {day}）"
    elif re.fullmatch(r"\d{5}", text):
        day = _EXCEL_EPOCH + dt.timedelta(days=int(text))
        if not FIRST_DATE <= day <= LAST_DATE:
            return ""
        return f"（像是 Excel 的日期序号，即 {day}：请写成 {day}）"
    else:
        return ""
    return f"（“{text}”请写成 {day}）" if FIRST_DATE <= day <= LAST_DATE else ""


def _written_hint(text: str, pattern: re.Pattern) -> str:
    """`；含全角字符，请写成 T-X` for a code or id typed full-width, or holding an invisible
    character (a zero-width space copied along), that is valid without them; else ''."""
    half = text.translate(HALF_WIDTH)
    if half != text and pattern.match(half):
        return f"；含全角字符，请写成 {half}"
    visible = "".join(c for c in half if unicodedata.category(c) != "Cf")
    if visible != half and pattern.match(visible):
        return f"；含看不见的字符（如零宽空格），请删除后写成 {visible}"
    # what Word or a chat app makes of it: “quotes”, a dash (–, —) for the hyphen
    plain = _DASHES.sub("-", visible.strip().strip(_QUOTES + "\"'").strip())
    if plain != text and pattern.match(plain):
        return f"；请写成 {plain}（不加引号，连字符用半角“-”）"
    return ""


_DASHES = re.compile("[\u2010-\u2015\u2212\uff0d]")  # ‐ ‑ ‒ – — ― − －


def _id_hint(text: str) -> str:
    """`；请写成 quarter-volume` for a rule id written in capitals, with `_` or spaces
    (`Quarter_Volume`, `R1`) that is valid in lower case with hyphens; else ''."""
    meant = re.sub(r"[\s_]+", "-", text.translate(HALF_WIDTH).strip()).lower()
    return f"；请写成 {meant}" if meant != text and _RULE_ID_RE.match(meant) else ""


_NOISE = Decimal("1e-12")  # relative: a binary float's error is below 1e-15 of the value


def _float_noise_hint(number: Decimal, percent: bool) -> str:
    """`（像是电子表格导出的浮点误差：如指 0.023，请写成 0.023）` for a number such as
    0.022999999999999999 or 0.30000000000000004 that a spreadsheet's binary arithmetic made
    of a short decimal (at most 6 places); '' for any other."""
    for places in range(7):
        near = number.quantize(Decimal(1).scaleb(-places))
        if near != number and abs(near - number) <= abs(number) * _NOISE:
            written = plain_number(near) + ("%" if percent else "")
            return f"（像是电子表格导出的浮点误差：如指 {written}，请写成 {written}）"
    return ""


def _written_as_percent(value: Any) -> bool:
    return isinstance(value, str) and value.replace("％", "%").strip().endswith("%")


def _rate_text(value: Any) -> str:
    return str(value).strip()


_SHOWN = reprlib.Repr()
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlevel = 60, 60, 2


def _shown(value: Any) -> str:
    """A value as a problem quotes it: short, whatever the document holds (anchors can
    make a list of a billion items)."""
    text = _SHOWN.repr(str(value) if isinstance(value, Decimal) else value)
    return text if len(text) <= 80 else text[:79] + "…"


def _places(number: Decimal) -> int:
    """Decimal places that matter (1.50 has one), without the decimal context."""
    _, digits, exponent = number.as_tuple()
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -exponent - trailing) if trailing < len(digits) else 0


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    """`（是否应为 tiers？）` when one of `options` is close to `word`, else ''."""
    near = _close_match(word, options)
    return f"（是否应为 {near}？）" if near else ""


def _close_match(word: str, options: Iterable[str], key=str.casefold) -> str | None:
    """The option `word` most likely meant: the same up to `key` (case), else the closest."""
    keyed: dict[str, str] = {}
    for option in options:
        keyed.setdefault(key(option), option)
    if key(word) in keyed:
        return keyed[key(word)]
    near = difflib.get_close_matches(key(word), list(keyed), n=1, cutoff=0.6)
    return keyed[near[0]] if near else None


def _canon(d: Decimal) -> Decimal:
    """One spelling per value (12.50 → 12.5, 1E+5 → 100000) so the JSON form is stable."""
    d = d.normalize()
    if d.as_tuple().exponent > 0:
        d = d.quantize(Decimal(1))
    return d + 0 if d == 0 else d  # -0 → 0


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


# --------------------------------------------------------------------------- the schema

# Every mapping a document holds — its place, the path with i, j for the list indices — and
# the fields it takes. The readers take their fields from here (`_Check.mapping`), and so do
# the messages that say where a field written at the wrong level belongs: one list.
_SCHEMA: dict[str, tuple[str, ...]] = {
    "": ("code", "name", "effective_from", "effective_to", "text", "rules"),
    "rules[i]": ("id", "name", "clause", "applies_to", "exclude", "measure", "period", "style",
                 "tiers", "cap", "priority", "stacking"),
    "rules[i].applies_to": ("product_lines", "skus", "customer_tiers", "regions",
                            "order_dates", "payment_rate"),
    "rules[i].applies_to.order_dates": ("from", "to"),
    "rules[i].applies_to.payment_rate": ("min", "no_history"),
    "rules[i].exclude": ("skus", "product_lines", "customers"),
    "rules[i].tiers[j]": ("from", "to", "rate"),
    "rules[i].cap": ("amount_per_period",),
}
_EXCLUDE_FIELDS = _SCHEMA["rules[i].exclude"]

# The Chinese names a clerk writes for the schema's fields (and the English ones a template
# from elsewhere uses: effective_date), one entry per field. A name may stand for fields of
# different places (开始日期: the policy's effective_from, or the from of order_dates; 条款:
# the rules at the top, a rule's clause inside one): the place it is written in says which.
# Never for two fields of one place.
_FIELD_WORDS: dict[str, tuple[str, ...]] = {
    "code": ("政策编码", "政策编号", "政策代码", "编码", "代码", "编号"),
    "name": ("名称", "政策名称", "规则名称", "条款名称", "标题", "名字"),
    "effective_from": ("生效日期", "生效日", "生效时间", "开始日期", "起始日期", "执行日期",
                       "effective_date", "start_date", "valid_from", "begin_date"),
    "effective_to": ("失效日期", "失效日", "截止日期", "结束日期", "终止日期", "到期日期",
                     "end_date", "valid_to", "valid_until", "expiry_date", "expire_date"),
    "text": ("正文", "政策正文", "政策原文", "原文", "政策内容", "内容"),
    "rules": ("规则", "返利规则", "条款", "返利条款", "规则列表"),
    "id": ("规则编号", "规则编码", "规则代码", "条款编号", "编号", "编码"),
    "clause": ("条款", "条款号", "条次", "条款序号", "第几条", "引用条款"),
    "applies_to": ("适用条件", "适用范围", "条件", "适用", "适用于"),
    "exclude": ("排除", "排除条件", "除外", "例外", "不适用", "排除范围"),
    "measure": ("计量", "计量方式", "口径", "计算口径", "考核口径", "统计口径", "计返口径"),
    "period": ("期间", "周期", "结算周期", "考核周期", "统计周期", "考核期间", "结算期间"),
    "style": ("方式", "返利方式", "计算方式", "计返方式", "累进方式", "返利类型"),
    "tiers": ("阶梯", "阶梯门槛", "档位", "档次", "阶梯档位", "门槛", "档位列表"),
    "cap": ("封顶", "返利封顶", "上限", "返利上限", "封顶金额"),
    "priority": ("优先级", "优先顺序", "优先"),
    "stacking": ("叠加", "叠加方式", "是否叠加", "叠加规则", "互斥"),
    "product_lines": ("产品线", "产品系列", "产品类别"),
    "skus": ("产品", "商品", "型号", "产品型号", "物料", "物料编码", "产品编码", "商品编码"),
    "customer_tiers": ("客户等级", "经销商等级", "客户级别", "等级", "级别"),
    "regions": ("大区", "区域", "地区", "销售大区", "片区"),
    "order_dates": ("订单日期", "下单日期", "订单期间", "适用期间", "适用日期", "下单期间"),
    "payment_rate": ("回款率", "回款条件", "回款", "近3个月回款率", "近三个月回款率"),
    "customers": ("客户", "排除客户", "经销商", "客户名单"),
    "from": ("起点", "起始", "下限", "从", "起", "门槛", "开始日期", "起始日期", "开始",
             "start_date"),
    "to": ("止点", "止", "至", "到", "截止", "截止日期", "结束日期", "上限", "end_date"),
    "rate": ("返利比例", "比例", "返利率", "返点", "点数", "返利点", "返利点数", "费率", "比率"),
    "min": ("最低", "最低回款率", "下限", "不低于", "最低比例", "最低值"),
    "no_history": ("无记录时", "无历史", "无历史记录", "无回款记录", "无应收时", "无数据时"),
    "amount_per_period": ("封顶金额", "每期封顶", "每期上限", "金额", "每期金额", "上限金额"),
}
# field name → the places it is valid in, and written name → the fields it may stand for
_FIELD_PLACES: dict[str, tuple[str, ...]] = {}
for _place_name, _fields in _SCHEMA.items():
    for _field in _fields:
        _FIELD_PLACES[_field] = (*_FIELD_PLACES.get(_field, ()), _place_name)
_WORD_FIELDS: dict[str, tuple[str, ...]] = {}
for _field, _words in _FIELD_WORDS.items():
    for _word in (_field, *_words):
        _WORD_FIELDS[_word] = (*_WORD_FIELDS.get(_word, ()), _field)


def _place(path: str) -> str:
    """The schema's place of a mapping's path: rules[0].tiers[2] → rules[i].tiers[j]."""
    letters = iter("ij")
    return re.sub(r"\[\d+\]", lambda _: f"[{next(letters)}]", path)


def _where(field: str, beside: bool = True) -> str:
    """Where a field is written, as a message says it: `rules[i].tiers[j] 下（与 from、to
    同级）`, `文档顶层（不缩进，与 code、name 同级）`; `beside`: with its neighbours, when it
    has one place."""
    places = _FIELD_PLACES[field]
    said = []
    for place in places:
        others = [f for f in _SCHEMA[place] if f != field][:2]
        gloss = f"与 {'、'.join(others)} 同级" if others and beside and len(places) == 1 else ""
        if not place:
            said.append("文档顶层" + (f"（不缩进，{gloss}）" if gloss else ""))
        else:
            said.append(f" {place} 下" + (f"（{gloss}）" if gloss else ""))
    return "或".join(said)


def _field_word(key: str) -> str:
    """A key as `_WORD_FIELDS` knows it: half-width, without spaces or quotes, lower case."""
    word = unicodedata.normalize("NFKC", key)
    return re.sub(r"[\s" + _QUOTES + "\"'“”]", "", word).rstrip(":").casefold()


def _meant_fields(key: str, path: str) -> tuple[str, ...]:
    """The fields a key the schema does not know stands for (生效日期 → effective_from;
    ｒａｔｅ → rate): those of the mapping's own place when there are any."""
    meant = _WORD_FIELDS.get(_field_word(key), ())
    here = tuple(f for f in meant if f in _SCHEMA[_place(path)])
    return here or meant


def _shaped_like(path: str, value: Any) -> list[str]:
    """The fields of the mapping at `path` whose place takes every key of `value` (a mapping,
    or a list of mappings): what an unknown key holding it most likely stands for
    (`conditions: {regions: [华东]}` → applies_to)."""
    # each mapping once: anchors can repeat one mapping any number of times
    items = list({id(v): v for v in (value if isinstance(value, list) else [value])}.values())
    keys = {str(k) for item in items if isinstance(item, dict) for k in item}
    if not keys or not all(isinstance(item, dict) for item in items):
        return []
    list_path = "[0]" if isinstance(value, list) else ""
    return [f for f in _SCHEMA[_place(path)]
            if keys <= set(_SCHEMA.get(_place(f"{_join(path, f)}{list_path}"), ()))]


def _unknown_field(key: str, path: str, value: Any = None) -> str:
    """What a key the mapping at `path` does not take is, and where it goes."""
    allowed = _SCHEMA[_place(path)]
    if key in _FIELD_PLACES:  # a real field, written at the wrong level
        return f"不属于此处：{key} 应写在{_where(key)}"
    meant = _meant_fields(key, path)
    if len(meant) == 1 and meant[0] in allowed:
        return f"字段“{key}”无法识别：请写作 {meant[0]}"
    if meant:
        return f"字段“{key}”无法识别：请写作 " + "或 ".join(
            f"{f}（写在{_where(f, beside=False)}）" for f in meant)
    hint = _did_you_mean(key, allowed)
    if not hint and (shaped := _shaped_like(path, value)):
        hint = f"（其中的字段属于 {' 或 '.join(shaped)}：是否应为 {' 或 '.join(shaped)}？）"
    return f"未知字段{hint}；可用字段：{'、'.join(allowed)}"


def parse_policy_document(text: str) -> PolicySpec:
    """Read and validate a policy document (YAML or JSON). Raises PolicyDocumentError with
    every problem found."""
    return _parse(text, authoring=True)


def _parse(text: str, authoring: bool) -> PolicySpec:
    data = _load_text(text)
    check = _Check(authoring)
    spec = _read_policy(data, check)
    if check.problems or spec is _BAD:
        raise PolicyDocumentError(check.problems or [Problem("", "文档无效")])
    return spec


def _read_policy(data: Any, check: _Check) -> PolicySpec | object:
    if data is None:  # nothing but blank lines and comments (the wrong file, an unfilled draft)
        return check.add("", "文档为空：没有任何字段（只有空行或注释），请检查是否选错了文件")
    if isinstance(data, list):  # a table exported row by row, or one policy in brackets
        one = len(data) == 1 and isinstance(data[0], dict)
        return check.add("", "应为键值映射（字段: 值）：一个文件写一份政策 { … }，不能是列表 [ … ]"
                             + ("；请去掉最外层的方括号" if one else ""))
    if check.mapping(data, "", ("code", "name", "effective_from", "rules")) is _BAD:
        return _BAD
    code = name = start = end = text = _MISSING
    if data.get("code") is not None:
        code = check.text(data["code"], "code")
        if code is not _BAD and not _CODE_RE.match(code):
            code = check.add("code", "政策编码只能用字母、数字、点、下划线和连字符，以字母或数字"
                                     f"开头，最长 40 个字符（实为 {code!r}）"
                                     f"{_written_hint(code, _CODE_RE)}")
    if data.get("name") is not None:
        name = check.text(data["name"], "name", max_len=120)
    if data.get("effective_from") is not None:
        start = check.date(data["effective_from"], "effective_from")
    end = None
    if data.get("effective_to") is not None:
        end = check.date(data["effective_to"], "effective_to")
        if isinstance(start, dt.date) and isinstance(end, dt.date) and end < start:
            check.add("effective_to", f"失效日期 {end} 早于生效日期 {start}")
    text = None
    if data.get("text") is not None:
        text = check.text(data["text"], "text")

    rules: list = []
    raw_rules = data.get("rules")
    if raw_rules is not None:
        if not isinstance(raw_rules, list):
            check.add("rules", "应为规则列表")
        elif not raw_rules:
            check.add("rules", "至少需要一条规则")
        else:
            first_seen: dict[str, int] = {}
            for i, raw in enumerate(raw_rules):
                rule = _read_rule(raw, f"rules[{i}]", check)
                rules.append(rule)
                rid = raw.get("id") if isinstance(raw, dict) else None
                if isinstance(rid, str) and rid.strip():
                    rid = rid.strip()
                    if rid in first_seen:
                        check.add(f"rules[{i}].id",
                                  f"规则 id 与 rules[{first_seen[rid]}].id 重复（{rid}）")
                    else:
                        first_seen[rid] = i
    if (check.authoring and isinstance(start, dt.date) and end is not _BAD
            and (end is None or end >= start)):  # (dates the wrong way round: said above)
        _check_rule_windows(rules, start, end, check)
    if check.problems or _BAD in (code, name, start, end, text) or _BAD in rules:
        return _BAD
    return PolicySpec(code=code, name=name, effective_from=start, effective_to=end, text=text,
                      rules=tuple(rules))


def _check_rule_windows(rules: list, start: dt.date, end: dt.date | None,
                        check: _Check) -> None:
    """A rule whose order dates lie wholly outside the policy's effective dates would never
    apply (a copied policy whose dates were changed in one place only)."""
    for i, rule in enumerate(rules):
        w = rule.applies_to.order_dates if isinstance(rule, RuleSpec) else None
        if w is None:
            continue
        if (w.end is not None and w.end < start) or (
                end is not None and w.start is not None and w.start > end):
            check.add(f"rules[{i}].applies_to.order_dates",
                      f"条款适用期（{w.start or '不限'} 至 {w.end or '不限'}）与政策生效期"
                      f"（{start} 至 {end or '长期'}）没有重叠，本条款不会适用于任何订单"
                      "（请核对两处日期）")


def _read_rule(raw: Any, path: str, check: _Check) -> RuleSpec | object:
    if check.mapping(raw, path, ("id", "measure", "period", "style", "tiers", "priority",
                                 "stacking")) is _BAD:
        return _BAD
    ok = True

    def take(value):
        nonlocal ok
        if value is _BAD:
            ok = False
        return value

    rid = None
    if raw.get("id") is not None:
        rid = take(check.text(raw["id"], f"{path}.id"))
        if rid is not _BAD and not _RULE_ID_RE.match(rid):
            rid = take(check.add(f"{path}.id", "规则 id 只能用小写字母、数字和连字符 [a-z0-9-]，"
                                               f"最长 40 个字符（实为 {rid!r}）"
                                               f"{_written_hint(rid, _RULE_ID_RE) or _id_hint(rid)}"))
    name = rid
    if raw.get("name") is not None:
        name = take(check.text(raw["name"], f"{path}.name", max_len=120))
    clause = None
    if raw.get("clause") is not None:
        clause = take(check.text(raw["clause"], f"{path}.clause", max_len=120))
    measure = period = style = stacking = None
    if raw.get("measure") is not None:
        measure = take(check.choice(raw["measure"], f"{path}.measure", MEASURES))
    if raw.get("period") is not None:
        period = take(check.choice(raw["period"], f"{path}.period", PERIODS))
    if raw.get("style") is not None:
        style = take(check.choice(raw["style"], f"{path}.style", STYLES))
    if raw.get("stacking") is not None:
        stacking = take(check.choice(raw["stacking"], f"{path}.stacking", STACKINGS))
    priority = None
    if raw.get("priority") is not None:
        priority = take(check.integer(raw["priority"], f"{path}.priority"))

    applies = take(_read_applies(raw.get("applies_to"), f"{path}.applies_to", check))
    exclude = take(_read_exclude(raw.get("exclude"), f"{path}.exclude", check))
    tiers = None
    if raw.get("tiers") is not None:
        tiers = take(_read_tiers(raw["tiers"], f"{path}.tiers", measure, check))
    cap = None
    if raw.get("cap") is not None:
        cap = take(_read_cap(raw["cap"], f"{path}.cap", check))
    if not ok or None in (rid, measure, period, style, tiers, priority, stacking):
        return _BAD
    return RuleSpec(id=rid, name=name, clause=clause, applies_to=applies, exclude=exclude,
                    measure=measure, period=period, style=style, tiers=tiers, cap=cap,
                    priority=priority, stacking=stacking)


def _read_applies(raw: Any, path: str, check: _Check) -> AppliesTo | object:
    if raw is None:
        return AppliesTo()
    if check.mapping(raw, path) is _BAD:
        return _BAD
    values: dict[str, Any] = {}
    for key in ("product_lines", "skus", "customer_tiers", "regions"):
        if raw.get(key) is not None:
            values[key] = check.text_list(raw[key], f"{path}.{key}")
    if raw.get("order_dates") is not None:
        values["order_dates"] = _read_window(raw["order_dates"], f"{path}.order_dates", check)
    if raw.get("payment_rate") is not None:
        values["payment_rate"] = _read_payment(raw["payment_rate"], f"{path}.payment_rate",
                                               check)
    if _BAD in values.values():
        return _BAD
    return AppliesTo(**values)


def _read_window(raw: Any, path: str, check: _Check) -> DateWindow | object:
    if check.mapping(raw, path) is _BAD:
        return _BAD
    start = end = None
    if raw.get("from") is not None:
        start = check.date(raw["from"], f"{path}.from")
    if raw.get("to") is not None:
        end = check.date(raw["to"], f"{path}.to")
    if start is None and end is None:
        return check.add(path, "至少写 from 或 to 之一")
    if isinstance(start, dt.date) and isinstance(end, dt.date) and end < start:
        return check.add(f"{path}.to", f"截止日期 {end} 早于起始日期 {start}")
    if _BAD in (start, end):
        return _BAD
    return DateWindow(start, end)


def _read_payment(raw: Any, path: str, check: _Check) -> PaymentRateCondition | object:
    if check.mapping(raw, path, ("min",), single="min") is _BAD:
        return _BAD
    minimum = no_history = _BAD
    if raw.get("min") is not None:
        value = raw["min"]
        minimum = check.rate(value, f"{path}.min", whole="要求全额按期回款")
        # "0.9%": the fraction the docs teach (0.9 = 90 %) with the habitual percent sign; a
        # payment-rate bar under 1 % is no business condition, and would pay nearly everyone
        if (minimum is not _BAD and 0 < minimum < Decimal("0.01") and isinstance(value, str)
                and value.strip().replace("％", "%").endswith("%")):
            meant, percent = plain_number(minimum.scaleb(2)), plain_number(minimum.scaleb(4))
            minimum = check.add(f"{path}.min", f"回款率门槛 {value.strip()} 过低，像是把 {meant}（即 "
                                f"{percent}%）写成了 {value.strip()}：如指 {percent}%，请写成 "
                                f"\"{percent}%\" 或 {meant}")
    no_history = "fail"
    if raw.get("no_history") is not None:
        no_history = check.choice(raw["no_history"], f"{path}.no_history", NO_HISTORY)
    if _BAD in (minimum, no_history):
        return _BAD
    return PaymentRateCondition(min=minimum, no_history=no_history)


def _read_exclude(raw: Any, path: str, check: _Check) -> Exclusions | object:
    if raw is None:
        return Exclusions()
    if check.mapping(raw, path) is _BAD:
        return _BAD
    values = {}
    for key in _EXCLUDE_FIELDS:
        if raw.get(key) is not None:
            values[key] = check.text_list(raw[key], f"{path}.{key}")
    customers = values.get("customers")
    for i, name in enumerate(customers if isinstance(customers, tuple) else ()):
        if not normalize_name(name):  # would match every nameless key
            values["customers"] = check.add(f"{path}.customers[{i}]",
                                            f"“{name}”没有可识别的文字，不是客户名称或信用代码")
    if _BAD in values.values():
        return _BAD
    return Exclusions(**values)


def _read_cap(raw: Any, path: str, check: _Check) -> Decimal | object:
    if check.mapping(raw, path, ("amount_per_period",), single="amount_per_period") is _BAD:
        return _BAD
    if raw.get("amount_per_period") is None:
        return _BAD
    where = f"{path}.amount_per_period"
    amount = check.number(raw["amount_per_period"], where)
    if amount is _BAD:
        return _BAD
    if amount <= 0:
        return check.add(where, f"封顶金额必须大于 0（实为 {plain_number(amount)}）")
    if amount.as_tuple().exponent < -2:
        return check.add(where, "金额最多两位小数（分）")
    return amount


def _read_tiers(raw: Any, path: str, measure: str | None,
                check: _Check) -> tuple[TierSpec, ...] | object:
    if not isinstance(raw, list):
        return check.add(path, "应为档位列表")
    if not raw:
        return check.add(path, "至少需要一档")
    before = len(check.problems)
    tiers: list[TierSpec | None] = []
    # bounds as far as they could be read: the sequence is checked even when a rate is wrong
    bounds: list[tuple[Decimal | None, Decimal | None | object]] = []
    for i, item in enumerate(raw):
        tpath = f"{path}[{i}]"
        if check.mapping(item, tpath, ("from", "rate")) is _BAD:
            tiers.append(None)
            bounds.append((None, _BAD))
            continue
        lower = upper = rate = None
        if item.get("from") is not None:
            lower = _threshold(item["from"], f"{tpath}.from", measure, check)
        if item.get("to") is not None:
            upper = _threshold(item["to"], f"{tpath}.to", measure, check)
        if item.get("rate") is not None:
            rate = check.rate(item["rate"], f"{tpath}.rate")
            if (check.authoring and isinstance(rate, Decimal) and rate > BARE_RATE_MAX
                    and not _written_as_percent(item["rate"])):
                # 0.5 as a fraction is 50 %: far more likely 0.5 % without its sign
                shown = plain_number(rate)
                rate = check.add(f"{tpath}.rate", (
                    f"比例 {shown} 即 {exact_percent(rate)}，可能漏写了百分号：如指 {shown}%，"
                    f"请写成 \"{shown}%\"；如确为 {exact_percent(rate)}，请写成 "
                    f"\"{exact_percent(rate)}\""))
        if isinstance(lower, Decimal) and isinstance(upper, Decimal) and upper <= lower:
            upper = check.add(f"{tpath}.to", f"止点 {plain_number(upper)} 必须大于起点 "
                                             f"{plain_number(lower)}")
        bounds.append((lower if isinstance(lower, Decimal) else None, upper))
        if None in (lower, rate) or _BAD in (lower, upper, rate):
            tiers.append(None)
        else:
            tiers.append(TierSpec(lower=lower, upper=upper, rate=rate))
    # listed from the top tier down (as a policy text often reads: 50万以上8%，10万以上5%…):
    # the order is the slip, not an overlap of each tier with the one above it
    lowers = [lower for lower, _ in bounds]
    if all(isinstance(x, Decimal) for x in lowers) and lowers != sorted(lowers):
        i = next(i for i in range(1, len(lowers)) if lowers[i] < lowers[i - 1])
        check.add(f"{path}[{i}].from", (
            f"档位须按起点从小到大排列：本档起于 {plain_number(lowers[i])}，小于上一档的起点 "
            f"{plain_number(lowers[i - 1])}，请把起点小的档位写在前面"))
        bounds = []
    # sequence: tier n+1 starts exactly where tier n ends; only the last may be open
    for i in range(1, len(bounds)):
        prev_upper = bounds[i - 1][1]
        cur_lower = bounds[i][0]
        if prev_upper is None:
            check.add(f"{path}[{i - 1}].to", "只有最后一档可以不写止点（to）")
            continue
        if prev_upper is _BAD or cur_lower is None:
            continue
        if cur_lower < prev_upper:
            check.add(f"{path}[{i}].from", f"与上一档重叠（上一档止于 {plain_number(prev_upper)}）")
        elif cur_lower > prev_upper:
            hint = ""
            if cur_lower - prev_upper <= 1:
                # “1–10台、11–30台” or “0–99999.99元”: ends written inclusive, as people read
                # a policy text; the fix that comes to mind (from: 10) would move the tenth
                # unit up a tier, so say which figure closes the gap
                hint = (f"；档位含起点、不含止点（to）：如上一档应包含 {plain_number(prev_upper)}，"
                        f"请把上一档的 to 写成 {plain_number(cur_lower)}（与本档 from 相同）")
            check.add(f"{path}[{i}].from",
                      f"与上一档之间有空档（上一档止于 {plain_number(prev_upper)}，"
                      f"本档起于 {plain_number(cur_lower)}）{hint}")
    if len(check.problems) > before:
        return _BAD
    return tuple(tiers)


def _threshold(value: Any, path: str, measure: str | None, check: _Check) -> Decimal | object:
    number = check.number(value, path)
    if number is _BAD:
        return _BAD
    if number < 0:
        return check.add(path, f"门槛不能为负（实为 {plain_number(number)}）")
    if measure == "quantity" and number != number.to_integral_value():
        return check.add(path, f"按数量计的门槛必须是整数（实为 {plain_number(number)}）")
    if measure == "amount" and number.as_tuple().exponent < -2:
        return check.add(path, f"金额门槛最多两位小数（实为 {plain_number(number)}）")
    return number


# --------------------------------------------------------------------------- normalised form

def _spec_to_doc(spec: PolicySpec) -> dict:
    doc: dict[str, Any] = {"code": spec.code, "name": spec.name,
                           "effective_from": spec.effective_from.isoformat(),
                           "rules": [_rule_to_doc(r) for r in spec.rules]}
    if spec.effective_to is not None:
        doc["effective_to"] = spec.effective_to.isoformat()
    if spec.text is not None:
        doc["text"] = spec.text
    return doc


def _num(d: Decimal) -> str:
    return format(d, "f")


def _rule_to_doc(rule: RuleSpec) -> dict:
    doc: dict[str, Any] = {
        "id": rule.id, "name": rule.name, "measure": rule.measure, "period": rule.period,
        "style": rule.style, "priority": rule.priority, "stacking": rule.stacking,
        "tiers": [{"from": _num(t.lower), "rate": _num(t.rate),
                   **({"to": _num(t.upper)} if t.upper is not None else {})}
                  for t in rule.tiers],
    }
    if rule.clause is not None:
        doc["clause"] = rule.clause
    applies: dict[str, Any] = {}
    a = rule.applies_to
    for key in ("product_lines", "skus", "customer_tiers", "regions"):
        if getattr(a, key) is not None:
            applies[key] = list(getattr(a, key))
    if a.order_dates is not None:
        applies["order_dates"] = {
            **({"from": a.order_dates.start.isoformat()} if a.order_dates.start else {}),
            **({"to": a.order_dates.end.isoformat()} if a.order_dates.end else {})}
    if a.payment_rate is not None:
        applies["payment_rate"] = {"min": _num(a.payment_rate.min),
                                   "no_history": a.payment_rate.no_history}
    if applies:
        doc["applies_to"] = applies
    exclude = {k: list(getattr(rule.exclude, k)) for k in _EXCLUDE_FIELDS
               if getattr(rule.exclude, k)}
    if exclude:
        doc["exclude"] = exclude
    if rule.cap is not None:
        doc["cap"] = {"amount_per_period": _num(rule.cap)}
    return doc


# --------------------------------------------------------------------------- versions

@dataclass(frozen=True)
class PublishedVersion:
    code: str
    version: int
    spec: PolicySpec
    published_at: dt.datetime | None = None


@dataclass(frozen=True)
class VersionWindow:
    """The order dates a version governs: `start` … `end` inclusive (None: open). Empty
    (end < start) when a later version took over before it began."""

    code: str
    version: int
    start: dt.date
    end: dt.date | None

    @property
    def empty(self) -> bool:
        return self.end is not None and self.end < self.start

    def contains(self, day: dt.date) -> bool:
        return day >= self.start and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class AppliedRule:
    """A rule as it governs a given order date: which policy, which version."""

    code: str
    version: int
    policy_name: str
    rule: RuleSpec

    @property
    def rule_id(self) -> str:
        return self.rule.id


class PolicyBookError(ValueError):
    pass


class PolicyBook:
    """All published versions of all policy codes; answers which rules govern an order date.

    Version v of a code governs order dates from its `effective_from` up to the day before
    the earliest `effective_from` of any LATER version of the same code (a later version
    supersedes it from its own start, even when back-dated), or its own `effective_to`,
    whichever comes first.
    """

    def __init__(self, versions: Iterable[PublishedVersion]):
        by_code: dict[str, list[PublishedVersion]] = {}
        for v in versions:
            if v.code != v.spec.code:
                raise PolicyBookError(f"版本 {v.code} v{v.version} 的文档编码为 {v.spec.code}")
            by_code.setdefault(v.code, []).append(v)
        self._versions: dict[tuple[str, int], PublishedVersion] = {}
        self._windows: dict[str, list[VersionWindow]] = {}
        problems: list[str] = []
        for code, vs in sorted(by_code.items()):
            vs.sort(key=lambda v: v.version)
            numbers = [v.version for v in vs]
            if len(set(numbers)) != len(numbers):
                raise PolicyBookError(f"政策 {code} 的版本号重复：{numbers}")
            self._versions.update(((code, v.version), v) for v in vs)
            self._windows[code] = _governing_windows(vs)
            for i in range(1, len(vs)):
                problems += [f"{code} 第{vs[i].version}版 {p}"
                             for p in _measure_changes(vs[:i], vs[i].spec, ("measure",))]
        if problems:
            raise PolicyBookError("；".join(problems))
        self._starts = {code: [w.start for w in ws] for code, ws in self._windows.items()}
        self._by_date: dict[dt.date, tuple[AppliedRule, ...]] = {}
        # the engine keeps its compiled form of this book here (see engine.py)
        self.memo: dict[Any, Any] = {}

    @property
    def versions(self) -> list[PublishedVersion]:
        return [self._versions[k] for k in sorted(self._versions)]

    def version(self, code: str, version: int) -> PublishedVersion | None:
        return self._versions.get((code, version))

    def windows(self, code: str | None = None) -> list[VersionWindow]:
        """Non-empty windows, per code in version order."""
        if code is not None:
            return list(self._windows.get(code, []))
        return [w for c in sorted(self._windows) for w in self._windows[c]]

    def version_on(self, code: str, day: dt.date) -> PublishedVersion | None:
        windows = self._windows.get(code)
        if not windows:
            return None
        # windows of one code never overlap and are in start order
        i = bisect.bisect_right(self._starts[code], day) - 1
        if i >= 0 and windows[i].contains(day):
            return self._versions[(code, windows[i].version)]
        return None

    def rules_on(self, day: dt.date) -> tuple[AppliedRule, ...]:
        """Every rule of the version of each code governing `day` (conditions not checked)."""
        hit = self._by_date.get(day)
        if hit is None:
            out = []
            for code in sorted(self._windows):
                v = self.version_on(code, day)
                if v is not None:
                    out.extend(AppliedRule(code, v.version, v.spec.name, r) for r in v.spec.rules)
            hit = self._by_date[day] = tuple(out)
        return hit

    def check_new_version(self, spec: PolicySpec) -> list[Problem]:
        """Problems with publishing `spec` as the next version of its code (empty if none):
        a rule id keeps its measure across versions, because lines of several versions can
        share one bucket and its volume must be in one unit."""
        return _measure_changes(self._of_code(spec.code), spec)

    def lost_coverage(self, spec: PolicySpec) -> list[tuple[dt.date, dt.date | None]]:
        """Stretches of order dates (start, end inclusive; None: open) a version of
        `spec.code` governs now and none would once `spec` is published as its next version:
        an `effective_to` ending before the end of what it supersedes."""
        earlier = self._of_code(spec.code)
        if not earlier:
            return []
        draft = PublishedVersion(spec.code, earlier[-1].version + 1, spec)
        after = [(w.start, w.end) for w in _governing_windows([*earlier, draft])]
        lost: list[tuple[dt.date, dt.date | None]] = []
        for w in self._windows[spec.code]:
            for start, end in _minus((w.start, w.end), after):
                if lost and lost[-1][1] is not None and lost[-1][1] + _DAY == start:
                    start = lost.pop()[0]  # adjacent windows: one stretch
                lost.append((start, end))
        return lost

    def wholly_superseded(self, spec: PolicySpec) -> list[VersionWindow]:
        """The windows of the versions of `spec.code` that govern some order dates now and
        none once `spec` is published as its next version (it starts on or before them)."""
        earlier = self._of_code(spec.code)
        if not earlier:
            return []
        draft = PublishedVersion(spec.code, earlier[-1].version + 1, spec)
        after = {w.version for w in _governing_windows([*earlier, draft])}
        return [w for w in self._windows[spec.code] if w.version not in after]

    def _of_code(self, code: str) -> list[PublishedVersion]:
        return [v for (c, _), v in sorted(self._versions.items()) if c == code]


_DAY = dt.timedelta(days=1)


def _governing_windows(versions: list[PublishedVersion]) -> list[VersionWindow]:
    """The non-empty windows of the versions of one code (given in version order): each
    ends the day before the earliest start of any later version, or at its own end."""
    windows = []
    later_start: dt.date | None = None
    for v in reversed(versions):
        end = v.spec.effective_to
        if later_start is not None:
            end = later_start - _DAY if end is None else min(end, later_start - _DAY)
        windows.append(VersionWindow(v.code, v.version, v.spec.effective_from, end))
        later_start = (v.spec.effective_from if later_start is None
                       else min(later_start, v.spec.effective_from))
    return [w for w in reversed(windows) if not w.empty]


def _minus(span: tuple[dt.date, dt.date | None],
           others: list[tuple[dt.date, dt.date | None]]) -> list[tuple[dt.date, dt.date | None]]:
    """The days of `span` in none of `others` (inclusive ends, None: open)."""
    pieces = [span]
    for lo, hi in others:
        rest = []
        for start, end in pieces:
            if start < lo:  # the part before `lo`
                rest.append((start, lo - _DAY if end is None else min(end, lo - _DAY)))
            if hi is not None and (end is None or end > hi):  # the part after `hi`
                rest.append((max(start, hi + _DAY), end))
        pieces = rest
    return pieces


def _measure_changes(earlier: list[PublishedVersion], spec: PolicySpec,
                     fields: tuple[str, ...] = ("measure", "period")) -> list[Problem]:
    """A rule keeps its measure and its period across versions: its volume is one figure
    per period (two periods side by side would pay two caps and split the volume). A book
    already published is only held to the measure (`fields`), which was checked first."""
    problems = []
    for i, rule in enumerate(spec.rules):
        for v in earlier:
            old = v.spec.rule(rule.id)
            if old is None:
                continue
            for field, labels in (("measure", MEASURE_LABELS), ("period", PERIOD_LABELS)):
                if field in fields and getattr(old, field) != getattr(rule, field):
                    problems.append(Problem(
                        f"rules[{i}].{field}",
                        f"规则 {rule.id} 在 {spec.code} 第{v.version}版中为"
                        f"{labels[getattr(old, field)]}，新版本不能改为{labels[getattr(rule, field)]}"
                        "（同一规则的销量须同一口径、同一期间；请改用新的规则 id）"))
            break
    return problems


# --------------------------------------------------------------------------- master data

_CONDITION_VALUES = {  # what a condition's values name, for the warnings
    "skus": "SKU", "product_lines": "产品线", "customer_tiers": "客户等级", "regions": "大区",
    "customers": "客户（统一社会信用代码或工商全称）"}


def unknown_values(spec: PolicySpec,
                   known: Callable[[str], Collection[str]]) -> list[Problem]:
    """Warnings for condition values the master data does not know (the engine matches them
    exactly, so such a condition never holds and such an exclusion never excludes). Not
    refusals: a policy may be published before its new product. `known(kind)` gives the
    values of a kind of `_CONDITION_VALUES` (asked once per kind, only when used)."""
    cache: dict[str, tuple[set[str], list[str]]] = {}

    def lookup(kind: str) -> tuple[set[str], list[str]]:
        if kind not in cache:
            values = sorted(set(known(kind)))
            cache[kind] = ({_match_key(kind, v) for v in values}, values)
        return cache[kind]

    warnings = []
    for i, rule in enumerate(spec.rules):
        for part, conditions, effect in (
                ("applies_to", rule.applies_to, "该条件不会匹配任何订单"),
                ("exclude", rule.exclude, "该排除不会生效")):
            for kind in _CONDITION_VALUES:
                for value in getattr(conditions, kind, None) or ():
                    keys, values = lookup(kind)
                    if _match_key(kind, value) in keys:
                        continue
                    parts = [] if kind == "customers" else _LIST_SLIP.split(value.strip())
                    if len(parts) > 1 and all(_match_key(kind, p) in keys for p in parts):
                        # [华东，华南]: a full-width comma (or 、) made one value of two
                        hint = (f"（列表各项须用半角逗号分隔：是否应写成 "
                                f"[{', '.join(parts)}]？）")
                    else:
                        near = _close_match(value, values, key=lambda v, k=kind: _near_key(k, v))
                        hint = f"（是否应为 {near}？）" if near else ""
                    warnings.append(Problem(
                        f"rules[{i}].{part}.{kind}",
                        f"{_CONDITION_VALUES[kind]}“{value}”不在主数据中{hint}，{effect}"
                        "（按原文精确匹配）"))
    return warnings


_LIST_SLIP = re.compile(r"\s*[，、,；;]\s*|\s+")


def _match_key(kind: str, value: str) -> str:
    """How the engine compares a value of `kind` (customers: as `normalize_name` folds;
    regions: as `normalize_region` stores them)."""
    if kind == "customers":
        return normalize_name(value)
    return normalize_region(value) or value if kind == "regions" else value


def _near_key(kind: str, value: str) -> str:
    """How an unknown value is compared with the known ones for a suggestion: full-width Ａ
    (an input method's full-width mode) as A; a customer by region and trade name only
    (`identity_of`), so that 某某医疗器械有限公司 is not taken for 浙江仁和医疗器械有限公司 by
    the 医疗器械有限公司 they share (a USCC is compared whole)."""
    if kind == "customers":
        return identity_of(normalize_name(value))
    return unicodedata.normalize("NFKC", value).casefold()

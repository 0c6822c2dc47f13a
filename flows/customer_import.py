"""Customer master data from a table (CSV or XLSX): import, duplicate review, merges.

`import_customers` reads a customer list exported from an ERP or kept in Excel and, in ONE
transaction (any row error: nothing written, every refused row listed):

* a legal name already on file (same `name_key`; a merged file answers with its survivor) is
  that customer: new aliases are added, empty fields filled, filled ones never overwritten
  (differences are reported as conflicts);
* any other legal name opens a new file; a branch (分支机构) is a file of its own linked to its
  parent when the parent is on file or in the same table;
* would-be duplicates (same USCC, a legal name that is another file's alias, names written
  differently) are imported as they are and listed, cluster by cluster, in a review workbook.

New files are written with Core executemany inserts (name keys computed here, since the ORM
events that set them do not fire for Core), one operation-log row per created file; changes
to files already on record go through the shared functions of models.customer_files, which
log each change themselves.

`merge_files` and `apply_review` merge files through `merge_customers` (orders, quotes, to-dos,
receivables, rebate lines and names move; operation log), again in one transaction.
"""
from __future__ import annotations

import errno
import io
import json
import os
import re
import time
import unicodedata
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, select

from flows.errors import Refusal
from connectors.tabular import (
    CellError, Column, ExcelNumber, Problem, Row, TableError, convert_rows, parse_code, parse_int,
    parse_text, read_table,
)
from models import Customer, CustomerAlias, OperationLog, Staff
from models.base import utcnow
from models.customer_duplicates import (
    AliasName, DuplicateCluster, FileRecord, find_duplicates, suggest_survivor,
)
from models.customer_files import (
    CustomerFileError, active, add_alias, link_branch, merge_customers, uscc_flag,
)
from models.db import get_engine, session_scope
from models.name_input import check_customer_name
from models.names import PROVINCE_OFFICIAL, may_be_branch, normalize_name, parse_normalized
from models.oplog import apply_changes
from models.staff import normalize_region, role_label
from models.uscc import check_uscc, clean_uscc
from reports.duplicate_review import (
    ACTIONS, REVIEW_SHEET, SOURCE_EXISTING, SOURCE_IMPORTED, ConflictLine, FlaggedUscc,
    ReviewLine, build_review_workbook,
)
from connectors.files import os_reason, write_atomically

DEFAULT_ACTOR = "cli:customers-import"
CUSTOMER_TIERS = ("A", "B", "C", "D")
DEFAULT_TIER = "C"

IMPORT_COLUMNS = (
    Column("legal_name", aliases=("工商全称", "客户全称", "客户名称")),
    Column("short_names", required=False, aliases=("简称",)),
    Column("former_names", required=False, aliases=("曾用名",)),
    Column("uscc", required=False, aliases=("统一社会信用代码", "信用代码")),
    Column("province", required=False, aliases=("省份",)),
    Column("city", required=False, aliases=("城市",)),
    Column("region", required=False, aliases=("大区",)),
    Column("tier", required=False, aliases=("客户等级",)),
    Column("owner", required=False, aliases=("负责销售",)),
    Column("finance_code", required=False,
           aliases=("财务客户编码", "金蝶客户编码", "用友客户编码", "客户编码（财务）")),
)
# fields a row may fill on a file (row attribute → customer column), in report order
FIELDS = (("uscc", "uscc"), ("province", "province"), ("city", "city"), ("region", "region"),
          ("tier", "tier"), ("owner", "owner_rep_id"), ("finance_code", "finance_code"))
FIELD_LABELS = {"uscc": "统一社会信用代码", "province": "省份", "city": "城市", "region": "大区",
                "tier": "客户等级", "owner_rep_id": "负责销售", "parent_id": "上级客户",
                "finance_code": "财务客户编码"}
MOVED_LABELS = {"intent_order": "意向单", "quote": "报价单", "opportunity": "商机", "todo": "待办",
                "suspect_name": "疑似新客户", "registry_change": "工商变更",
                "receivable_invoice": "应收发票", "payment": "回款", "rebate_line": "返利明细"}

_SPLIT = re.compile(r"[;；]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")
_PROVINCE_SUFFIXES = ("壮族自治区", "回族自治区", "维吾尔自治区", "特别行政区", "自治区", "省", "市")
_MAX = {"city": 40, "region": 20, "owner": 40, "finance_code": 40}
# fields sales-ops may overwrite on files on record (`--update`, `customers set`): the
# re-rating (年度评级), region moves, a new rep; option name → customer column
UPDATABLE = {"tier": "tier", "region": "region", "owner": "owner_rep_id"}
UPDATABLE_ALIASES = {"客户等级": "tier", "等级": "tier", "大区": "region", "负责销售": "owner"}
# who keeps the customer master: re-rating and merging files is theirs
MERGER_ROLES = ("sales_ops", "admin")


# --- rows ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImportRow:
    number: int
    legal_name: str
    key: str
    short_names: tuple[tuple[str, str], ...]     # (name, normalize_name(name))
    former_names: tuple[tuple[str, str], ...]
    uscc: str | None
    uscc_check: str | None      # uscc_flag(uscc)
    province: str | None
    city: str | None
    region: str | None
    tier: str | None
    owner: str | None
    finance_code: str | None


def _shown(text: str) -> str:
    text = repr(text)[1:-1] if _CONTROL.search(text) else text
    return text if len(text) <= 30 else text[:30] + "…"


def _names(row: Row, column: str, what: str) -> tuple[tuple[str, str], ...]:
    out = []
    for i, part in enumerate(p.strip() for p in _SPLIT.split(row[column])):
        if not part:
            continue
        label = f"{what}（第{i + 1}个）"
        problem = check_customer_name(part, what=label)
        if problem:
            raise CellError(problem.message, column)
        out.append((part, normalize_name(part)))
    return tuple(out)


def _text(row: Row, column: str, what: str) -> str | None:
    return _checked_text(row[column], column, what)


def _checked_text(text: str, column: str, what: str) -> str | None:
    if not text:
        return None
    if _CONTROL.search(text):
        raise CellError(f"{what}含有控制字符或不可见字符", column)
    if len(text) > _MAX[column]:
        raise CellError(f"{what}过长（{len(text)} 字），最多 {_MAX[column]} 字", column)
    return text


def _region(text: str) -> str | None:
    """A region cell or option: stored normalized (华东大区 → 华东), checked as stored (NFKC
    may lengthen it: ㈠ is (一))."""
    if _CONTROL.search(text):  # before NFKC, which would make some of them plain spaces
        raise CellError("大区含有控制字符或不可见字符", "region")
    return _checked_text(normalize_region(text) or "", "region", "大区")


def _province(text: str) -> str | None:
    if not text:
        return None
    name = unicodedata.normalize("NFKC", text).strip()
    for suffix in _PROVINCE_SUFFIXES:
        if name.endswith(suffix) and name[:-len(suffix)] in PROVINCE_OFFICIAL:
            name = name[:-len(suffix)]
            break
    if name not in PROVINCE_OFFICIAL:
        raise CellError(f"“{_shown(text)}”不是省级行政区名称（例如 江苏 或 江苏省）", "province")
    return name


def _uscc(text: str) -> str | None:
    if not text:
        return None
    if _CONTROL.search(text):
        raise CellError("统一社会信用代码含有控制字符或不可见字符", "uscc")
    if isinstance(text, ExcelNumber):  # an all-digit code kept as a number: digits are gone
        try:
            parse_text(text)
        except CellError as exc:
            raise CellError(exc.message, "uscc") from None
    code = clean_uscc(text)
    if len(code) > 18:
        # a malformed code is kept and flagged, but one longer than the column cannot be kept
        raise CellError(f"统一社会信用代码超过 18 位（{len(code)} 位），无法保存：{_shown(text)}",
                        "uscc")
    return code or None


def column_label(column: str) -> str:
    """A column as a clerk finds it in his file, whichever header he wrote: its Chinese
    header, then its English one (工商全称（legal_name）)."""
    spelled = next((c for c in IMPORT_COLUMNS if c.name == column), None)
    return f"{spelled.aliases[0]}（{column}）" if spelled and spelled.aliases else column


# who may own (be the 负责销售 of) a customer file
OWNER_ROLES = ("rep", "sales_manager")


def owner_problem(owner: str, role: str | None) -> str | None:
    """Why `owner` (a staff id, of `role`; None: no such person) cannot be a file's 负责销售."""
    if role is None:
        return f"负责销售“{_shown(owner)}”不是系统中的人员编号"
    if role not in OWNER_ROLES:
        return (f"负责销售“{_shown(owner)}”的角色是{role_label(role)}，"
                "负责销售须为销售代表或区域经理")
    return None


def parse_row(row: Row, staff_ids: Mapping[str, str]) -> ImportRow:
    """One table row checked and cleaned; CellError names the column of the first problem."""
    try:
        return _parse_row(row, staff_ids)
    except CellError as exc:
        raise CellError(exc.message, column_label(exc.column) if exc.column else None) from None


def _parse_row(row: Row, staff_ids: Mapping[str, str]) -> ImportRow:
    legal = row["legal_name"]
    problem = check_customer_name(legal, what="工商全称")
    if problem:
        raise CellError(problem.message, "legal_name")
    legal = legal.strip()
    key = normalize_name(legal)
    short = _names(row, "short_names", "简称")
    former = _names(row, "former_names", "曾用名")
    code = _uscc(row["uscc"])
    province = _province(row["province"])
    city = _text(row, "city", "城市")
    region = _region(row["region"])
    tier = None
    if row["tier"]:
        tier = unicodedata.normalize("NFKC", row["tier"]).strip().upper()
        if tier not in CUSTOMER_TIERS:
            raise CellError(f"客户等级“{_shown(row['tier'])}”无效（可选：{'、'.join(CUSTOMER_TIERS)}）",
                            "tier")
    owner = _text(row, "owner", "负责销售")
    if owner is not None and (problem := owner_problem(owner, staff_ids.get(owner))):
        raise CellError(problem, "owner")
    return ImportRow(row.number, legal, key, short, former, code, uscc_flag(code), province,
                     city, region, tier, owner, _finance_code(row))


def _finance_code(row: Row) -> str | None:
    """A code of finance's books, kept as text: one Excel stored as a number (1122.0010 read
    as 1122.001) or shows in scientific notation (1.12E+11) lost digits, and the vouchers
    would book the customer under another code."""
    text = _text(row, "finance_code", "财务客户编码")
    if text is None:
        return None
    try:
        return parse_code(text)
    except CellError as exc:
        raise CellError(exc.message, "finance_code") from None


# --- what is on file -------------------------------------------------------------------

_C = Customer.__table__
_A = CustomerAlias.__table__
_LOG = OperationLog.__table__
_ON_FILE_COLUMNS = (_C.c.id, _C.c.legal_name, _C.c.name_key, _C.c.uscc, _C.c.uscc_check,
                    _C.c.province, _C.c.city, _C.c.region, _C.c.tier, _C.c.owner_rep_id,
                    _C.c.parent_id, _C.c.merged_into_id, _C.c.finance_code)


@dataclass
class _OnFile:
    id: int
    legal_name: str
    name_key: str
    uscc: str | None
    uscc_check: str | None
    province: str | None
    city: str | None
    region: str | None
    tier: str | None
    owner_rep_id: str | None
    parent_id: int | None
    merged_into_id: int | None
    finance_code: str | None


def _same(field_name: str, a, b) -> bool:
    if field_name == "uscc":
        return clean_uscc(a) == clean_uscc(b)
    if field_name == "city":  # 苏州 / 苏州市
        return str(a).rstrip("市") == str(b).rstrip("市")
    if field_name == "province":
        try:
            return _province(str(a)) == _province(str(b))
        except CellError:
            return a == b
    return a == b


# --- the import ------------------------------------------------------------------------

@dataclass
class _Plan:
    key: str
    rows: list[ImportRow]
    customer_id: int | None = None          # on file, or given by the insert
    existing: bool = False
    values: dict = field(default_factory=dict)      # new file: column → value
    fills: dict = field(default_factory=dict)       # file on record: column → value
    aliases: dict = field(default_factory=dict)     # key → (name, kind), new ones only
    parent_key: str | None = None
    parent_id: int | None = None
    conflicts: list = field(default_factory=list)   # (row, column, on record, in file)
    updates: dict = field(default_factory=dict)     # file on record: column → (row, value)

    @property
    def first(self) -> ImportRow:
        return self.rows[0]


@dataclass(frozen=True)
class FieldChange:
    """A field of a file on record overwritten (`--update`, `customers set`): old → new."""
    row_number: int | None
    customer_id: int
    legal_name: str
    field: str          # the customer column
    old: str | None
    new: str | None

    @property
    def label(self) -> str:
        return FIELD_LABELS[self.field]

    def as_json(self) -> dict:
        return {"row": self.row_number, "customer_id": self.customer_id,
                "legal_name": self.legal_name, "field": self.field, "label": self.label,
                "old": self.old, "new": self.new}


def parse_update_fields(text: str | None) -> tuple[str, ...]:
    """`tier,region,owner` (or 客户等级、大区、负责销售) → the customer columns they name.
    Raises CustomerFileError for a field that may not be overwritten this way."""
    names = [p.strip() for p in re.split(r"[,，、;；\s]+", text or "") if p.strip()]
    if not names:
        raise CustomerFileError("--update 须列出要覆盖的字段：tier（客户等级）、region（大区）、"
                                "owner（负责销售），用逗号分隔")
    columns = []
    for name in names:
        option = UPDATABLE_ALIASES.get(name, name.lower())
        if option not in UPDATABLE:
            raise CustomerFileError(
                f"字段“{_shown(name)}”不能用 --update 覆盖：只允许 tier（客户等级）、region（大区）、"
                "owner（负责销售）；工商全称、统一社会信用代码等须经工商变更或合并客户档案修改")
        if UPDATABLE[option] not in columns:
            columns.append(UPDATABLE[option])
    return tuple(columns)


def require_master_keeper(s: Session, actor: str, what: str) -> Staff:
    """The person named by --by, who must be a sales-ops clerk or an admin."""
    person = s.get(Staff, actor)
    if person is None:
        raise CustomerFileError(f"人员不存在：{actor}")
    if person.role not in MERGER_ROLES:
        raise CustomerFileError(f"{what}须由销售运营或管理员执行（{person.name} 的角色是"
                                f"{role_label(person.role)}）")
    return person


@dataclass
class ImportReport:
    source: str
    rows: int = 0
    customers: int = 0
    folded_rows: int = 0             # rows naming a legal name an earlier row already named
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    aliases_added: int = 0
    branches_linked: int = 0
    branches_without_parent: int = 0
    uscc_flagged: int = 0
    conflicts: list[ConflictLine] = field(default_factory=list)
    changes: list[FieldChange] = field(default_factory=list)   # overwritten by `update`
    flagged: list[FlaggedUscc] = field(default_factory=list)
    clusters: list[DuplicateCluster] = field(default_factory=list)
    review_lines: list[ReviewLine] = field(default_factory=list)
    review_path: Path | None = None
    review_kept: Path | None = None  # the workbook asked for, marked: left as it was
    unknown_columns: tuple[str, ...] = ()
    dry_run: bool = False
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)   # seconds per step

    def as_json(self) -> dict:
        return {
            "file": self.source, "rows": self.rows, "customers": self.customers,
            "folded_rows": self.folded_rows, "created": self.created, "updated": self.updated,
            "unchanged": self.unchanged, "aliases_added": self.aliases_added,
            "branches_linked": self.branches_linked,
            "branches_without_parent": self.branches_without_parent,
            "uscc_flagged": self.uscc_flagged, "conflicts": len(self.conflicts),
            "changes": [c.as_json() for c in self.changes],
            "clusters": len(self.clusters),
            "clustered_customers": sum(len(c.members) for c in self.clusters),
            "review_workbook": str(self.review_path) if self.review_path else None,
            "review_workbook_kept": str(self.review_kept) if self.review_kept else None,
            "unknown_columns": list(self.unknown_columns), "dry_run": self.dry_run,
            "seconds": round(self.seconds, 2),
            "phases": {k: round(v, 2) for k, v in self.phases.items()},
        }


class _Phases:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._last
        self._last = now


def default_review_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.duplicates.xlsx")


class ReviewNotWritten(Exception):
    """The review workbook could not be written (after the import's commit); the OSError is
    the cause."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


def review_is_marked(path: Path) -> bool:
    """Whether a re-import must leave the workbook at `path` alone: a reviewer has filled
    处理 on it (hours of decisions `merge --review` is yet to apply), or it cannot be read as a
    review workbook (then it is not one of ours to replace)."""
    if not path.exists():
        return False
    try:
        table = read_table(path, (Column("处理"),), sheet=REVIEW_SHEET)
    except TableError:
        return True
    return any(row["处理"].strip() for row in table.rows)


def review_target(path: Path) -> Path:
    """Where a review workbook asked for at `path` is written: there, unless a reviewer has
    marked the one there; then beside it, numbered (复核-2.xlsx, -3 …: the first that is free
    or unmarked)."""
    for n in range(1, 1000):
        candidate = path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not review_is_marked(candidate):
            return candidate
    raise ReviewNotWritten(path) from FileExistsError(errno.EEXIST, "no free name", str(path))


def write_review(path: Path, payload: bytes) -> Path:
    """Write a review workbook without overwriting a marked one (review_target); the path
    written. Raises ReviewNotWritten."""
    target = review_target(path)
    try:
        write_atomically(target, payload)
    except OSError as exc:
        raise ReviewNotWritten(target) from exc
    return target


def import_customers(db_url: str, path: Path | str, *, actor: str = DEFAULT_ACTOR,
                     review_out: Path | str | None = None, dry_run: bool = False,
                     sheet: str | None = None, update: tuple[str, ...] = ()) -> ImportReport:
    """Import a customer table; see the module docstring. `update`: customer columns of
    UPDATABLE that take the file's value on files on record when it differs (instead of
    being reported as conflicts); the actor must then be a sales-ops clerk or an admin.
    Raises TableError (row problems, nothing written) or CustomerFileError."""
    update = tuple(update)
    if not set(update) <= set(UPDATABLE.values()):
        refused = sorted(set(update) - set(UPDATABLE.values()))
        raise CustomerFileError(f"不能覆盖的字段：{'、'.join(refused)}")
    if update and actor == DEFAULT_ACTOR:
        raise CustomerFileError("使用 --update 覆盖已有客户的字段时须用 --by 指明操作人（销售运营或管理员）")
    started = time.perf_counter()
    path = Path(path)
    review_path = Path(review_out) if review_out else default_review_path(path)
    if not dry_run:  # the workbook is written after the commit: what would fail, refused now
        folder = review_path.parent
        if review_path.is_dir():
            raise TableError([Problem(str(review_path), None, None, (
                os_reason(IsADirectoryError(errno.EISDIR, "")) +
                "；请用 --review-out 指定复核表的文件名（例如 复核.xlsx）"))])
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise TableError([Problem(str(review_path), None, None,
                                      "复核表所在目录不存在或不可写，请用 --review-out 指定其他位置")])
    engine = get_engine(db_url)
    with Session(engine, expire_on_commit=False) as s:
        try:
            if update:
                require_master_keeper(s, actor, "覆盖客户等级、大区或负责销售")
            report, payload = _import(s, path, actor, sheet, update)
            committing = time.perf_counter()
            if dry_run:
                s.rollback()
            else:
                s.commit()
        except BaseException:
            s.rollback()
            raise
    report.dry_run = dry_run
    report.phases["commit"] = time.perf_counter() - committing
    if payload is not None and not dry_run:
        report.review_path = write_review(review_path, payload)
        if report.review_path != review_path:
            report.review_kept = review_path
    report.seconds = time.perf_counter() - started
    return report


def _import(s: Session, path: Path, actor: str, sheet: str | None,
            update: tuple[str, ...] = ()):
    staff_ids = dict(s.exec(select(Staff.id, Staff.role)).all())
    if actor != DEFAULT_ACTOR and actor not in staff_ids:
        raise TableError([Problem("--by", None, None, f"人员不存在：{actor}")])
    clock = _Phases()
    table = read_table(path, IMPORT_COLUMNS, sheet=sheet)
    if not table.rows:  # an empty template, or the wrong export: never "新增 0" and done
        raise TableError([Problem(table.source, table.header_row, None,
                                  "表头下没有数据行，文件中没有可导入的客户")])
    clock.lap("read")
    rows = convert_rows(table.rows, lambda r: parse_row(r, staff_ids))
    clock.lap("validate")
    report = ImportReport(source=table.source, rows=len(rows), unknown_columns=table.unknown)
    conn = s.connection()

    # what is on record
    on_file = {r.id: _OnFile(*r) for r in conn.execute(sa.select(*_ON_FILE_COLUMNS))}
    by_key = {c.name_key: c.id for c in on_file.values()}

    def resolve(cid: int | None) -> int | None:
        seen = set()
        while cid is not None and on_file[cid].merged_into_id and cid not in seen:
            seen.add(cid)
            cid = on_file[cid].merged_into_id
        return cid

    alias_rows = conn.execute(sa.select(_A.c.customer_id, _A.c.name, _A.c.key, _A.c.kind)).all()
    alias_keys: dict[int, set[str]] = defaultdict(set)
    alias_owners: dict[str, set[int]] = defaultdict(set)
    for cid, _, key, _ in alias_rows:
        alias_keys[cid].add(key)
        alias_owners[key].add(cid)

    clock.lap("load")

    # one plan per legal name in the file
    plans: dict[str, _Plan] = {}
    for row in rows:
        plan = plans.get(row.key)
        if plan is None:
            plans[row.key] = _Plan(row.key, [row])
        else:
            plan.rows.append(row)
            report.folded_rows += 1
    report.customers = len(plans)

    for plan in plans.values():
        target = resolve(by_key.get(plan.key))
        if target is not None:
            _plan_update(plan, on_file[target], alias_keys[target], update)
        else:
            _plan_new(plan)
        if may_be_branch(plan.key):  # (parsing every name twice costs seconds)
            parsed = parse_normalized(plan.key)
            if parsed.is_branch:
                plan.parent_key = parsed.parent_name

    def parent_on_record(key: str) -> int | None:
        cid = resolve(by_key.get(key))
        if cid is None:
            owners = {resolve(o) for o in alias_owners.get(key, ())}
            cid = owners.pop() if len(owners) == 1 else None
        return cid

    clashes = _finance_code_clashes(table.source, plans.values(), on_file)
    if clashes:
        raise TableError(clashes)
    clock.lap("plan")
    # stamped as late as possible: the matcher indexes of running processes read rows by
    # updated_at with a margin for transactions that commit after their stamp
    now = utcnow()

    # new files: head offices first, then branches (their parent may be one of the former)
    new = [p for p in plans.values() if not p.existing]
    created_ids: dict[str, int] = {}
    for batch in ([p for p in new if p.parent_key is None],
                  [p for p in new if p.parent_key is not None]):
        for plan in batch:
            if plan.parent_key is not None:
                parent = created_ids.get(plan.parent_key) or parent_on_record(plan.parent_key)
                plan.parent_id = parent
                plan.values["parent_id"] = parent
        ids = _insert_customers(conn, batch, now)
        for plan, cid in zip(batch, ids):
            plan.customer_id = cid
            created_ids[plan.key] = cid
    _insert_aliases(conn, new, now)
    _log_created(conn, new, actor, now)
    report.created = len(new)
    report.aliases_added += sum(len(p.aliases) for p in new)
    report.branches_linked += sum(1 for p in new if p.parent_id is not None)
    report.branches_without_parent += sum(1 for p in new if p.parent_key and p.parent_id is None)

    clock.lap("insert")

    # files on record: through the shared functions (each change logged)
    overwritten: set[tuple[int, str]] = set()   # (file, column) an `update` set in this run
    for plan in sorted((p for p in plans.values() if p.existing), key=lambda p: p.customer_id):
        record = on_file[plan.customer_id]
        if plan.parent_key is not None and record.parent_id is None:
            parent = created_ids.get(plan.parent_key) or parent_on_record(plan.parent_key)
            if parent is not None and parent != plan.customer_id:
                plan.parent_id = parent
        elif plan.parent_key is not None:
            plan.parent_id = record.parent_id
        # two legal names of the file may name one file (its own and a merged one's): the
        # first fills a field, the second must not overwrite it
        for column, value in list(plan.fills.items()):
            current = getattr(record, column)
            if current not in (None, ""):
                del plan.fills[column]
                if not _same(column, current, value):
                    plan.conflicts.append((plan.first.number, column, current, value))
        for column, (number, value) in list(plan.updates.items()):
            current = getattr(record, column)
            if _same(column, current, value):  # another legal name of the file set it already
                del plan.updates[column]
            elif (record.id, column) in overwritten:
                del plan.updates[column]
                plan.conflicts.append((number, column, current, value))
        changed = bool(plan.fills or plan.updates or plan.aliases or
                       (plan.parent_id is not None and record.parent_id is None))
        if not changed:
            report.unchanged += 1
            if plan.parent_key is not None and plan.parent_id is None:
                report.branches_without_parent += 1
            continue
        customer = s.get(Customer, plan.customer_id)
        if plan.fills or plan.updates:
            fills = dict(plan.fills)
            if "uscc" in fills:
                fills["uscc_check"] = uscc_flag(fills["uscc"])
            for column, (number, value) in plan.updates.items():
                fills[column] = value
                report.changes.append(FieldChange(number, record.id, record.legal_name, column,
                                                  getattr(record, column), value))
                overwritten.add((record.id, column))
            apply_changes(s, customer, actor, **fills)
            for column, value in fills.items():
                setattr(record, column, value)
        for name, kind in plan.aliases.values():
            report.aliases_added += add_alias(s, customer, name, kind, "import", actor) is not None
        if plan.parent_id is not None and record.parent_id is None:
            link_branch(s, customer, s.get(Customer, plan.parent_id), actor)
            record.parent_id = plan.parent_id
            report.branches_linked += 1
        elif plan.parent_key is not None and record.parent_id is None:
            report.branches_without_parent += 1
        report.updated += 1
    # branches on record that waited for their head office: linked now that it has a file
    if created_ids:
        named = {p.customer_id for p in plans.values()}
        for record in on_file.values():
            if record.parent_id is None and record.merged_into_id is None \
                    and record.id not in named and may_be_branch(record.name_key):
                parsed = parse_normalized(record.name_key)
                parent = created_ids.get(parsed.parent_name) if parsed.is_branch else None
                if parent is not None:
                    link_branch(s, s.get(Customer, record.id), s.get(Customer, parent), actor)
                    record.parent_id = parent
                    report.branches_linked += 1
    s.flush()

    clock.lap("update")

    # conflicts and flagged codes, in row order
    names = {p.customer_id: p.first.legal_name for p in plans.values()}
    for plan in plans.values():
        for number, column, old, new_value in plan.conflicts:
            report.conflicts.append(ConflictLine(number, plan.customer_id, names[plan.customer_id],
                                                 FIELD_LABELS[column], str(old), str(new_value)))
        code = plan.values.get("uscc") if not plan.existing else plan.fills.get("uscc")
        check = plan.values.get("uscc_check") if not plan.existing else uscc_flag(code)
        if code and check != "ok":
            row = next(r for r in plan.rows if r.uscc == code)
            report.flagged.append(FlaggedUscc(row.number, plan.customer_id, plan.first.legal_name,
                                              code, check_uscc(code).message))
    report.conflicts.sort(key=lambda c: (c.row_number, c.field))
    report.flagged.sort(key=lambda f: f.row_number)
    report.uscc_flagged = len(report.flagged)

    # would-be duplicates
    records: dict[int, FileRecord] = {}
    for c in on_file.values():
        if c.merged_into_id is None:
            code = clean_uscc(c.uscc) if c.uscc else None
            check = c.uscc_check if c.uscc_check is not None else uscc_flag(code)
            records[c.id] = FileRecord(c.id, c.legal_name, c.name_key, code,
                                       code is not None and check == "ok", c.province,
                                       c.parent_id)
    order: dict[int, int] = {}
    for plan in plans.values():
        order.setdefault(plan.customer_id, plan.first.number)
        if plan.existing:
            records[plan.customer_id].touched = True
        else:
            v = plan.values
            records[plan.customer_id] = FileRecord(
                plan.customer_id, v["legal_name"], v["name_key"], v["uscc"],
                v["uscc_check"] == "ok", v["province"], v["parent_id"], touched=True)
    aliases = [AliasName(cid, name, key, kind) for cid, name, key, kind in alias_rows]
    for plan in plans.values():
        aliases.extend(AliasName(plan.customer_id, name, key, kind)
                       for key, (name, kind) in plan.aliases.items())
    report.clusters = find_duplicates(records, aliases, order)
    clock.lap("duplicates")
    payload = None
    if report.clusters or report.conflicts or report.flagged:
        report.review_lines = _review_lines(conn, report.clusters, records, aliases, plans)
        buf = io.BytesIO()
        build_review_workbook(report.review_lines, report.conflicts, report.flagged,
                              source=table.source).save(buf)
        payload = buf.getvalue()
    clock.lap("workbook")
    report.phases = clock.laps
    return report, payload


def _finance_code_clashes(source: str, plans, on_file: dict[int, _OnFile]) -> list[Problem]:
    """A finance code names one customer: rows giving one code to two customers, or the code
    of another file on record, are refused (the vouchers would book them as one)."""
    owners: dict[str, str] = {}  # code → the legal name of the file or row holding it
    holders: dict[str, object] = {}
    for c in on_file.values():
        if c.finance_code and not c.merged_into_id:
            owners[c.finance_code], holders[c.finance_code] = c.legal_name, c.id
    problems = []
    for plan in plans:
        code = (plan.fills if plan.existing else plan.values).get("finance_code")
        if code is None:
            continue
        me = plan.customer_id if plan.existing else plan.key
        if holders.setdefault(code, me) != me:
            row = next(r.number for r in plan.rows if r.finance_code == code)
            problems.append(Problem(source, row, column_label("finance_code"),
                                    f"财务客户编码 {_shown(code)} 已属于“{_shown(owners[code])}”"))
        owners.setdefault(code, plan.first.legal_name)
    return problems


def _plan_new(plan: _Plan) -> None:
    first = plan.first
    values = {"legal_name": first.legal_name, "name_key": plan.key, "uscc": first.uscc,
              "uscc_check": first.uscc_check, "province": first.province, "city": first.city,
              "region": first.region, "tier": first.tier, "owner_rep_id": first.owner,
              "finance_code": first.finance_code, "parent_id": None}
    for row in plan.rows[1:]:  # the same legal name again further down: fill, never overwrite
        for attr, column in FIELDS:
            value = getattr(row, attr)
            if value is None:
                continue
            if values[column] is None:
                values[column] = value
                if column == "uscc":
                    values["uscc_check"] = row.uscc_check
            elif not _same(column, values[column], value):
                plan.conflicts.append((row.number, column, values[column], value))
    values["tier"] = values["tier"] or DEFAULT_TIER
    plan.values = values
    for row in plan.rows:
        for names, kind in ((row.short_names, "short"), (row.former_names, "former")):
            for name, key in names:
                if key != plan.key and key not in plan.aliases:
                    plan.aliases[key] = (name, kind)


def _plan_update(plan: _Plan, record: _OnFile, known_aliases: set[str],
                 update: tuple[str, ...] = ()) -> None:
    plan.existing = True
    plan.customer_id = record.id
    for row in plan.rows:
        for attr, column in FIELDS:
            value = getattr(row, attr)
            if value is None:
                continue
            if column in plan.updates:  # an earlier row of the file overwrote it already
                current = plan.updates[column][1]
            else:
                current = plan.fills.get(column, getattr(record, column))
            if current in (None, ""):
                plan.fills[column] = value
            elif _same(column, current, value):
                continue
            elif column in update and column not in plan.fills and column not in plan.updates:
                plan.updates[column] = (row.number, value)
            else:
                plan.conflicts.append((row.number, column, current, value))
        for names, kind in ((row.short_names, "short"), (row.former_names, "former")):
            for name, key in names:
                if key not in (plan.key, record.name_key) and key not in known_aliases \
                        and key not in plan.aliases:
                    plan.aliases[key] = (name, kind)


def _insert_customers(conn, plans: list[_Plan], now) -> list[int]:
    if not plans:
        return []
    rows = [{**p.values, "origin": "imported", "qualification": "approved",
             "created_at": now, "updated_at": now} for p in plans]
    conn.execute(sa.insert(_C), rows)
    # the new ids by name key (unique): RETURNING in parameter order would make SQLite insert
    # row by row
    keys = [p.key for p in plans]
    ids: dict[str, int] = {}
    for i in range(0, len(keys), 1000):
        ids.update((k, cid) for cid, k in conn.execute(
            sa.select(_C.c.id, _C.c.name_key).where(_C.c.name_key.in_(keys[i:i + 1000]))))
    return [ids[k] for k in keys]


def _insert_aliases(conn, plans: list[_Plan], now) -> None:
    rows = [{"customer_id": p.customer_id, "name": name, "key": key, "kind": kind,
             "source": "import", "created_at": now, "updated_at": now}
            for p in plans for key, (name, kind) in p.aliases.items()]
    if rows:
        conn.execute(sa.insert(_A), rows)


def _log_created(conn, plans: list[_Plan], actor: str, now) -> None:
    """One operation-log row per created file, as record_create writes it, with its names."""
    stamp = now.isoformat()
    rows = []
    for p in plans:
        data = {"id": [None, p.customer_id]}
        data.update({k: [None, v] for k, v in p.values.items() if v is not None})
        data.update({"origin": [None, "imported"], "qualification": [None, "approved"],
                     "created_at": [None, stamp], "updated_at": [None, stamp]})
        if p.aliases:
            data["aliases"] = [None, [{"name": n, "kind": k} for n, k in p.aliases.values()]]
        rows.append({"at": now, "actor": actor, "entity": "customer",
                     "entity_id": str(p.customer_id), "action": "create",
                     "changes": json.dumps(data, ensure_ascii=False)})
    if rows:
        conn.execute(sa.insert(_LOG), rows)


def _order_counts(conn, ids: list[int]) -> dict[int, int]:
    orders = sa.table("intent_order", sa.column("customer_id"))
    counts: dict[int, int] = {}
    for i in range(0, len(ids), 1000):
        chunk = ids[i:i + 1000]
        counts.update(conn.execute(
            sa.select(orders.c.customer_id, sa.func.count())
            .where(orders.c.customer_id.in_(chunk)).group_by(orders.c.customer_id)).all())
    return counts


def _review_lines(conn, clusters, records, aliases, plans) -> list[ReviewLine]:
    members = {cid for c in clusters for cid in c.members}
    names: dict[int, list[str]] = defaultdict(list)
    for a in aliases:
        if a.customer_id in members:
            names[a.customer_id].append(a.name)
    orders = _order_counts(conn, sorted(members))
    row_of = {p.customer_id: p.first.number for p in plans.values()}
    existing = members - {p.customer_id for p in plans.values() if not p.existing}
    lines = []
    for cluster in clusters:
        survivor, why = suggest_survivor(records, cluster.members, orders, existing)
        for cid in cluster.members:
            reasons = cluster.reasons_for(cid)
            more = f"；另有 {len(reasons) - 6} 条" if len(reasons) > 6 else ""
            reason = "；".join(reasons[:6]) + more
            r = records[cid]
            note = "" if not r.uscc else ("有效" if r.uscc_ok else check_uscc(r.uscc).message)
            lines.append(ReviewLine(
                cluster.number, cid, r.legal_name, r.uscc or "", note,
                "；".join(dict.fromkeys(names.get(cid, ()))),
                SOURCE_EXISTING if cid in existing else SOURCE_IMPORTED, row_of.get(cid),
                orders.get(cid, 0), reason, cluster.score,
                f"建议保留（{why}）" if cid == survivor else ""))
    return lines


# --- merges ----------------------------------------------------------------------------

def _require_merger(s: Session, actor: str) -> None:
    # merging files is the master keepers' (a rep picks an order's customer)
    require_master_keeper(s, actor, "合并客户档案")


def merge_files(db_url: str, survivor_id: int, merged_ids: list[int], actor: str) -> list[dict]:
    """Merge each of `merged_ids` into `survivor_id` (one transaction); what moved, per file."""
    if len(set(merged_ids)) != len(merged_ids):
        raise CustomerFileError("被合并的客户编号有重复")
    with session_scope(db_url) as s:
        _require_merger(s, actor)
        return [merge_customers(s, survivor_id, mid, actor) for mid in merged_ids]


@dataclass(frozen=True)
class ReviewedCluster:
    number: int
    survivor: int
    merged: tuple[int, ...]
    rows: tuple[int, ...]          # workbook rows of the cluster
    names: dict                    # customer id → legal name as the workbook shows it


@dataclass
class ReviewOutcome:
    source: str
    clusters: int = 0                                  # clusters in the workbook
    merges: list[dict] = field(default_factory=list)   # merge_customers summaries
    already: list[tuple[int, int]] = field(default_factory=list)  # (merged, survivor) done before
    untouched: int = 0                                 # clusters without 合并


def read_review(path: Path | str) -> tuple[str, int, list[ReviewedCluster]]:
    """The reviewer's decisions: (source, clusters in the workbook, clusters to merge).
    Raises TableError naming every bad row and every ambiguous cluster."""
    columns = (Column("簇号"), Column("客户编号"), Column("工商全称", required=False),
               Column("处理"))
    table = read_table(path, columns, sheet=REVIEW_SHEET)

    def convert(row: Row):
        cluster = row.get("簇号", lambda t: parse_int(t, minimum=1))
        cid = row.get("客户编号", lambda t: parse_int(t, minimum=1))
        mark = unicodedata.normalize("NFKC", row["处理"]).strip()
        if mark and mark not in ACTIONS:
            raise CellError(f"只能填写：{'、'.join(ACTIONS)}（或留空），不能是“{_shown(mark)}”", "处理")
        return row.number, cluster, cid, row["工商全称"], mark

    lines = convert_rows(table.rows, convert)
    by_cluster: dict[int, list] = defaultdict(list)
    cluster_of: dict[int, int] = {}
    problems: list[Problem] = []
    for number, cluster, cid, name, mark in lines:
        if cid in cluster_of and cluster_of[cid] != cluster:
            problems.append(Problem(table.source, number, "客户编号",
                                    f"客户 {cid} 同时出现在第 {cluster_of[cid]} 簇和第 {cluster} 簇"))
        cluster_of[cid] = cluster
        by_cluster[cluster].append((number, cid, name, mark))
    plans = []
    for cluster, members in sorted(by_cluster.items()):
        merged = tuple(cid for _, cid, _, mark in members if mark == "合并")
        keep = [cid for _, cid, _, mark in members if mark == "保留"]
        rows = tuple(n for n, *_ in members)
        if not merged:
            continue
        if len(keep) != 1:
            where = f"第{rows[0]}–{rows[-1]}行" if len(rows) > 1 else f"第{rows[0]}行"
            problems.append(Problem(table.source, None, None,
                                    f"第 {cluster} 簇（{where}）有“合并”，但“保留”有 {len(keep)} 个："
                                    "必须且只能有一个“保留”"))
            continue
        plans.append(ReviewedCluster(cluster, keep[0], merged, rows,
                                     {cid: name for _, cid, name, _ in members}))
    if problems:
        raise TableError(problems)
    return table.source, len(by_cluster), plans


def apply_review(db_url: str, path: Path | str, actor: str) -> ReviewOutcome:
    """Apply a reviewed workbook's 保留/合并 marks in one transaction. A pair merged before (by
    an earlier run of the same workbook) is skipped; any other problem writes nothing."""
    source, total, clusters = read_review(path)
    outcome = ReviewOutcome(source, clusters=total)
    outcome.untouched = total - len(clusters)
    with session_scope(db_url) as s:
        _require_merger(s, actor)
        for cluster in clusters:
            try:
                for cid in (cluster.survivor, *cluster.merged):
                    customer = s.get(Customer, cid)
                    if customer is None:
                        raise CustomerFileError(f"客户档案不存在：{cid}")
                    shown = cluster.names.get(cid) or ""
                    if shown and normalize_name(shown) != customer.name_key:
                        raise CustomerFileError(
                            f"客户 {cid} 的工商全称已不是“{shown}”（现为“{customer.legal_name}”），"
                            "复核表已过时，请重新导入生成")
                survivor = active(s, cluster.survivor)
                for mid in cluster.merged:
                    merged = s.get(Customer, mid)
                    if merged.merged_into_id and active(s, mid).id == survivor.id:
                        outcome.already.append((mid, survivor.id))
                        continue
                    outcome.merges.append(merge_customers(s, survivor.id, mid, actor))
            except CustomerFileError as exc:
                raise CustomerFileError(f"{source} 第 {cluster.number} 簇：{exc}") from None
    return outcome


# --- re-rating one file ----------------------------------------------------------------

class ProfileRefused(Refusal, CustomerFileError):
    """A re-rating refused (Chinese message; `status`, `code` and `field` for the API)."""


def set_customer_fields(db_url: str, customer_id: int, by: str, *, tier: str | None = None,
                        region: str | None = None, owner: str | None = None,
                        actor: str | None = None, unchanged_ok: bool = False
                        ) -> list[FieldChange]:
    """Overwrite the tier, region and/or owner of one file (`salesops customers set`,
    `PATCH /customers/{id}`): one transaction, logged by apply_changes as `actor` (default
    `cli:<by>`), validated as the import validates them. Raises ProfileRefused (nothing
    written) for an unknown or merged file, a bad value, a person who is not a sales-ops clerk
    or an admin, or, unless `unchanged_ok` (then: no changes), nothing to change."""
    if tier is None and region is None and owner is None:
        raise ProfileRefused("请至少指定 --tier、--region、--owner 中的一项" if actor is None
                             else "请至少填写 tier、region、owner 中的一项", code="nothing_to_set")
    wanted: dict[str, str] = {}
    if tier is not None:
        value = unicodedata.normalize("NFKC", tier).strip().upper()
        if value not in CUSTOMER_TIERS:
            raise ProfileRefused(
                f"客户等级“{_shown(tier)}”无效（可选：{'、'.join(CUSTOMER_TIERS)}）",
                code="invalid_field", field="tier")
        wanted["tier"] = value
    for column, text, what in (("region", region, "大区"), ("owner_rep_id", owner, "负责销售")):
        if text is None:
            continue
        field = "region" if column == "region" else "owner"
        try:
            value = _region(text) if field == "region" else _checked_text(text.strip(), field, what)
        except CellError as exc:
            raise ProfileRefused(exc.message, code="invalid_field", field=field) from None
        if value is None:
            raise ProfileRefused(f"{what}不能为空", code="invalid_field", field=field)
        wanted[column] = value
    with session_scope(db_url) as s:
        try:
            require_master_keeper(s, by, "修改客户等级、大区或负责销售")
        except CustomerFileError as exc:
            raise ProfileRefused(str(exc), status=403, code="forbidden") from None
        customer = s.get(Customer, customer_id)
        if customer is None:
            raise ProfileRefused(f"客户档案不存在：{customer_id}", status=404,
                                 code="unknown_customer")
        if customer.merged_into_id is not None:
            survivor = active(s, customer.id)
            raise ProfileRefused(f"客户 {customer_id} 已并入客户 {survivor.id}，"
                                 f"请修改客户 {survivor.id}", status=409, code="merged_customer")
        if "owner_rep_id" in wanted:
            owner = s.get(Staff, wanted["owner_rep_id"])
            problem = owner_problem(wanted["owner_rep_id"], owner.role if owner else None)
            if problem:
                raise ProfileRefused(problem, code="invalid_field", field="owner")
        olds = {column: getattr(customer, column) for column in wanted}
        diff = apply_changes(s, customer, actor or f"cli:{by}", **wanted)
        if not diff and not unchanged_ok:
            now = "，".join(f"{FIELD_LABELS[c]}已是 {v}" for c, v in wanted.items())
            raise ProfileRefused(f"客户 {customer_id} 没有需要修改的字段（{now}）",
                                 code="nothing_to_change")
        changes = [FieldChange(None, customer.id, customer.legal_name, column, olds[column],
                               wanted[column]) for column in wanted if column in diff]
    return changes

"""The staff file (人员名单) kept by sales-ops: `salesops staff import` (CSV/XLSX) and
`salesops staff set` (one person).

Every change is one transaction, checked whole before anything is written (a bad row, an
unknown manager, a reporting line that loops: nothing is written), and logged as `cli:<by>`:
new people with `record_create`, changes with `apply_changes`. Only a sales-ops clerk or an
admin may change the file.
"""
from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import select

from connectors.notify import mobile_number
from connectors.tabular import (
    MAX_PROBLEMS, CellError, Column, ExcelNumber, Problem, Row, TableError, convert_rows, no_nul,
    read_table,
)
from flows.customer_import import require_master_keeper
from models import Staff
from models.customer_files import CustomerFileError
from models.db import session_scope
from models.oplog import apply_changes, record_create
from models.staff import ROLE_LABELS, normalize_region, region_label, role_label

STAFF_COLUMNS = (
    Column("id", aliases=("人员编号", "工号", "员工编号")),
    Column("name", required=False, aliases=("姓名",)),
    Column("role", required=False, aliases=("角色",)),
    Column("email", required=False, aliases=("邮箱", "电子邮箱", "邮件地址")),
    Column("mobile", required=False, aliases=("手机", "手机号", "手机号码")),
    Column("region", required=False, aliases=("大区",)),
    Column("manager", required=False, aliases=("上级", "直属上级", "上级工号", "上级人员编号",
                                               "manager_id")),
)
FIELDS = ("name", "role", "email", "mobile", "region", "manager")
LABELS = {"id": "人员编号", "name": "姓名", "role": "角色", "email": "邮箱", "mobile": "手机号",
          "region": "大区", "manager": "上级"}
REQUIRED = ("name", "role", "email")  # a new person cannot do without them
ATTRIBUTE = {"manager": "manager_id"}  # field → Staff column, where they differ
# the lengths the staff columns keep (models.staff.Staff)
MAX = {"id": 40, "name": 40, "email": 120, "mobile": 20, "region": 20}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_ROLE_OF_LABEL = {label: role for role, label in ROLE_LABELS.items()}


class StaffRefused(CustomerFileError):
    """A change of the staff file refused (Chinese message); nothing was written."""


# --- one value --------------------------------------------------------------------------------

def _shown(text: str) -> str:
    text = repr(text)[1:-1] if _CONTROL.search(text) else text
    return text if len(text) <= 30 else text[:30] + "…"


def _plain(text: str, what: str, max_length: int) -> str:
    no_nul(text)
    if isinstance(text, ExcelNumber) and not re.fullmatch(r"\d+", text):
        raise CellError(f"{what}“{text}”是 Excel 按数字保存的值，可能已丢失位数：请把该列设为“文本”后重新填写")
    text = str(text).strip()
    if _CONTROL.search(text):
        raise CellError(f"{what}含有控制字符或不可见字符：“{_shown(text)}”")
    if len(text) > max_length:
        raise CellError(f"{what}过长（{len(text)} 个字符），最多 {max_length} 个字符")
    return text


def staff_id(text: str, what: str = "人员编号") -> str:
    value = _plain(text, what, MAX["id"])
    if not value:
        raise CellError(f"{what}不能为空")
    if re.search(r"\s", value):
        raise CellError(f"{what}“{_shown(value)}”中不能有空格")
    return value


def check_field(name: str, text: str):
    """The value of staff field `name` as stored, from text as typed (None: cleared, for the
    fields a person may lack); CellError (Chinese) when it cannot be."""
    if name == "manager":
        return staff_id(text, "上级人员编号") if str(text).strip() else None
    what = LABELS[name]
    if name == "role":
        value = unicodedata.normalize("NFKC", _plain(text, what, 40)).strip()
        if not value:
            raise CellError("角色不能为空")
        role = value.lower() if value.lower() in ROLE_LABELS else _ROLE_OF_LABEL.get(value)
        if role is None:
            known = "、".join(f"{r}（{label}）" for r, label in ROLE_LABELS.items())
            raise CellError(f"角色“{_shown(value)}”无效（可选：{known}）")
        return role
    value = _plain(text, what, MAX.get(name, 40) if name != "region" else 40)
    if name == "name":
        if not value:
            raise CellError("姓名不能为空")
        return value
    if name == "email":
        if not value:
            raise CellError("邮箱不能为空")
        if (not value.isascii() or not _EMAIL.fullmatch(value)
                or any(ch in value for ch in ',;<>()[]\\"')):
            raise CellError(f"邮箱“{_shown(value)}”不是有效的邮箱地址：须为一个地址，如 "
                            "name@example.com，只能由英文字母、数字和常用符号组成")
        return value
    if name == "mobile":
        if not value:
            return None
        number = mobile_number(value)
        if number is None or len(number) > MAX["mobile"]:
            raise CellError(f"手机号“{_shown(value)}”不是有效的手机号（如 13900000001，"
                            "可带空格、短横线或 +86）")
        return number
    if name == "region":
        region = normalize_region(value)
        if region and len(region) > MAX["region"]:
            raise CellError(f"大区过长（{len(region)} 个字符），最多 {MAX['region']} 个字符")
        return region
    raise ValueError(name)


def _role_text(role: str | None) -> str:
    return f"{role_label(role)}（{role}）" if role else "（空）"


def value_text(name: str, value) -> str:
    """A stored value as a person reads it in a change line."""
    if value is None or value == "":
        return "（空）"
    if name == "role":
        return _role_text(value)
    if name == "region":
        return region_label(value)
    return str(value)


# --- a change of the file, checked whole ------------------------------------------------------

@dataclass
class Entry:
    """One person as a row of the file (or `staff set`) gives him: the fields given only
    (None: cleared)."""

    id: str
    values: dict = field(default_factory=dict)
    row: int | None = None


@dataclass
class Plan:
    created: list[Entry] = field(default_factory=list)           # managers before their people
    updated: list[tuple[Entry, dict]] = field(default_factory=list)  # (entry, {field: [old, new]})
    unchanged: list[str] = field(default_factory=list)
    problems: list[tuple[Entry, str | None, str]] = field(default_factory=list)


def plan_changes(on_file: Mapping[str, Staff], entries: Iterable[Entry], *,
                 from_file: bool = True) -> Plan:
    """What `entries` change on the file `on_file` (staff id → person): whom they create, what
    they update, and every problem (entry, field or None, Chinese message): a new person without
    a name, role or email, a manager neither on file nor among the entries, a reporting line
    that comes back to the person."""
    entries = list(entries)
    plan = Plan()
    given = {e.id: e for e in entries}
    for e in entries:
        person = on_file.get(e.id)
        if person is None:
            for name in REQUIRED:
                if e.values.get(name) is None:
                    plan.problems.append((e, name, f"新人员须填写{LABELS[name]}"))
            continue
        diff = {}
        for name, new in e.values.items():
            old = getattr(person, ATTRIBUTE.get(name, name))
            if old != new:
                diff[name] = [old, new]
        if diff:
            plan.updated.append((e, diff))
        else:
            plan.unchanged.append(e.id)
    # the reporting lines as they would be
    manager_of = {sid: p.manager_id for sid, p in on_file.items()}
    for e in entries:
        if "manager" in e.values or e.id not in on_file:
            manager_of[e.id] = e.values.get("manager")
    for e in entries:
        manager = e.values.get("manager")
        if manager is None:
            continue
        if manager == e.id:
            plan.problems.append((e, "manager", "上级不能是本人"))
        elif manager not in on_file and manager not in given:
            plan.problems.append((e, "manager", f"上级“{_shown(manager)}”不是系统中的人员编号"
                                  + ("，也不在本文件中" if from_file else "")))
    reported: set[str] = set()
    for e in entries:
        if e.values.get("manager") in (None, e.id) or e.id in reported:
            continue
        line, seen, at = [e.id], {e.id}, e.values["manager"]
        while at is not None and at not in seen:
            line.append(at)
            seen.add(at)
            at = manager_of.get(at)
        if at == e.id:
            reported.update(line)
            plan.problems.append((e, "manager", "上级关系形成循环：" + " → ".join(
                [*line, e.id]) + "（每人的上级链须止于没有上级的人）"))
    # new people: a manager created before the people under him (the foreign key)
    new = [e for e in entries if e.id not in on_file]
    placed: set[str] = set()
    while new:
        ready = [e for e in new if e.values.get("manager") not in {n.id for n in new} - placed
                 or e.values.get("manager") == e.id]
        if not ready:  # a loop among new people, reported above
            ready = new
        for e in ready:
            plan.created.append(e)
            placed.add(e.id)
        new = [e for e in new if e.id not in placed]
    return plan


def _write(s, plan: Plan, actor: str) -> None:
    for e in plan.created:
        person = Staff(id=e.id, name=e.values["name"], role=e.values["role"],
                       email=e.values["email"], mobile=e.values.get("mobile"),
                       region=e.values.get("region"), manager_id=e.values.get("manager"))
        s.add(person)
        record_create(s, person, actor)  # flushes: the next one's manager is on file
    for e, diff in plan.updated:
        person = s.get(Staff, e.id)
        apply_changes(s, person, actor, **{ATTRIBUTE.get(n, n): new for n, (_, new) in diff.items()})
    s.flush()


def _keeper(db_url: str, by: str, s=None) -> Staff:
    """The person of --by: a sales-ops clerk or an admin on file, else StaffRefused."""
    if s is None:
        with session_scope(db_url) as s:
            return _keeper(db_url, by, s)
    try:
        return require_master_keeper(s, by, "修改人员名单")
    except CustomerFileError as exc:
        raise StaffRefused(str(exc)) from None


def _on_file(s) -> dict[str, Staff]:
    return {p.id: p for p in s.exec(select(Staff))}


# --- the import -------------------------------------------------------------------------------

@dataclass
class StaffImport:
    source: str
    rows: int
    dry_run: bool
    created: list[Entry]
    updated: list[tuple[Entry, dict]]
    unchanged: list[str]
    unknown_columns: tuple[str, ...]
    seconds: float = 0.0

    def as_json(self) -> dict:
        return {"source": self.source, "rows": self.rows, "dry_run": self.dry_run,
                "created": [{"id": e.id, **{n: e.values.get(n) for n in FIELDS}}
                            for e in self.created],
                "updated": [{"id": e.id, "changes": diff} for e, diff in self.updated],
                "unchanged": self.unchanged, "unknown_columns": list(self.unknown_columns)}


def _parse_row(row: Row, columns: tuple[str, ...]) -> Entry:
    sid = row.get("id", staff_id)
    values = {}
    for name in FIELDS:
        if name in columns:
            values[name] = row.get(name, lambda text, name=name: check_field(name, text))
    return Entry(sid, values, row.number)


def import_staff(db_url: str, path: Path | str, by: str, *, dry_run: bool = False,
                 sheet: str | None = None) -> StaffImport:
    """Create or update the people of a CSV/XLSX file (columns id, name, role, email, mobile,
    region, manager; or 人员编号, 姓名, 角色, 邮箱, 手机号, 大区, 上级). A column the file lacks
    leaves that field of people on file as it is; a blank cell of an optional column
    (mobile, region, manager) clears it. Raises TableError listing every problem by row and
    column, StaffRefused for `by`; nothing is written then, nor on a dry run."""
    started = time.perf_counter()
    _keeper(db_url, by)  # before the file is read: a person who may not hears so first
    table = read_table(path, STAFF_COLUMNS, sheet=sheet)
    source = table.source

    def header(name: str | None) -> str | None:
        """A column as the file's header writes it (邮箱, or email)."""
        return table.headers.get(name, LABELS.get(name, name)) if name else None

    if not table.rows:
        raise TableError([Problem(source, table.header_row, None,
                                  "表头下没有数据行，文件中没有可导入的人员")])
    # a person twice in the file, whatever else is wrong with either row
    problems: list[Problem] = []
    first_row: dict[str, int] = {}
    for row in table.rows:
        sid = row["id"].strip()
        if sid and sid in first_row:
            problems.append(Problem(source, row.number, header("id"),
                                    f"人员编号 {_shown(sid)} 与第{first_row[sid]}行重复"))
        first_row.setdefault(sid, row.number)
    try:
        entries = convert_rows(table.rows, lambda r: _parse_row(r, table.columns))
    except TableError as exc:  # its cells named by column name: say them as the file does
        problems += [Problem(p.source, p.row, header(p.column), p.message)
                     for p in exc.problems]
        more = exc.more
    else:
        more = 0
    if problems:
        problems.sort(key=lambda p: p.row or 0)
        raise TableError(problems[:MAX_PROBLEMS],
                         more=more + max(0, len(problems) - MAX_PROBLEMS))
    with session_scope(db_url) as s:
        _keeper(db_url, by, s)
        plan = plan_changes(_on_file(s), entries)
        if plan.problems:
            raise TableError([Problem(source, e.row, header(f) if f else None, message)
                              for e, f, message in sorted(plan.problems,
                                                          key=lambda p: p[0].row or 0)])
        if not dry_run:
            _write(s, plan, f"cli:{by}")
    return StaffImport(source, len(entries), dry_run, plan.created, plan.updated,
                       plan.unchanged, table.unknown, time.perf_counter() - started)


# --- one person -------------------------------------------------------------------------------

def set_staff(db_url: str, sid: str, by: str, **texts: str | None) -> tuple[Staff, dict]:
    """Change the given fields (text as typed; '' clears mobile, region or manager) of one
    person on file, logged as `cli:<by>`: (the person as now, {field: [old, new]}).
    StaffRefused (nothing written) for a bad value, an unknown person or manager, a loop, a
    `by` who may not, or nothing to change."""
    given = {n: t for n, t in texts.items() if t is not None}
    if not given:
        raise StaffRefused("请至少指定 " + "、".join(f"--{n}" for n in FIELDS) + " 中的一项")
    values = {}
    for name, text in given.items():
        try:
            values[name] = check_field(name, text)
        except CellError as exc:
            raise StaffRefused(f"--{name}：{exc.message}") from None
    with session_scope(db_url) as s:
        _keeper(db_url, by, s)
        on_file = _on_file(s)
        if sid not in on_file:
            raise StaffRefused(f"人员不存在：{sid}")
        plan = plan_changes(on_file, [Entry(sid, values)], from_file=False)
        if plan.problems:
            raise StaffRefused("\n".join(
                (f"--{f}：" if f else "") + message for _, f, message in plan.problems))
        if not plan.updated:
            now = "，".join(f"{LABELS[n]}已是 {value_text(n, v)}" for n, v in values.items())
            raise StaffRefused(f"人员 {sid} 没有需要修改的字段（{now}）")
        _write(s, plan, f"cli:{by}")
        [(_, diff)] = plan.updated
        return s.get(Staff, sid), diff

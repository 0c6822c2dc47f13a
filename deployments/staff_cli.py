"""`salesops staff import` and `salesops staff set`: the staff file (人员名单) from the command
line, beside `staff token` (deployments/customers_cli.py registers them in its `staff` group).

Each command is one transaction: on any error nothing is written, a Chinese message goes to
stderr and the exit code is 2.
"""
from __future__ import annotations

import json
from pathlib import Path

from deployments.customers_cli import CliError, _settings, _table_error, input_file


def _person_text(e) -> str:
    from flows.staff_file import value_text

    v = e.values
    parts = [value_text("role", v.get("role")), f"邮箱 {v.get('email')}"]
    parts += [f"{label} {value_text(name, v[name])}" for name, label in
              (("mobile", "手机号"), ("region", "大区"), ("manager", "上级")) if v.get(name)]
    return f"{e.id} {v.get('name')}（{'，'.join(parts)}）"


def _changes_text(diff: dict) -> str:
    from flows.staff_file import LABELS, value_text

    return "；".join(f"{LABELS[n]} {value_text(n, old)} → {value_text(n, new)}"
                    for n, (old, new) in diff.items())


def cmd_staff_import(args) -> int:
    from connectors.tabular import TableError
    from flows.staff_file import StaffRefused, import_staff

    settings = _settings()
    path = input_file(Path(args.file))
    try:
        report = import_staff(settings.db_url, path, args.by, dry_run=args.dry_run,
                              sheet=args.sheet)
    except TableError as exc:
        raise _table_error(exc) from None
    except StaffRefused as exc:
        raise CliError(f"{exc}\n未写入任何数据。") from None
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False))
        return 0
    r = report
    head = "试运行（未写入数据库）" if r.dry_run else "导入完成"
    print(f"{head}：{r.source}，共 {r.rows} 行")
    print(f"  新增人员 {len(r.created)}，更新 {len(r.updated)}，已有且无变化 {len(r.unchanged)}")
    verb = "将" if r.dry_run else "已"
    for e in r.created:
        print(f"    第{e.row}行 {verb}新增 {_person_text(e)}")
    for e, diff in r.updated:
        print(f"    第{e.row}行 {verb}更新 {e.id}：{_changes_text(diff)}")
    if r.unknown_columns:
        print(f"  未识别的列已忽略：{'、'.join(r.unknown_columns)}")
    if not r.dry_run and (r.created or r.updated):
        print(f"  操作人 {args.by}，已记入操作日志")
    return 0


def cmd_staff_set(args) -> int:
    from flows.staff_file import StaffRefused, set_staff

    settings = _settings()
    try:
        person, diff = set_staff(settings.db_url, args.staff_id, args.by, name=args.name,
                                 role=args.role, email=args.email, mobile=args.mobile,
                                 region=args.region, manager=args.manager)
    except StaffRefused as exc:
        raise CliError(f"{exc}\n未修改任何数据。") from None
    if args.json:
        print(json.dumps({"staff_id": person.id, "by": args.by, "changes": diff},
                         ensure_ascii=False))
        return 0
    print(f"人员 {person.id} {person.name}：{_changes_text(diff)}")
    print(f"已修改 {len(diff)} 个字段（操作人 {args.by}，已记入操作日志）")
    return 0


def add_parsers(ssub) -> None:
    """`staff import` and `staff set`, in the `staff` group of customers_cli."""
    from models.staff import ROLE_LABELS

    roles = "、".join(f"{r}（{label}）" for r, label in ROLE_LABELS.items())
    i = ssub.add_parser("import", help="从 CSV/XLSX 新增或更新人员（先整体检查，有误则不写入；记入操作日志）")
    i.add_argument("file", metavar="文件",
                   help="CSV 或 XLSX 文件；表头须有 id（人员编号/工号），可选 name（姓名）、"
                   "role（角色）、email（邮箱）、mobile（手机号）、region（大区）、manager（上级，"
                   "填上级的人员编号）。新人员须有姓名、角色、邮箱；已有人员只更新文件中有的列，"
                   "手机号、大区、上级的空单元格表示清空")
    i.add_argument("--by", required=True, metavar="人员编号",
                   help="操作人工号（须为销售运营或管理员；写入操作日志）")
    i.add_argument("--dry-run", action="store_true", help="只检查并列出将做的修改，不写入数据库")
    i.add_argument("--sheet", default=None, metavar="工作表", help="XLSX 中要导入的工作表（默认第一个非空表）")
    i.add_argument("--json", action="store_true", help="输出一个 JSON 对象")
    i.set_defaults(func=cmd_staff_import)

    e = ssub.add_parser("set", help="修改一个人员的姓名、角色、邮箱、手机号、大区或上级（记入操作日志）")
    e.add_argument("staff_id", metavar="人员编号", help="要修改的人员编号，例如 rep-zhangwei")
    e.add_argument("--name", default=None, metavar="姓名", help="姓名")
    e.add_argument("--role", default=None, metavar="角色", help=f"角色：{roles}")
    e.add_argument("--email", default=None, metavar="邮箱", help="邮箱，例如 name@example.com")
    e.add_argument("--mobile", default=None, metavar="手机号",
                   help="手机号（推送时 @ 提醒用；\"\" 表示清空）")
    e.add_argument("--region", default=None, metavar="大区", help="大区，例如 华东（\"\" 表示清空）")
    e.add_argument("--manager", default=None, metavar="人员编号",
                   help="上级的人员编号（\"\" 表示清空）")
    e.add_argument("--by", required=True, metavar="人员编号",
                   help="操作人工号（须为销售运营或管理员；写入操作日志）")
    e.add_argument("--json", action="store_true", help="输出一个 JSON 对象")
    e.set_defaults(func=cmd_staff_set)

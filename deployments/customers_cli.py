"""`salesops customers …` and `salesops staff …`: master data from the command line
(`staff import` and `staff set` live in deployments/staff_cli.py).

Each command is one transaction: on any error nothing is written, a Chinese message goes to
stderr and the exit code is non-zero.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


MAX_TOKEN_DAYS = 366  # a staff token's longest life (`salesops staff token --days`)


class CliError(Exception):
    """A message for the person at the terminal; exit code 2 (bad input) unless given."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def unreadable(path, exc: OSError, what: str = "文件") -> CliError:
    """`无法读取文件 a.yaml：文件不存在` — why, in Chinese rather than the system's English."""
    from connectors.files import os_reason

    return CliError(f"无法读取{what} {path}：{os_reason(exc)}")


def input_file(path: Path) -> Path:
    """A file named on the command line that must be read: refused as `unreadable` words it
    (`无法读取文件 X：这是一个目录，不是文件` / `…：文件不存在`)."""
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise unreadable(path, exc) from exc
    return path


def customer_ids(*ids: int, outcome: str) -> None:
    """Customer ids typed on the command line: one no file can have (0, or beyond what the
    database's id column holds — a 10-digit finance code pasted by mistake) is refused as
    an unknown file, as the API refuses it, before the database is asked."""
    from models.base import MAX_ID

    for cid in ids:
        if not 1 <= cid <= MAX_ID:
            raise CliError(f"客户档案不存在：{cid}\n{outcome}")


def _settings():
    from connectors.settings import get_settings
    from models.db import migrate

    settings = get_settings()
    migrate(settings.db_url)
    return settings


def _hub():
    from flows.hub import current_hub

    _settings()
    return current_hub()


def _staff(db_url: str, staff_id: str):
    from models import Staff
    from models.db import session_scope

    with session_scope(db_url) as s:
        person = s.get(Staff, staff_id)
    if person is None:
        raise CliError(f"人员不存在：{staff_id}")
    return person


# --- match ------------------------------------------------------------------------------

def match_lines(index, lines, limit: int = 5):
    """One result per non-blank line: the matcher's decision and up to `limit` candidates,
    or the reason the line cannot be a customer name."""
    from models.name_input import check_customer_name

    for raw in lines:
        query = raw.rstrip("\r\n")
        if not query.strip():
            continue
        problem = check_customer_name(query)
        if problem:
            yield {"query": query, "decision": "unknown", "candidates": [],
                   "error": {"code": problem.code, "message": problem.message}}
            continue
        result = index.find(query.strip(), limit=limit)
        yield {"query": query, "decision": result.decision, "candidates": [
            {"customer_id": c.customer_id, "legal_name": c.legal_name,
             "matched_alias": c.matched_alias, "score": round(c.score, 1)}
            for c in result.candidates[:limit]]}


def _query_lines(name: str):
    """The lines of the query file (`-`: standard input), all read before anything is
    printed, in the encodings the imports read (connectors.tabular.decode_csv: UTF-8,
    GB18030/GBK as Notepad saves, UTF-16 as Excel's 「Unicode 文本」)."""
    import io

    from connectors.tabular import TableError, decode_csv

    path = Path(name)
    try:
        if name == "-":
            data = getattr(sys.stdin, "buffer", None)
            data = data.read() if data is not None else sys.stdin.read().encode("utf-8")
        else:
            data = path.read_bytes()
    except OSError as exc:
        raise unreadable(path, exc, "查询文件") from exc
    try:
        text = decode_csv(data)
    except TableError as exc:
        raise CliError(f"无法读取查询文件 {name}：" + "；".join(p.message for p in exc.problems)
                       ) from None
    return io.StringIO(text, newline=None)  # line ends as a text file reads them


def cmd_match(args) -> int:
    from flows.customer_index import customer_index

    if not 1 <= args.limit <= 20:  # as the suggest API: 0 would print none, -1 all but one
        raise CliError(f"--limit 每个名称的候选数须在 1–20 之间，不能是 {args.limit}")
    settings = _settings()
    lines = _query_lines(args.file)
    index = customer_index(settings.db_url)
    index.current()  # built (and frozen out of the collector's sight) before the first line
    bad = total = 0
    labels = {"auto": "自动匹配", "suggest": "候选", "unknown": "未识别"}
    for row in match_lines(index, lines, args.limit):
        total += 1
        bad += "error" in row
        if args.json:
            print(json.dumps(row, ensure_ascii=False), flush=False)
        else:
            best = row["candidates"][0] if row["candidates"] else None
            detail = (row["error"]["message"] if "error" in row else
                      f"{best['legal_name']}（{best['score']}，匹配“{best['matched_alias']}”）"
                      if best else "—")
            print(f"{row['query']}\t{labels[row['decision']]}\t{detail}")
    sys.stdout.flush()
    if bad:
        print(f"{total} 行中有 {bad} 行不是有效的客户名称（见各行 error）", file=sys.stderr)
        return 1
    return 0


# --- import ----------------------------------------------------------------------------

def _table_error(exc) -> CliError:
    return CliError(f"{exc}\n未写入任何数据。")


def _change_line(c) -> str:
    return f"客户 {c.customer_id} {c.legal_name}：{c.label} {c.old or '（空）'} → {c.new}"


def cmd_import(args) -> int:
    from connectors.tabular import TableError
    from flows.customer_import import (
        DEFAULT_ACTOR, ReviewNotWritten, import_customers, parse_update_fields,
    )
    from models.customer_files import CustomerFileError

    update: tuple[str, ...] = ()
    if args.update is not None:
        try:
            update = parse_update_fields(args.update)
        except CustomerFileError as exc:
            raise CliError(str(exc)) from None
        if not args.by:
            raise CliError("使用 --update 覆盖已有客户的字段时须用 --by 指明操作人（销售运营或管理员）")
    settings = _settings()
    actor = DEFAULT_ACTOR
    if args.by:
        actor = _staff(settings.db_url, args.by).id
    path = input_file(Path(args.file))
    try:
        report = import_customers(settings.db_url, path, actor=actor, review_out=args.review_out,
                                  dry_run=args.dry_run, sheet=args.sheet, update=update)
    except TableError as exc:
        raise _table_error(exc) from None
    except CustomerFileError as exc:
        raise CliError(f"{exc}\n未写入任何数据。") from None
    except ReviewNotWritten as exc:  # the review workbook, written after the commit
        from connectors.files import os_reason

        raise CliError(f"客户已导入，但复核表 {exc.path} 写入失败："
                       f"{os_reason(exc.__cause__, writing=True)}", code=1) from None
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False))
        return 0
    from flows.customer_import import FIELD_LABELS

    r = report
    head = "试运行（未写入数据库）" if r.dry_run else "导入完成"
    print(f"{head}：{r.source}，共 {r.rows} 行，{r.customers} 个客户"
          + (f"（其中 {r.folded_rows} 行与前面的行工商全称相同，已合并为同一客户）" if r.folded_rows else ""))
    print(f"  新建客户 {r.created}，更新已有客户 {r.updated}，已有且无变化 {r.unchanged}")
    print(f"  新增别名（简称/曾用名） {r.aliases_added}")
    print(f"  分支机构关联总公司 {r.branches_linked}"
          + (f"，未找到总公司 {r.branches_without_parent}" if r.branches_without_parent else ""))
    print(f"  统一社会信用代码存疑 {r.uscc_flagged}（已保存并标记）")
    if update:
        verb = "将覆盖" if r.dry_run else "已覆盖"
        print(f"  {verb}字段 {len(r.changes)} 处（--update）：" + "，".join(
            f"{label} {sum(c.field == column for c in r.changes)}"
            for column, label in ((c, FIELD_LABELS[c]) for c in update)))
        for c in r.changes:
            print(f"    第{c.row_number}行 {_change_line(c)}")
    print(f"  字段冲突 {len(r.conflicts)}（档案已有不同的值，未覆盖）")
    members = sum(len(c.members) for c in r.clusters)
    print(f"  疑似重复 {len(r.clusters)} 组，涉及 {members} 个客户（均已分别建档，未合并）")
    if r.unknown_columns:
        print(f"  未识别的列已忽略：{'、'.join(r.unknown_columns)}")
    if r.review_path:
        print(f"复核表：{r.review_path}")
        if r.review_kept:
            print(f"  原复核表 {r.review_kept} 已填写“处理”，未覆盖；请在新复核表中处理本次导入的疑似重复")
        if r.clusters:
            print(f"  在“处理”列填写 保留 / 合并 / 忽略 后运行："
                  f"salesops customers merge --review {r.review_path} --by 工号")
    elif r.dry_run and (r.clusters or r.conflicts or r.uscc_flagged):
        print("试运行不生成复核表（新客户尚无编号）。")
    print(f"用时 {r.seconds:.1f} 秒")
    return 0


# --- set -------------------------------------------------------------------------------

def cmd_set(args) -> int:
    from flows.customer_import import set_customer_fields
    from models.customer_files import CustomerFileError

    customer_ids(args.customer_id, outcome="未修改任何数据。")
    settings = _settings()
    try:
        changes = set_customer_fields(settings.db_url, args.customer_id, args.by, tier=args.tier,
                                      region=args.region, owner=args.owner)
    except CustomerFileError as exc:
        raise CliError(f"{exc}\n未修改任何数据。") from None
    if args.json:
        print(json.dumps({"customer_id": args.customer_id, "by": args.by,
                          "changes": [c.as_json() for c in changes]}, ensure_ascii=False))
        return 0
    for c in changes:
        print(_change_line(c))
    print(f"已修改 {len(changes)} 个字段（操作人 {args.by}，已记入操作日志）")
    return 0


# --- merge -----------------------------------------------------------------------------

def _moved_text(summary: dict) -> str:
    from flows.customer_import import MOVED_LABELS

    parts = [f"{label} {summary[table]}" for table, label in MOVED_LABELS.items()
             if summary.get(table)]
    if summary.get("names"):
        parts.append(f"名称 {summary['names']}")
    if summary.get("branches"):
        parts.append(f"分支机构 {summary['branches']}")
    return "、".join(parts) or "无关联记录"


def cmd_merge(args) -> int:
    from connectors.tabular import TableError
    from flows.customer_import import apply_review, merge_files
    from models.customer_files import CustomerFileError

    settings = _settings()
    if bool(args.review) == (args.into is not None):
        raise CliError("请指定 --into 保留的客户编号 加被合并的客户编号，或 --review 复核表（二选一）")
    if args.review and args.merged:
        raise CliError("使用 --review 时不再列出客户编号")
    if args.into is not None and not args.merged:
        raise CliError("请列出要并入的客户编号，例如：--into 12 34 56")
    if args.into is not None:
        customer_ids(args.into, *args.merged, outcome="未合并任何客户。")
    try:
        if args.review:
            path = input_file(Path(args.review))
            outcome = apply_review(settings.db_url, path, args.by)
            merges, already = outcome.merges, outcome.already
        else:
            merges, already = merge_files(settings.db_url, args.into, args.merged, args.by), []
    except TableError as exc:
        raise _table_error(exc) from None
    except CustomerFileError as exc:
        raise CliError(f"{exc}\n未合并任何客户。") from None
    if args.json:
        print(json.dumps({"merges": merges, "already_merged": [
            {"merged": m, "survivor": v} for m, v in already]}, ensure_ascii=False))
        return 0
    for m in merges:
        print(f"客户 {m['merged']} 已并入客户 {m['survivor']}：移动 {_moved_text(m)}")
    for m, v in already:
        print(f"客户 {m} 此前已并入客户 {v}，跳过")
    if args.review:
        print(f"复核表 {outcome.source}：{outcome.clusters} 簇，合并 {len(merges)} 个客户，"
              f"{outcome.untouched} 簇未标记合并（保留原样）")
    else:
        print(f"共合并 {len(merges)} 个客户")
    return 0


# --- staff tokens ----------------------------------------------------------------------

def cmd_staff_token(args) -> int:
    from api.auth import issue_token
    from models.staff import role_label

    if args.days is not None and not 1 <= args.days <= MAX_TOKEN_DAYS:
        # 0 or less: a token expired when issued; years: a leaked one would never end
        raise CliError(f"--days 有效天数须在 1–{MAX_TOKEN_DAYS} 之间，不能是 {args.days}")
    settings = _settings()
    person = _staff(settings.db_url, args.staff_id)
    token = issue_token(settings, person.id, args.days)
    print(token)
    print(f"{person.name}（{role_label(person.role)}）的访问令牌，{args.days or settings.auth_token_days} 天内有效。"
          f"调用接口时放在请求头 Authorization: Bearer <令牌>。", file=sys.stderr)
    # pushes carry no token: this link, opened once on the phone, logs the person in; it
    # opens his rebate board, or his to-dos when he has no board (legal, purchasing …)
    from flows.rebate_board import BOARD_ROLES

    page = "/rebates/board" if person.role in BOARD_ROLES else "/todos"
    print(f"手机页面登录链接（打开一次即可登录）：{settings.public_base_url.rstrip('/')}"
          f"{page}?token={token}", file=sys.stderr)
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("customers",
                       help="客户主数据：批量匹配、导入、修改等级/大区/负责销售、合并")
    csub = p.add_subparsers(dest="customers_command", required=True, metavar="子命令")
    m = csub.add_parser("match", help="批量匹配客户名称（每行一个名称）")
    m.add_argument("--file", required=True, metavar="文件", help="查询文件，每行一个客户名称（- 表示标准输入）")
    m.add_argument("--json", action="store_true", help="每行输出一个 JSON 对象")
    m.add_argument("--limit", type=int, default=5, metavar="个数", help="每个名称最多输出的候选数（1–20，默认 5）")
    m.set_defaults(func=cmd_match)

    i = csub.add_parser("import", help="从 CSV/XLSX 导入客户主数据（疑似重复生成复核表，不自动合并）")
    i.add_argument("file", metavar="文件", help="CSV 或 XLSX 文件；表头须有 legal_name（工商全称），"
                   "可选 short_names、former_names（用 ; 或 ； 分隔）、uscc、province、city、"
                   "region、tier、owner、finance_code（财务客户编码）")
    i.add_argument("--review-out", default=None, metavar="路径",
                   help="疑似重复复核表的保存位置（默认：与文件同目录的 <文件名>.duplicates.xlsx）")
    i.add_argument("--by", default=None, metavar="人员编号", help="操作人工号（写入操作日志）")
    i.add_argument("--dry-run", action="store_true", help="只检查并统计，不写入数据库")
    i.add_argument("--sheet", default=None, metavar="工作表", help="XLSX 中要导入的工作表（默认第一个非空表）")
    i.add_argument("--update", default=None, metavar="字段",
                   help="已有客户的这些字段以文件为准（不同则覆盖并记入操作日志，而不是列为冲突）："
                   "tier（客户等级）、region（大区）、owner（负责销售），用逗号分隔，例如 "
                   "--update tier,region；须同时用 --by 指明销售运营或管理员")
    i.add_argument("--json", action="store_true", help="输出一个 JSON 对象")
    i.set_defaults(func=cmd_import)

    e = csub.add_parser("set", help="修改一个客户的客户等级、大区或负责销售（记入操作日志）")
    e.add_argument("customer_id", type=int, metavar="客户编号", help="客户编号")
    e.add_argument("--tier", default=None, metavar="等级", help="客户等级（A、B、C、D）")
    e.add_argument("--region", default=None, metavar="大区", help="大区，例如 华东")
    e.add_argument("--owner", default=None, metavar="人员编号", help="负责销售的人员编号")
    e.add_argument("--by", required=True, metavar="人员编号", help="操作人工号（销售运营或管理员）")
    e.add_argument("--json", action="store_true", help="输出一个 JSON 对象")
    e.set_defaults(func=cmd_set)

    g = csub.add_parser("merge", help="合并客户档案：按编号，或按填好的复核表")
    g.add_argument("merged", nargs="*", type=int, metavar="被并入编号", help="被并入的客户编号")
    g.add_argument("--into", type=int, default=None, metavar="保留编号", help="保留的客户编号")
    g.add_argument("--review", default=None, metavar="复核表",
                   help="填好“处理”列（保留/合并/忽略）的复核表 .xlsx")
    g.add_argument("--by", required=True, metavar="人员编号",
                   help="操作人工号（须为销售运营或管理员；写入操作日志）")
    g.add_argument("--json", action="store_true", help="输出一个 JSON 对象")
    g.set_defaults(func=cmd_merge)

    p = sub.add_parser("staff", help="人员：导入或修改人员名单、签发访问令牌")
    ssub = p.add_subparsers(dest="staff_command", required=True, metavar="子命令")
    t = ssub.add_parser("token", help="为人员签发访问令牌（接口与看板使用）")
    t.add_argument("staff_id", metavar="人员编号", help="人员编号，例如 rep-zhangwei")
    t.add_argument("--days", type=int, default=None, metavar="天数",
                   help=f"有效天数（1–{MAX_TOKEN_DAYS}，默认按配置）")
    t.set_defaults(func=cmd_staff_token)
    from deployments import staff_cli  # imports this module: registered once it is loaded

    staff_cli.add_parsers(ssub)

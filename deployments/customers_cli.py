"""`salesops customers …` and `salesops staff …`: master data from the command line.

Each command is one transaction: on any error nothing is written, a Chinese message goes to
stderr and the exit code is non-zero.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


class CliError(Exception):
    """A message for the person at the terminal; exit code 2 (bad input) unless given."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


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
        result = index.search(query.strip(), limit=limit)
        yield {"query": query, "decision": result.decision, "candidates": [
            {"customer_id": c.customer_id, "legal_name": c.legal_name,
             "matched_alias": c.matched_alias, "score": round(c.score, 1)}
            for c in result.candidates[:limit]]}


def cmd_match(args) -> int:
    from flows.customer_index import customer_index

    settings = _settings()
    path = Path(args.file)
    try:
        handle = sys.stdin if args.file == "-" else path.open(encoding="utf-8-sig")
    except OSError as exc:
        raise CliError(f"无法读取查询文件 {path}：{exc.strerror}") from exc
    index = customer_index(settings.db_url)
    index.current()  # build once, before the first line is timed by anyone
    bad = total = 0
    labels = {"auto": "自动匹配", "suggest": "候选", "unknown": "未识别"}
    with handle:
        for row in match_lines(index, handle, args.limit):
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


# --- staff tokens ----------------------------------------------------------------------

def cmd_staff_token(args) -> int:
    from api.auth import issue_token

    settings = _settings()
    person = _staff(settings.db_url, args.staff_id)
    token = issue_token(settings, person.id, args.days)
    print(token)
    print(f"{person.name}（{person.role}）的访问令牌，{args.days or settings.auth_token_days} 天内有效。"
          f"调用接口时放在请求头 Authorization: Bearer <令牌>。", file=sys.stderr)
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("customers", help="客户主数据：批量匹配、导入、合并、疑似新客户")
    csub = p.add_subparsers(dest="customers_command", required=True, metavar="子命令")
    m = csub.add_parser("match", help="批量匹配客户名称（每行一个名称）")
    m.add_argument("--file", required=True, help="查询文件，每行一个客户名称（- 表示标准输入）")
    m.add_argument("--json", action="store_true", help="每行输出一个 JSON 对象")
    m.add_argument("--limit", type=int, default=5, help="每个名称最多输出的候选数（默认 5）")
    m.set_defaults(func=cmd_match)

    p = sub.add_parser("staff", help="人员：签发访问令牌")
    ssub = p.add_subparsers(dest="staff_command", required=True, metavar="子命令")
    t = ssub.add_parser("token", help="为人员签发访问令牌（接口与看板使用）")
    t.add_argument("staff_id", help="人员编号，例如 rep-zhangwei")
    t.add_argument("--days", type=int, default=None, help="有效天数（默认按配置）")
    t.set_defaults(func=cmd_staff_token)

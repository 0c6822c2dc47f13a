"""`salesops orders …`: intent orders from the command line (requeue a blocked or failed one).

One transaction per command: on any error nothing is written, a Chinese message goes to
stderr and the exit code is 2.
"""
from __future__ import annotations

import json

from deployments.customers_cli import CliError, _settings


def _seconds_text(seconds: int) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds // 60} 分钟"
    return f"{seconds} 秒"


def cmd_retry(args) -> int:
    from flows.order_retry import requeue_orders
    from models import ORDER_STATUS_LABELS
    from models.customer_files import CustomerFileError

    settings = _settings()
    try:
        done = requeue_orders(settings.db_url, args.order_ids, args.by)
    except CustomerFileError as exc:  # the orders, or the person (unknown, not sales-ops)
        raise CliError(f"{exc}\n未重新提交任何意向单。") from None
    wait = settings.order_retry_base_seconds
    if args.json:
        print(json.dumps({"requeued": [r.as_json() for r in done], "by": args.by,
                          "retry_within_seconds": wait}, ensure_ascii=False))
        return 0
    for r in done:
        todos = "、".join(f"#{t}" for t in r.todos_done)
        print(f"意向单 {r.order_id}（客户“{r.customer_name}”）：原状态"
              f"「{ORDER_STATUS_LABELS.get(r.old_status, r.old_status)}」，已尝试 {r.old_attempts} 次"
              f" → 已重新排队，重新计 {settings.order_max_attempts} 次尝试"
              + (f"；待办 {todos} 已办结" if todos else ""))
    print(f"已重新提交 {len(done)} 张意向单（操作人 {args.by}，已记入操作日志）。"
          f"约 {_seconds_text(wait)}后，收件箱巡检（inbox-sweeper，每分钟运行）的下一次运行将重新处理，"
          "结果见意向单页面或 Prefect 界面")
    return 0


def _described(formatter):
    """The CLI's formatter, its description wrapped as its help is (a Chinese character two
    columns wide; argparse would take a Chinese paragraph for one word)."""
    class Described(formatter):
        def _fill_text(self, text, width, indent):
            return "\n".join(indent + line for line in self._split_lines(text, width))
    return Described


def add_parsers(sub) -> None:
    from deployments.cli import _ChineseFormatter  # loaded: it is building its parser

    p = sub.add_parser("orders", help="意向单：重新提交已暂停或处理失败的意向单")
    osub = p.add_subparsers(dest="orders_command", required=True, metavar="子命令")
    r = osub.add_parser("retry", help="将已暂停（需人工处理）或处理失败的意向单重新排队处理"
                        "（问题已排除后使用；其“意向单需人工处理”待办随之办结，记入操作日志）",
                        description="排除了意向单暂停的原因（账号、令牌、人员名单等）后使用：意向单"
                        "回到“处理失败”状态，尝试次数清零，其未办结的“意向单需人工处理”待办由操作人"
                        "办结；收件箱巡检（inbox-sweeper，每分钟运行）约 "
                        "SALESOPS_ORDER_RETRY_BASE_SECONDS 秒后重新处理。所列意向单全部可重新提交"
                        "才执行，否则一张也不改；记入操作日志。",
                        formatter_class=_described(_ChineseFormatter))
    r.add_argument("order_ids", nargs="+", metavar="意向单号", help="一个或多个意向单号，例如 IO270105-0K3F2A-7QX9")
    r.add_argument("--by", required=True, metavar="人员编号",
                   help="操作人工号（须为销售运营或管理员；写入操作日志）")
    r.add_argument("--json", action="store_true", help="输出一个 JSON 对象")
    r.set_defaults(func=cmd_retry)

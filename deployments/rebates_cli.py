"""`salesops rebates …`, `salesops settle`, and the imports rebates are computed from
(`salesops receivables|deliveries|returns import`). Chinese for the people who run them;
every command is one transaction, a refusal prints why and exits non-zero."""
from __future__ import annotations

import datetime as dt
import json
import sys
from decimal import Decimal
from pathlib import Path

from deployments.customers_cli import CliError, _hub, _settings, _staff, unreadable


def _read(path: str) -> str:
    return _read_file(path)[0]


def _read_file(path: str) -> tuple[str, bytes]:
    """The document as text: UTF-8, or GB18030/GBK as Windows Notepad saves Chinese text
    (the same rule as the CSV imports); and the file's bytes."""
    from connectors.tabular import TableError, decode_csv

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise unreadable(path, exc) from exc
    try:
        return decode_csv(data), data
    except (TableError, UnicodeDecodeError) as exc:
        raise CliError(f"文件 {path} 不是文本文件（应为 UTF-8 或 GB18030/GBK 编码的 YAML/JSON）"
                       ) from exc


def _policy_refused(path: str, problems, warnings=(), outcome: str = "未发布") -> CliError:
    """`outcome`: what did not happen (a replay publishes nothing either way)."""
    lines = "\n".join(f"  - {p}" for p in problems)
    return CliError(f"政策文档 {path} 有 {len(problems)} 处问题，{outcome}：\n{lines}"
                    + _warnings(warnings))


def _warnings(warnings) -> str:
    if not warnings:
        return ""
    return "\n请注意（不影响发布）：\n" + "\n".join(f"  - {w}" for w in warnings)


def _parse(path: str, text: str | None = None, outcome: str = "未发布"):
    from models.rebates.policy import PolicyDocumentError, parse_policy_document

    try:
        return parse_policy_document(_read(path) if text is None else text)
    except PolicyDocumentError as exc:
        raise _policy_refused(path, exc.problems, outcome=outcome) from exc


def cmd_validate(args) -> int:
    from connectors.settings import get_settings
    from flows.policies import review_draft
    from models.rebates.policy import (
        MEASURE_LABELS, PERIOD_LABELS, STACKING_LABELS, STYLE_LABELS,
    )

    spec = _parse(args.file)
    review = review_draft(get_settings().db_url, spec)  # what publishing would also check
    if review.problems or review.refusals:
        raise _policy_refused(args.file, [*review.refusals, *review.problems], review.warnings)
    print(f"校验通过：{spec.code}《{spec.name}》，自 {spec.effective_from} 起"
          f"{f'至 {spec.effective_to} ' if spec.effective_to else ''}生效，{len(spec.rules)} 条规则：")
    for rule in spec.rules:
        print(f"  - {rule.citation}：{MEASURE_LABELS[rule.measure]}，{PERIOD_LABELS[rule.period]}，"
              f"{STYLE_LABELS[rule.style]}，{len(rule.tiers)} 档，优先级 {rule.priority}，"
              f"{STACKING_LABELS[rule.stacking]}")
    if review.skipped:
        print(f"{review.skipped}：未核对已发布的版本、已确认结算的月份和主数据（发布时仍会检查）。")
    else:
        print(f"可发布为第 {review.version} 版。{_warnings(review.warnings)}")
    return 0


def cmd_publish(args) -> int:
    from flows.policies import publish_policy
    from models.rebates.policy import PolicyDocumentError

    settings = _settings()
    text, data = _read_file(args.file)
    _parse(args.file, text)  # problems first, before anything else is checked
    try:
        done = publish_policy(settings.db_url, text, _staff(settings.db_url, args.by), data)
    except PolicyDocumentError as exc:  # the document does not fit the published versions
        raise _policy_refused(args.file, exc.problems) from exc
    superseded = f"，自该日起取代第 {done.supersedes} 版" if done.supersedes else ""
    print(f"已发布：{done.code}《{done.name}》第 {done.version} 版，{done.effective_from} 起生效{superseded}。"
          f"{_warnings(done.warnings)}")
    return 0


def cmd_show(args) -> int:
    from flows.policies import policy_version
    from models.base import SHANGHAI

    v = policy_version(_settings().db_url, args.code, args.version_no)
    if args.json:
        print(json.dumps(v, ensure_ascii=False))
        return 0
    at = dt.datetime.fromisoformat(v["published_at"]).astimezone(SHANGHAI)
    governs = v["governs"]
    span = (f"{governs['from']} 至 {governs['to'] or '长期'}" if governs
            else "无（已被后续版本完全取代）")
    print(f"{v['code']} 第 {v['version']} 版《{v['name']}》"
          f"（已发布：第 {'、'.join(map(str, v['versions']))} 版）")
    print(f"发布人：{v['published_by_name'] or v['published_by']}（{v['published_by']}），"
          f"{at:%Y-%m-%d %H:%M}（北京时间）")
    print(f"文档生效期：{v['effective_from']} 至 {v['effective_to'] or '长期'}")
    print(f"适用订单日期：{span}")
    print(f"SHA-256：{v['sha256']}")
    print("—— 发布时的文档原文 ——")
    print(v["document"], end="" if v["document"].endswith("\n") else "\n")
    return 0


def cmd_list(args) -> int:
    from api.rebates import _policies

    rows = _policies(_settings().db_url)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not rows:
        print("尚未发布任何返利政策。")
    names = _staff_names(_settings().db_url)
    for r in rows:
        governs = r["governs"]
        span = (f"{governs['from']} 至 {governs['to'] or '长期'}" if governs else "已被后续版本完全取代")
        by = r["published_by"]  # as `show` names him: 吴倩（ops-01）
        who = f"{names[by]}（{by}）" if by in names else by
        print(f"{r['code']} 第{r['version']}版《{r['name']}》适用订单日期：{span}；发布人：{who}")
    return 0


REPLAY_REFUSED = "无法回放（请修改草稿后重试）"


def _staff_names(db_url: str) -> dict[str, str]:
    from sqlmodel import select

    from models import Staff
    from models.db import session_scope

    with session_scope(db_url) as s:
        return dict(s.exec(select(Staff.id, Staff.name)).all())


def cmd_replay(args) -> int:
    from flows.policies import review_draft
    from flows.rebate_replay import replay
    from models import business_date
    from models.money import yuan

    settings = _settings()
    spec = _parse(args.policy, outcome=REPLAY_REFUSED)
    review = review_draft(settings.db_url, spec)  # what validate and publish would say
    if review.problems:
        raise _policy_refused(args.policy, review.problems, review.warnings, REPLAY_REFUSED)
    try:
        result = replay(settings.db_url, spec, args.start, args.end)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    notes = [f"按此草稿发布将被拒绝：{r}" for r in review.refusals]
    notes += [str(w) for w in review.warnings]
    if f"{spec.effective_from:%Y-%m}" > result.months[-1]:  # it governs none of the orders
        notes.append(f"草稿自 {spec.effective_from} 起生效，晚于回放的最后一个月 {result.months[-1]}："
                     "回放期间结算的订单都不适用草稿，故无变化；如需试算，请回放生效之后的月份，"
                     "或在草稿副本中把 effective_from 改到回放期间")
    notes += [f"{name} 含已并入的{'、'.join(files)}：并入前对其结算的返利也计在该客户下"
              for name, files in sorted(result.merged.items())]
    this_month = f"{business_date():%Y-%m}"
    if result.months[-1] > this_month:
        notes.append(f"{result.months[-1]} 尚未开始，{this_month} 尚未结束：只含目前已签约并发货的订单")
    elif result.months[-1] == this_month:
        notes.append(f"{this_month} 尚未结束：只含目前已签约并发货的订单")
    if args.json:
        print(json.dumps({**result.as_dict(), "notes": notes}, ensure_ascii=False))
        return 0
    total = result.total
    print(f"草稿 {result.policy}（将成为第 {result.version} 版）回放 {result.months[0]} 至 {result.months[-1]}：")
    for note in notes:
        print(f"  注意：{note}")
    print(f"  现行政策合计 {yuan(total.published)}，加入草稿后 {yuan(total.draft)}，"
          f"变化 {yuan(total.change, plus=True)}")
    # months with a figure only: a range of years is mostly months without any
    months = {k: r for k, r in result.by_month.items() if r.published or r.draft}
    for title, rows, order in (("按月", months, lambda r: r.key),
                               ("按销售（变化大的在前）", result.reps, _by_change),
                               ("按客户（变化大的在前）", result.customers, _by_change)):
        print(f"\n{title}：")
        if not rows:  # no rebate under either set of policies: say so, not a bare heading
            print("  （无返利）")
        _print_capped([f"  {row.key}\t现行 {yuan(row.published)}\t草稿 {yuan(row.draft)}\t"
                       f"变化 {yuan(row.change, plus=True)}"
                       for row in sorted(rows.values(), key=order)], "完整列表请加 --json")
    return 0


LISTED = 20  # lines of a list a command prints; the rest is counted (the whole in --json)


def _print_capped(lines: list[str], whole: str = "", file=None) -> None:
    """The first LISTED of `lines`, then how many more (`whole`: where they all are)."""
    for line in lines[:LISTED]:
        print(line, file=file)
    if len(lines) > LISTED:
        print(f"  ……另有 {len(lines) - LISTED} 条未列出" + (f"（{whole}）" if whole else ""),
              file=file)


def _by_change(row):
    return (-abs(row.change), row.key)


def _actor(db_url: str, by: str | None, default: str = "cli:salesops") -> str:
    """Who the operation log names: `cli:<id>` of the person `--by` names, refused when no
    one on file has that id (人员不存在); `default` when `--by` is not given."""
    return f"cli:{_staff(db_url, by).id}" if by else default


def _unfinished(month: str, exc, done: str = ""):
    """A settlement's vouchers or documents that an outside system stopped: what is stored,
    and that running `salesops settle --month` again finishes it once (not retrying the
    same command: a confirmation, say, is stored and would be refused as made); or that
    another run is sending them right now."""
    from connectors.base import ConnectorError, TransientError
    from flows.effects import EffectInProgress
    from flows.settlement import VouchersNotSent, being_sent_report, unfinished_report

    if isinstance(exc, EffectInProgress):  # another run is sending: nothing to fix, look later
        return CliError(done + being_sent_report(month), 3)
    if not isinstance(exc, ConnectorError):  # the database was busy (_busy_stop)
        return CliError(done + unfinished_report(month, "数据库正忙（另一项操作正在写入）"), 3)
    down = isinstance(exc, TransientError)
    cause = (f"外部系统暂不可用（{exc.provider or '未知'}）" if down
             else str(exc) if isinstance(exc, VouchersNotSent)  # in Chinese already
             else f"外部系统（{exc.provider or '未知'}）拒绝了请求：{exc}")
    return CliError(done + unfinished_report(month, cause), 3 if down else 2)


def _stop_cause(exc: Exception) -> Exception:
    """What stopped a settlement that may have stored part of its work (its revision, a
    confirmation) before it: an outside system, or a busy database — said as such, never as
    "nothing was saved" (the CLI's answer to a busy database in a one-transaction command).
    Any other database error is not ours to explain: raised again."""
    from sqlalchemy.exc import DBAPIError

    from models.db import database_busy

    if isinstance(exc, DBAPIError) and not database_busy(exc):
        raise exc
    return exc


def cmd_settle(args) -> int:
    from sqlalchemy.exc import DBAPIError

    from connectors.base import PermanentError, TransientError
    from flows.settlement import (
        breakdowns, confirm_settlement, finish_revision, previous_month, settle_month,
    )
    from models.money import yuan

    month = previous_month() if args.month is None else args.month  # "" is a mistake
    if args.confirm is not None:
        if args.month is None:  # a confirmation is for good: never of a month nobody named
            raise CliError("确认结算须用 --month 指明月份（例如 --month 2026-10）：确认后不可撤销")
        if not args.by:
            raise CliError("确认结算须用 --by 指明财务人员编号")
        hub = _hub()
        person = _staff(hub.db_url, args.by)
        run = confirm_settlement(hub.db_url, month, args.confirm, person, f"cli:{person.id}")
        if not args.json:
            print(f"已确认 {run.month} 第 {run.revision} 版结算（{person.name}，{person.id}），"
                  "正在生成已确认的对账单……")
        try:
            made = finish_revision(hub, run.id)
        except (TransientError, PermanentError, DBAPIError) as exc:
            raise _unfinished(run.month, _stop_cause(exc), f"第 {run.revision} 版的确认已保存，"
                              "无需再次确认；已确认的对账单尚未生成。") from exc
        if args.json:
            print(json.dumps({"month": run.month, "revision": run.revision,
                              "status": run.status, "confirmed_by": run.confirmed_by,
                              "documents": made}, ensure_ascii=False))
            return 0
        for path in made.get("statements", []):
            print(f"对账单（已确认）：{path}")
        if made.get("workbook"):
            print(f"财务明细（已确认）：{made['workbook']}")
        return 0
    hub = _hub()
    try:
        result = settle_month(hub, month, actor=_actor(hub.db_url, args.by))
    except (TransientError, PermanentError, DBAPIError) as exc:  # what is stored; again is safe
        raise _unfinished(month, _stop_cause(exc)) from exc
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False))
        return 0
    print(result.message)
    for dimension, rows in breakdowns(result.as_dict()):
        title = f"按{dimension}"
        shown = list(rows.items())
        if len(shown) > LISTED:  # the largest; all of them are in the workbook and --json
            shown = sorted(shown, key=lambda kv: -abs(Decimal(kv[1])))[:LISTED]
        if rows:
            print(f"{title}：" + "；".join(f"{k} {yuan(v)}" for k, v in shown)
                  + (f"……另有 {len(rows) - LISTED} 项未列出（以上为金额最大的 {LISTED} 项，完整名单"
                     "见财务明细表或 --json）" if len(rows) > LISTED else ""))
    if result.voucher_ref:
        print(f"凭证草稿已提交财务：{result.voucher_ref}")
    for path in result.documents.get("statements", []):
        print(f"对账单：{path}")
    if result.documents.get("workbook"):
        print(f"财务明细：{result.documents['workbook']}")
    return 0


def _imported(summary, what: str, removed: str = "移除核销") -> int:
    print(f"{what}导入完成：新增 {summary.created}，更新 {summary.updated}，未变 {summary.unchanged}"
          + (f"，跳过 {len(summary.skipped)}" if summary.skipped else "")
          + (f"，{removed} {summary.removed}" if summary.removed else "") + "。")
    for item in summary.moved:
        print(f"  变更：{item}")
    for item in summary.notes:
        print(f"  说明：{item}")
    _print_capped([f"  跳过：{item}" for item in summary.skipped], file=sys.stderr)
    return 0


def _refused(exc) -> CliError:
    lines = "\n".join(f"  - {p}" for p in exc.problems)
    return CliError(f"导入未执行（未写入任何数据），共 {exc.count} 处问题：\n{lines}")


def cmd_receivables(args) -> int:
    from flows.sales_facts import (
        ImportRefused, SyncUnfinished, import_receivables_file, sync_receivables_or_say,
    )

    if args.action == "sync":
        if args.file:  # sync reads what finance sends, never a file named here
            raise CliError(f"sync 经财务接口同步，不读取文件 {args.file}；导入文件请用："
                           f"salesops receivables import {args.file}")
        hub = _hub()
        actor = _actor(hub.db_url, args.by, "flow:receivables-sync")
        try:  # other failures (finance refused the request) as other commands say them
            summary = sync_receivables_or_say(hub, actor)
        except SyncUnfinished as exc:
            raise CliError(str(exc)) from exc
        return _imported(summary, "应收/回款同步")
    if not args.file:
        raise CliError("请指定要导入的文件")
    settings = _settings()
    actor = _actor(settings.db_url, args.by)
    try:
        summary = import_receivables_file(settings.db_url, Path(args.file), actor,
                                          args.skip_unknown)
    except ImportRefused as exc:
        raise _refused(exc) from exc
    return _imported(summary, "应收/回款")


def cmd_movements(args) -> int:
    from flows.sales_facts import ImportRefused, import_movements

    settings = _settings()
    actor = _actor(settings.db_url, args.by)
    try:
        summary = import_movements(settings.db_url, Path(args.file), actor,
                                   returns=args.returns)
    except ImportRefused as exc:
        raise _refused(exc) from exc
    return _imported(summary, "退货/换货" if args.returns else "发货", "删除单据行")


def add_parsers(sub) -> None:
    p = sub.add_parser("rebates", help="返利政策：校验、发布、查看、回放")
    rsub = p.add_subparsers(dest="rebates_command", required=True, metavar="子命令")
    x = rsub.add_parser("validate", help="校验政策文档（不发布）")
    x.add_argument("file", metavar="政策文件", help="YAML 或 JSON 政策文档")
    x.set_defaults(func=cmd_validate)
    x = rsub.add_parser("publish", help="发布政策文档为新版本")
    x.add_argument("file", metavar="政策文件", help="YAML 或 JSON 政策文档")
    x.add_argument("--by", required=True, metavar="人员编号", help="发布人（销售运营）")
    x.set_defaults(func=cmd_publish)
    x = rsub.add_parser("show", help="查看已发布的政策版本：发布信息与文档原文")
    x.add_argument("code", metavar="政策编码")
    x.add_argument("--version", dest="version_no", type=int, metavar="版本号",
                   help="版本号（默认最新版）")
    x.add_argument("--json", action="store_true", help="输出 JSON")
    x.set_defaults(func=cmd_show)
    x = rsub.add_parser("list", help="列出已发布的政策版本及其适用期间")
    x.add_argument("--json", action="store_true", help="输出 JSON")
    x.set_defaults(func=cmd_list)
    x = rsub.add_parser("replay", help="用历史订单回放政策草稿，与现行政策逐客户、逐销售对比")
    x.add_argument("--policy", required=True, metavar="草稿文件", help="政策草稿（YAML/JSON）")
    x.add_argument("--from", dest="start", required=True, metavar="YYYY-MM", help="起始月份")
    x.add_argument("--to", dest="end", required=True, metavar="YYYY-MM", help="结束月份")
    x.add_argument("--json", action="store_true", help="输出 JSON")
    x.set_defaults(func=cmd_replay)

    p = sub.add_parser("settle", help="月度返利结算（默认上月），或确认结算版本")
    p.add_argument("--month", metavar="YYYY-MM", help="结算月份（默认上月）")
    p.add_argument("--json", action="store_true", help="输出 JSON 汇总")
    p.add_argument("--confirm", type=int, metavar="版本号",
                   help="财务确认该月的指定版本（须同时给出 --month 与 --by；确认后不可撤销）")
    p.add_argument("--by", metavar="人员编号", help="操作人（确认时须为财务或管理员）")
    p.set_defaults(func=cmd_settle)

    p = sub.add_parser("receivables", help="应收与回款：从文件导入，或经财务接口同步")
    p.add_argument("action", choices=["import", "sync"], metavar="操作",
                   help="import 导入文件；sync 经财务接口同步")
    p.add_argument("file", nargs="?", metavar="文件", help="CSV 或 Excel 导出文件（import 时）")
    p.add_argument("--skip-unknown", action="store_true", help="跳过未建档客户的发票（默认报错）")
    p.add_argument("--by", metavar="人员编号", help="操作人（记入操作日志；须为已登记人员）")
    p.set_defaults(func=cmd_receivables)

    for name, returns, what in (("deliveries", False, "发货"), ("returns", True, "退货/换货")):
        p = sub.add_parser(name, help=f"{what}记录：从 ERP 导出文件导入")
        p.add_argument("action", choices=["import"], metavar="操作", help="import 导入文件")
        p.add_argument("file", metavar="文件", help="CSV 或 Excel 文件")
        p.add_argument("--by", metavar="人员编号", help="操作人（记入操作日志；须为已登记人员）")
        p.set_defaults(func=cmd_movements, returns=returns)

"""`salesops`: the hub's command line."""
from __future__ import annotations

import argparse
import errno
import json
import os
import re
import signal
import socket
import sys
import unicodedata
from pathlib import Path

from deployments import customers_cli, orders_cli, rebates_cli


def _port_taken(host: str, port: int) -> bool:
    """Whether the API could not listen on host:port (bound as uvicorn binds it). A host this
    machine cannot listen on at all is refused in words (it is not a busy port)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except socket.gaierror as exc:
            raise customers_cli.CliError(
                f"SALESOPS_API_HOST 的地址 {host} 无法解析（{exc.strerror}）；"
                "请填本机的 IP 地址，或 0.0.0.0（所有网卡）、127.0.0.1（仅本机）", 1) from None
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise customers_cli.CliError(
                    f"SALESOPS_API_HOST 的地址 {host} 不是本机的地址，API 无法在其上监听；"
                    "请填本机的 IP 地址，或 0.0.0.0（所有网卡）、127.0.0.1（仅本机）", 1) from None
            return True
    return False


def _configured_prefect_api_url() -> str | None:
    """PREFECT_API_URL as Prefect reads it: the environment, else the active profile
    (`prefect config set PREFECT_API_URL=…`). None: serve starts its own server."""
    from prefect.settings import Settings as PrefectSettings

    return PrefectSettings().api.url or None


def _public_url_warning(settings, api_url: str) -> str | None:
    """A word for the ops engineer when the API listens for the network but the address put in
    quotes and mails (SALESOPS_PUBLIC_BASE_URL, else the API's own address) only opens on
    this machine."""
    from urllib.parse import urlsplit

    loopback = {"127.0.0.1", "localhost", "::1"}
    public = settings.public_base_url if "public_base_url" in settings.model_fields_set \
        else api_url
    if settings.api_host in loopback or (urlsplit(public).hostname or "") not in loopback:
        return None
    return (f"注意：报价单二维码、签署链接和邮件里的地址为 {public}，只有本机能打开；"
            "请将 SALESOPS_PUBLIC_BASE_URL 设为客户能访问的地址（如 https://hub.example.com）")


def _warn_unknown_assignees(settings) -> None:
    """A word for the ops engineer for each assignee setting (SALESOPS_PURCHASING_ASSIGNEE …)
    naming nobody on file: the to-dos for it could not be stored (a short order would be
    blocked for it). A warning, not a refusal: a new hub serves before its staff is imported."""
    from flows.notices import unknown_assignees

    for text in unknown_assignees(settings.db_url, settings):
        print(f"注意：{text}", file=sys.stderr)


def cmd_serve(args) -> int:
    from connectors.settings import get_settings, settings_env
    from deployments.stack import STOP_SIGNALS, LocalStack
    from flows.hub import check_backends
    from models.db import migrate

    settings = get_settings()
    # a backend chosen without what it needs is refused now, naming the variables: every
    # flow run would fail on it (`build_hub`), after the webhooks were accepted
    check_backends(settings)
    # before the minute it takes to start Prefect and the deployments
    if _port_taken(settings.api_host, settings.api_port):
        raise customers_cli.CliError(
            f"API 端口 {settings.api_host}:{settings.api_port} 已被占用（另一个 salesops serve？）；"
            "请先停止占用它的进程，或用 SALESOPS_API_PORT 换一个端口", 1)
    migrate(settings.db_url)
    _warn_unknown_assignees(settings)
    # the children run from the repository root: they get these settings, not that root's .env
    stack = LocalStack(settings.data_dir, settings_env(settings), api_port=settings.api_port,
                       api_host=settings.api_host, prefect_api_url=_configured_prefect_api_url(),
                       runner_limit=args.limit)
    # take SIGINT/SIGTERM/SIGHUP as a request to stop everything we started, not as
    # sudden death (the children run in their own sessions and would be left running)
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        stack.start()  # stops what it started when a part fails
    except (RuntimeError, TimeoutError) as exc:
        raise customers_cli.CliError(f"启动失败，已停止已启动的部分（日志在 {stack.logs}）：{exc}",
                                     1) from exc
    print(f"API：{stack.api_url}（接口文档 {stack.api_url}/docs）")
    print(f"Prefect 界面：{stack.prefect_ui_url}")
    warning = _public_url_warning(settings, stack.api_url)
    if warning:
        print(warning, file=sys.stderr)
    print("按 Ctrl+C 停止。")
    try:
        return _wait_for_stop(stack)
    finally:
        stack.stop()


def _wait_for_stop(stack, every: float = 2.0) -> int:
    """Until SIGINT/SIGTERM/SIGHUP (0), or until a part the stack started ends on its own (1:
    the rest is stopped, so a supervisor sees the hub down and can start it again)."""
    from deployments.stack import STOP_SIGNALS

    while signal.sigtimedwait(STOP_SIGNALS, every) is None:
        for name, code in stack.exited():
            print(f"错误：{name} 意外退出（退出码 {code}），正在停止其余部分；"
                  f"日志：{stack.logs / (name + '.log')}", file=sys.stderr)
            return 1
    return 0


def cmd_demo(args) -> int:
    from connectors.settings import get_settings
    from deployments.demo import print_summary, run_demo

    get_settings()  # the demo reads the same environment: a bad value is named, never echoed
    try:
        summary = run_demo(Path(args.data_dir))
    except Exception as exc:  # a failed demo must say why and exit non-zero
        print(f"演示失败：{exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print_summary(summary)
    return 0


def cmd_migrate(args) -> int:
    from connectors.settings import get_settings
    from models.db import (
        downgrade, downgrade_losses, migrate, refuse_newer_schema, schema_revision,
        schema_revisions,
    )

    url = get_settings().db_url
    if args.down_to is None:
        migrate(url)
        print("数据库已升级到最新版本。")
        return 0
    known, current = schema_revisions(), schema_revision(url)
    refuse_newer_schema(url)  # made by a newer release: say which and what to run there
    if args.down_to not in known:
        raise customers_cli.CliError(
            f"没有数据库结构版本 {args.down_to}（已有：{'、'.join(known)}）", 2)
    if current not in known or known.index(args.down_to) >= known.index(current):
        raise customers_cli.CliError(
            f"数据库当前为版本 {current or '（未初始化）'}，只能回退到更早的版本", 2)
    losses = downgrade_losses(url, args.down_to)
    if losses and not args.yes:  # a mistyped version must not drop the books
        raise customers_cli.CliError(
            f"回退到版本 {args.down_to} 会删除以下数据：{'、'.join(losses)}。确认已备份数据库、"
            "确需回退，请加 --yes 再运行", 2)
    downgrade(url, args.down_to)
    print(f"数据库结构已回退到版本 {args.down_to}。")
    return 0


def cmd_seed(args) -> int:
    from connectors.settings import get_settings
    from deployments.seed import seed_sample_data
    from models.db import migrate

    url = get_settings().db_url
    migrate(url)
    seed_sample_data(url)
    print("示例数据已写入（已存在的记录保持不变）。")
    return 0


class _ChineseFormatter(argparse.HelpFormatter):
    def add_usage(self, usage, actions, groups, prefix=None):
        return super().add_usage(usage, actions, groups, "用法：" if prefix is None else prefix)

    def _split_lines(self, text, width):
        """Help wrapped as a terminal shows it: a Chinese character takes two columns and a
        line may break after any of them, but never inside a name written in Latin letters
        (argparse takes a Chinese sentence for one long word and cuts `region` into `reg` and
        `ion`; a clerk copies those names into a sheet's header row)."""
        lines, line = [], ""
        for token in _HELP_TOKEN.findall(self._whitespace_matcher.sub(" ", text).strip()):
            if line and _columns(line + token.rstrip()) > width:
                lines.append(line.rstrip())
                line = token.lstrip()
            else:
                line += token
        return [*lines, line.rstrip()] if line.strip() else lines


_HELP_TOKEN = re.compile(r"[A-Za-z0-9_.\-/=<>@:%\[\]]+|\s+|.")  # a Latin name whole


def _columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


# argparse's own messages, as the people who use the hub read them
_MESSAGES = (("the following arguments are required:", "缺少必需参数："),
             ("unrecognized arguments:", "无法识别的参数："),
             ("invalid choice:", "无效的选择："), ("(choose from", "（可选："),
             ("invalid int value:", "不是整数："), ("invalid float value:", "不是数字："),
             ("expected one argument", "需要一个取值"),
             ("expected at most one argument", "最多一个取值"),
             ("expected at least one argument", "至少需要一个取值"),
             ("ignored explicit argument", "此开关不带取值（不能写成 =…），多余的取值："),
             ("one of the arguments", "以下参数须给出其一："),
             ("ambiguous option:", "选项有歧义："), ("could match", "可能是"),
             ("argument ", "参数 "),
             ("not allowed with argument", "不能与以下参数同时使用："))


class ChineseArgumentParser(argparse.ArgumentParser):
    """argparse with its headings, help flag and errors in Chinese."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("add_help", False)
        kwargs.setdefault("formatter_class", _ChineseFormatter)
        super().__init__(*args, **kwargs)
        self._positionals.title = "参数"
        self._optionals.title = "选项"
        self.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS,
                          help="显示帮助并退出")

    def error(self, message):
        for english, chinese in _MESSAGES:
            message = message.replace(english, chinese)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}：错误：{message}\n")


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"不是整数：{text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"应至少为 1：{value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = ChineseArgumentParser(prog="salesops", description="销售运营中台命令行")
    sub = parser.add_subparsers(dest="command", required=True, metavar="命令")
    p = sub.add_parser("serve", help="启动 API、流程部署与本地 Prefect 服务（未配置 PREFECT_API_URL 时）")
    p.add_argument("--limit", type=_at_least_one, default=4, metavar="数量",
                   help="同时运行的流程数上限（至少为 1）")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("demo", help="用内置示例数据完整演示意向单流程，结束后输出汇总")
    p.add_argument("--json", action="store_true", help="最后一行输出 JSON 格式汇总")
    p.add_argument("--data-dir", default="var/demo", metavar="目录",
                   help="演示数据目录（每次运行前清空；不清空非演示建立的非空目录，演示拒绝运行）")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("migrate", help="将数据库结构升级到最新版本")
    p.add_argument("--down-to", metavar="版本", help="回退到较早的数据库结构版本（回滚发布时用，如 0002）")
    p.add_argument("--yes", action="store_true",
                   help="回退会删除数据（表或列）时，确认执行（否则只列出将删除的数据并退出）")
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser("seed", help="写入示例产品、人员、客户与库存")
    p.set_defaults(func=cmd_seed)
    customers_cli.add_parsers(sub)
    rebates_cli.add_parsers(sub)
    orders_cli.add_parsers(sub)
    return parser


def _refused_by_outside_system(args, exc) -> str:
    """What a connector's permanent failure tells the person who ran the command: which command
    did not finish, and the connector's own message (explained when it is not Chinese)."""
    words = [args.command, *(v for k, v in vars(args).items()
                             if isinstance(v, str) and (k == "action" or k.endswith("_command")))]
    from flows.errors import CHINESE, status_advice

    message = str(exc)
    if not CHINESE.search(message):
        message = (f"外部系统（{exc.provider or '未知'}）拒绝了请求，重试无效，"
                   f"{status_advice(exc) or '请人工处理后再运行'}（原始信息：{message}）")
    return f"「salesops {' '.join(words)}」未完成：{message}"


def _reader_gone() -> int:
    """The program reading our output stopped reading (`salesops … --json | head`): the rest
    is dropped quietly, as a Unix tool killed by SIGPIPE would (exit 141 = 128 + SIGPIPE,
    as Ctrl+C is 130), not with a Python traceback."""
    # what is still buffered goes nowhere: Python's own flush at exit must not fail again
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
    return 128 + signal.SIGPIPE


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    import sqlalchemy as sa

    from connectors.base import PermanentError, TransientError
    from connectors.settings import SettingsInvalid
    from flows.errors import Refusal
    from models.db import (
        DatabaseUrlUnusable, SchemaMismatch, database_busy, database_unreachable, masked_url,
        unique_clash,
    )

    try:
        code = args.func(args)
        sys.stdout.flush()  # a reader gone shows here, not as "Exception ignored" at exit
    except BrokenPipeError:
        code = _reader_gone()
    except customers_cli.CliError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        code = exc.code
    except (SettingsInvalid, SchemaMismatch) as exc:
        print(f"错误：{exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:  # the person pressed Ctrl+C: what is done is done, once
        print("已中断（Ctrl+C）。已提交的部分保留，再次运行同一命令即可继续。", file=sys.stderr)
        code = 130
    except Refusal as exc:
        print(f"错误：{exc.message}", file=sys.stderr)
        code = 2
    except TransientError as exc:
        print(f"错误：外部系统暂不可用（{exc.provider or '未知'}），请稍后重试", file=sys.stderr)
        code = 3
    except PermanentError as exc:  # a refusal too: retrying the same will not help
        print(f"错误：{_refused_by_outside_system(args, exc)}", file=sys.stderr)
        code = 2
    except DatabaseUrlUnusable as exc:
        print(f"错误：数据库无法使用：{exc}。请检查 SALESOPS_DATABASE_URL（未设置时为 "
              "SALESOPS_DATA_DIR 下的 salesops.db）", file=sys.stderr)
        code = 2
    except sa.exc.DBAPIError as exc:
        if database_unreachable(exc):
            from connectors.settings import get_settings

            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else ""
            print(f"错误：无法连接数据库 {masked_url(get_settings().db_url)}"
                  "（SALESOPS_DATABASE_URL）：请检查数据库是否已启动，地址、端口、用户与密码是否正确"
                  f"（原始信息：{reason}）", file=sys.stderr)
            code = 3
        elif database_busy(exc):
            print("错误：数据库正忙（另一项操作正在写入），本次操作未保存，请稍后重试",
                  file=sys.stderr)
            code = 3
        elif unique_clash(exc):  # another run stored the same record first
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else ""
            print("错误：另一项操作同时写入了相同的记录，本次操作未保存，请重新运行本命令"
                  f"（已保存的记录不会重复；原始信息：{reason}）", file=sys.stderr)
            code = 3
        else:  # the disk full, a file it cannot write, a defect: said, not a traceback
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            print(f"错误：数据库出错，本次操作未完成（原始信息：{reason}）。请系统管理员检查数据库"
                  "（磁盘空间、文件权限、数据库日志）后重新运行", file=sys.stderr)
            code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()

"""Audit of the `salesops` commands against README.md and docs/*.md, as the sales-ops clerk
runs them: what the docs promise (options, help, wording, exit codes, files written) and what a
mistyped or odd input gets — a Chinese message and a non-zero exit, never a Python traceback,
nothing half-written."""
from __future__ import annotations

import codecs
import re

import pytest
import sqlalchemy as sa

from models.db import get_engine
from tests.support import in_process_cli


@pytest.fixture
def cli(hub, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)


def run(cli, *args) -> tuple[int, str, str]:
    """The command as the clerk sees it: an exception escaping `salesops` is a traceback on
    her terminal (exit 1), reported here as such rather than as a test error."""
    try:
        return cli(*args)
    except Exception as exc:  # noqa: BLE001 - that is the finding
        pytest.fail(f"`salesops {' '.join(map(str, args))}` ends in a Python traceback: "
                    f"{type(exc).__name__}: {exc}")


def customers(db_url: str) -> int:
    with get_engine(db_url).connect() as conn:
        return conn.execute(sa.text("SELECT COUNT(*) FROM customer")).scalar_one()


# --- 1. `customers match --file` of a name list saved by Windows tools ----------------------

@pytest.mark.parametrize("encoding, bom", [("gb18030", b""), ("utf-16-le", codecs.BOM_UTF16_LE)],
                         ids=["notepad-ansi-gbk", "excel-unicode-text"])
def test_match_reads_or_refuses_a_name_list_not_in_utf8(hub, cli, tmp_path, encoding, bom):
    # docs/customers.md: `salesops customers match --file QUERIES.txt --json`, one JSON object
    # per line. The clerk's list of typed names comes out of Windows: Notepad's ANSI (GBK) or
    # Excel's 「Unicode 文本」 (UTF-16). Every other file the hub reads takes these (imports:
    # UTF-8/GB18030/UTF-16; policies: UTF-8 or GB18030/GBK). `match` opens the file as UTF-8
    # only (deployments/customers_cli.py: cmd_match) and the UnicodeDecodeError escapes:
    # a Python traceback, exit 1 — the exit code the docs give to "a line that cannot be a
    # customer name", so a script takes it for bad names.
    path = tmp_path / "名称.txt"
    path.write_bytes(bom + "江苏康达医疗\r\n浙江仁和\r\n".encode(encoding))
    code, out, err = run(cli, "customers", "match", "--file", path, "--json")
    assert "Traceback" not in err
    if code == 0:  # read as the imports read it
        assert "江苏康达医疗设备有限公司" in out, out
    else:  # or refused in words naming the encoding
        assert code == 2, (code, err)
        assert "编码" in err, err


# --- 2. `customers import --review-out` naming a folder: imported, then an English error ----

def test_review_out_naming_a_folder_is_refused_before_anything_is_imported(hub, cli, tmp_path):
    # docs/operations.md: `salesops customers import 客户.xlsx [--review-out 复核.xlsx]`, "one
    # transaction: any bad row ... and nothing is written". The clerk gives the folder the
    # review workbook should go to. import_customers (flows/customer_import.py) checks only
    # that the path's *parent* is a writable folder, commits the customers, then fails to
    # write the workbook over the folder: `客户已导入，但复核表写入失败：[Errno 21] Is a
    # directory: '/…/.复核.x1y2.tmp' -> '…'`, exit 1 — English, a temp-file name, the
    # duplicates imported and their review workbook nowhere.
    folder = tmp_path / "复核"
    folder.mkdir()
    path = tmp_path / "客户.csv"
    # the seeded 江苏康达医疗设备有限公司's USCC: a would-be duplicate, so a review workbook
    path.write_text("legal_name,uscc\n甲乙医疗器械有限公司,91320500MA1K2D3F5H\n", encoding="utf-8")
    before = customers(hub.db_url)
    code, _out, err = run(cli, "customers", "import", path, "--review-out", folder, "--by",
                         "ops-01")
    assert "Errno" not in err and "Is a directory" not in err, err
    assert code == 2, (code, err)
    assert customers(hub.db_url) == before, "customers imported though the command failed"


# --- 3. a folder given as the customers file is not "missing" ---------------------------------

@pytest.mark.parametrize("command", [("customers", "import"),
                                     ("customers", "merge", "--by", "ops-01", "--review")],
                         ids=["import", "merge-review"])
def test_a_folder_given_as_the_customers_file_is_called_a_folder(hub, cli, tmp_path, command):
    # The receivables/deliveries/returns imports and `rebates validate` say
    # `无法读取文件 X：这是一个目录，不是文件`; `customers import X` and `customers merge
    # --review X` say `文件不存在：X` (deployments/customers_cli.py: `not path.is_file()`), and
    # the clerk looking at the folder right there on her screen is told it does not exist.
    folder = tmp_path / "客户资料"
    folder.mkdir()
    code, _out, err = run(cli, *command, folder)
    assert code == 2, err
    assert "文件不存在" not in err, err
    assert "目录" in err, err


# --- 4. merging into a file already merged: "cannot merge a file into itself" ---------------

def test_merging_into_a_file_merged_earlier_names_that_merge(hub, cli):
    # docs/customers.md: `salesops customers merge --into ID MERGED_ID …`. Clerk A merged 浙江仁和
    # (2) into 江苏康达 (1); clerk B, working from last week's list, keeps 2 and merges 1 into
    # it. merge_customers (models/customer_files.py) resolves the survivor 2 to 1 first and
    # then refuses `不能把客户档案合并到它自己`: B asked to merge two different files and is
    # told they are one and the same, with no word that 2 was merged into 1 (which is what
    # she must know to decide). `customers set 2` says it plainly: 客户 2 已并入客户 1.
    code, _out, err = run(cli, "customers", "merge", "--into", "1", "2", "--by", "ops-01")
    assert code == 0, err
    code, _out, err = run(cli, "customers", "merge", "--into", "2", "1", "--by", "ops-01")
    assert code == 2, err
    assert "它自己" not in err, err
    assert re.search(r"2.*已.*并入.*1", err), err


# --- 5. help that advertises what is not there, and leaves out what the docs describe --------

def test_customers_help_lists_only_subcommands_that_exist(cli):
    # `salesops --help` says customers is 客户主数据：批量匹配、导入、修改等级/大区/负责销售、
    # 合并、疑似新客户. There is no suspects subcommand (`salesops customers --help` lists
    # match/import/set/merge; suspected names are decided on the manager's page and
    # `GET|POST /customers/suspects…`, docs/customers.md): the clerk looks for a command
    # that does not exist.
    code, out, _err = run(cli, "--help")
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("customers"))
    code, sub, _err = run(cli, "customers", "--help")
    if "疑似新客户" in line:
        assert "suspects" in sub, (line, sub)


def test_customers_import_help_names_the_finance_code_column(cli):
    # docs/operations.md and docs/customers.md: the customers file's optional columns include
    # `finance_code` (财务客户编码 / 金蝶客户编码 / 用友客户编码), the code the rebate vouchers
    # carry as 核算维度·客户 — and `settle` itself tells the clerk to fill 财务客户编码 through
    # the import. `salesops customers import --help` lists legal_name, short_names,
    # former_names, uscc, province, city, region, tier, owner — and not finance_code.
    code, out, _err = run(cli, "customers", "import", "--help")
    assert code == 0
    assert "finance_code" in out or "财务客户编码" in out, out


# --- 6. a customer id no database column holds: a traceback with the SQL ---------------------

@pytest.mark.parametrize("command", [
    ("customers", "set", "{id}", "--tier", "A", "--by", "ops-01"),
    ("customers", "merge", "--into", "1", "{id}", "--by", "ops-01"),
    ("customers", "merge", "--into", "{id}", "1", "--by", "ops-01"),
], ids=["set", "merge-merged", "merge-survivor"])
@pytest.mark.parametrize("typed", ["3000000000", "99999999999999999999"],
                         ids=["10-digit-finance-code", "20-digits"])
def test_a_customer_id_too_large_for_the_database_is_no_such_file(hub, cli, command, typed):
    # docs/customers.md: `customers set` refuses an unknown file (exit 2, nothing written);
    # `merge --into ID MERGED_ID …` likewise. The clerk pastes the customer's 10-digit
    # 财务客户编码 (1120300001 …) where the hub's id goes: on PostgreSQL (customer.id is
    # INTEGER) the lookup ends in psycopg's NumericValueOutOfRange, on SQLite a 20-digit
    # number in `OverflowError: Python int too large to convert to SQLite INTEGER` — both
    # escape `salesops` as a traceback quoting the SQL (deployments/customers_cli.py takes
    # any int; the API's paths are bounded by MAX_ID). Expected: 客户档案不存在, exit 2.
    args = [a.replace("{id}", typed) for a in command]
    code, _out, err = run(cli, *args)
    assert code == 2, (code, err)
    assert "客户档案不存在" in err, err


# --- 7. who confirmed from the terminal: the log says the API ---------------------------------

def test_a_confirmation_from_the_terminal_is_logged_as_the_cli(hub, cli):
    # docs/operations.md: "`--by` (here, and for `receivables import|sync` and `settle`) names
    # a person on file, the actor of what the command stores in the operation log
    # (`cli:ops-01`)"; docs/customers.md: `cli:<id>` for the command line, `staff:<id>` for
    # the API. `salesops settle --month M --confirm N --by finance-01` logs the confirmation
    # as `staff:finance-01` (flows/settlement.py: confirm_settlement always writes
    # f"staff:{person.id}"): an auditor cannot tell the terminal from the API/status page.
    import datetime as dt

    from tests.rebate_support import clock_from

    clock_from(dt.date(2026, 11, 5))
    code, _out, err = run(cli, "settle", "--month", "2026-10")
    assert code == 0, err
    code, _out, err = run(cli, "settle", "--month", "2026-10", "--confirm", "1", "--by",
                         "finance-01")
    assert code == 0, err
    with get_engine(hub.db_url).connect() as conn:
        actors = [r[0] for r in conn.execute(sa.text(
            "SELECT actor FROM operation_log WHERE entity = 'settlement_run' "
            "AND action = 'update'"))]
    assert actors == ["cli:finance-01"], actors


# --- 8. importing the same file again wipes the reviewer's marks ------------------------------

def test_importing_again_keeps_the_marks_a_reviewer_made_in_the_review_workbook(hub, cli,
                                                                                tmp_path):
    # docs/operations.md: would-be duplicates go to `<file>.duplicates.xlsx` beside the file;
    # "Fill 处理 with 保留 / 合并 / 忽略 and run `merge --review`"; "Importing the same file
    # twice changes nothing". The sales manager spends the afternoon marking the workbook;
    # meanwhile the clerk runs the same import again (unsure it went through, or after adding
    # a row). import_customers (flows/customer_import.py) writes the review workbook afresh
    # over the same path (write_atomically), every 处理 cell empty, and the summary says only
    # 复核表：… — the reviewer's decisions are gone without a word, and `merge --review`
    # then merges nothing.
    import openpyxl

    path = tmp_path / "客户.csv"
    # the seeded 广州华南医药贸易有限公司's USCC: a would-be duplicate
    path.write_text("legal_name,uscc\n丙丁医疗器械有限公司,91440100MA59QX1R3H\n",
                    encoding="utf-8")
    code, _out, err = run(cli, "customers", "import", path, "--by", "ops-01")
    assert code == 0, err
    review = tmp_path / "客户.duplicates.xlsx"
    wb = openpyxl.load_workbook(review)
    ws = wb["疑似重复"]
    header = [c.value for c in ws[1]]
    mark = header.index("处理") + 1
    assert ws.max_row == 3, "one cluster of two customers"
    ws.cell(2, mark).value, ws.cell(3, mark).value = "保留", "合并"
    wb.save(review)

    code, _out, err = run(cli, "customers", "import", path, "--by", "ops-01")
    assert code == 0, err
    ws = openpyxl.load_workbook(review)["疑似重复"]
    marks = [ws.cell(r, mark).value for r in (2, 3)]
    assert marks == ["保留", "合并"], f"the reviewer's marks were overwritten: {marks}"

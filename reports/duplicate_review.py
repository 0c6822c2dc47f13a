"""The duplicate-review workbook of a customer import (疑似重复客户复核表).

Sheet 疑似重复: one row per file of each cluster, with the reason, a suggested survivor and an
empty 处理 column the reviewer fills with 保留 / 合并 / 忽略; `salesops customers merge
--review` reads it back by these headers. Further sheets list what the import did not
decide alone: 字段冲突 (a value in the file differs from the one on record, not overwritten)
and 信用代码存疑 (a malformed USCC stored and flagged).
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill

from connectors.tabular import append_as_text
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from connectors.files import write_atomically

REVIEW_SHEET = "疑似重复"
# header → width; merge --review finds its columns by these names
REVIEW_COLUMNS = (("簇号", 7), ("客户编号", 10), ("工商全称", 36), ("统一社会信用代码", 21),
                  ("信用代码校验", 12), ("别名", 36), ("来源", 9), ("导入行号", 9),
                  ("订单数", 8), ("原因", 60), ("相似度", 8), ("建议", 30), ("处理", 9))
ACTIONS = ("保留", "合并", "忽略")
SOURCE_EXISTING, SOURCE_IMPORTED = "已有", "导入"

_HEAD_FONT = Font(bold=True, color="FFFFFF")
_HEAD_FILL = PatternFill("solid", fgColor="1F3A5F")
_BAND_FILL = PatternFill("solid", fgColor="EEF3F8")
_ACTION_FILL = PatternFill("solid", fgColor="FFF5CC")


@dataclass(frozen=True)
class ReviewLine:
    cluster: int
    customer_id: int
    legal_name: str
    uscc: str
    uscc_note: str          # "有效" / the problem / ""
    aliases: str            # joined with ；
    source: str             # 已有 | 导入
    row_number: int | None  # the import row that named it
    orders: int
    reason: str
    score: float
    suggestion: str         # "建议保留（…）" on the suggested survivor, else ""


@dataclass(frozen=True)
class ConflictLine:
    row_number: int
    customer_id: int
    legal_name: str
    field: str              # Chinese field name
    on_record: str
    in_file: str


@dataclass(frozen=True)
class FlaggedUscc:
    row_number: int
    customer_id: int
    legal_name: str
    uscc: str
    problem: str            # Chinese


def _header(ws, columns: Sequence[tuple[str, float]]) -> None:
    ws.append([name for name, _ in columns])
    for cell in ws[1]:
        cell.font, cell.fill = _HEAD_FONT, _HEAD_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center")
    for i, (_, width) in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"


def build_review_workbook(lines: Sequence[ReviewLine], conflicts: Sequence[ConflictLine],
                          flagged: Sequence[FlaggedUscc], *, source: str) -> Workbook:
    wb = Workbook()
    ws = wb.active
    ws.title = REVIEW_SHEET
    _header(ws, REVIEW_COLUMNS)
    action_col = len(REVIEW_COLUMNS)
    row = 1  # (ws.max_row walks every cell: counted here instead)
    for line in lines:
        append_as_text(ws, [line.cluster, line.customer_id, line.legal_name, line.uscc, line.uscc_note,
                   line.aliases, line.source, line.row_number, line.orders, line.reason,
                   line.score, line.suggestion, None])
        row += 1
        if line.cluster % 2 == 0:
            for col in range(1, action_col):  # (ws[row] measures the sheet each time)
                ws.cell(row, col).fill = _BAND_FILL
        ws.cell(row, action_col).fill = _ACTION_FILL
        ws.cell(row, 4).number_format = "@"
    if lines:
        letter = get_column_letter(action_col)
        choice = DataValidation(type="list", formula1='"' + ",".join(ACTIONS) + '"',
                                allow_blank=True, showErrorMessage=True,
                                errorTitle="处理方式", error="请选择：保留、合并或忽略")
        choice.add(f"{letter}2:{letter}{row}")
        ws.add_data_validation(choice)
        ws.auto_filter.ref = f"A1:{letter}{row}"

    if conflicts:
        wc = wb.create_sheet("字段冲突")
        _header(wc, (("导入行号", 9), ("客户编号", 10), ("工商全称", 36), ("字段", 14),
                     ("档案中的值", 24), ("文件中的值", 24)))
        for c in conflicts:
            append_as_text(wc, [c.row_number, c.customer_id, c.legal_name, c.field, c.on_record, c.in_file])
    if flagged:
        wf = wb.create_sheet("信用代码存疑")
        _header(wf, (("导入行号", 9), ("客户编号", 10), ("工商全称", 36), ("统一社会信用代码", 21),
                     ("问题", 50)))
        for at, f in enumerate(flagged, start=2):
            append_as_text(wf, [f.row_number, f.customer_id, f.legal_name, f.uscc, f.problem])
            wf.cell(at, 4).number_format = "@"

    wn = wb.create_sheet("说明")
    wn.column_dimensions["A"].width = 100
    for text in (
        f"来源文件：{source}",
        "“疑似重复”表：同一簇中的客户档案可能是同一家客户。导入时均已分别建档，未做任何合并。",
        "请在“处理”列填写：保留（该簇合并后保留的档案）、合并（并入本簇“保留”的档案）、忽略（不处理）。",
        "一个簇中只要有“合并”，就必须且只能有一个“保留”；全部留空或“忽略”的簇不做处理。",
        "“建议”列给出建议保留的档案（信用代码有效、订单多、已有档案优先），仅供参考。",
        "填好后运行：salesops customers merge --review 本文件.xlsx --by 工号",
        "合并会把订单、报价、待办、应收、返利明细和全部名称移到保留的档案，并记录操作日志。",
        "分支机构与其总公司是两个客户，不会出现在同一簇中，也不能合并。",
        "“字段冲突”表：文件中的值与档案不同，档案未被覆盖，请人工核对。",
        "“信用代码存疑”表：统一社会信用代码格式或校验位不正确，已按原样保存并标记。",
    ):
        append_as_text(wn, [text])
    props = wb.properties
    props.title = "疑似重复客户复核表"
    props.creator = "salesops-hub"
    props.description = f"{source}：{len({line.cluster for line in lines})} 个疑似重复簇"
    return wb


def save_review_workbook(path: Path, lines: Sequence[ReviewLine],
                         conflicts: Sequence[ConflictLine], flagged: Sequence[FlaggedUscc], *,
                         source: str) -> str:
    """Build and write atomically; returns the SHA-256 of the bytes written."""
    buf = io.BytesIO()
    build_review_workbook(lines, conflicts, flagged, source=source).save(buf)
    return write_atomically(path, buf.getvalue())

"""What a customer name typed by a person may be: checked at every door (webhook, suggest,
import, batch match) before it reaches the matcher or the database.

Chinese enterprise names are Chinese characters, with Latin letters and digits at times,
brackets around a region or a form, and a few joiners (·, &, -, ., and the comma of an English
name's "Co., Ltd."). Anything else (quotes, semicolons, slashes, control characters …) is a
typing or injection accident, refused with a message that names the characters.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from models.names import flat, normalize_name

MAX_NAME_LENGTH = 100  # the longest registered names are about 50 characters

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")
_ALLOWED = re.compile(
    r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"  # Chinese characters
    r"\u3007"  # 〇, the zero of Chinese numerals (第七〇二研究所)
    r"A-Za-z0-9 ()\[\]·・&.,\-、]")  # "," as in the English names of JVs: …Co., Ltd.

# the comma of Chinese text joins clauses, not the words of a name (康达，医疗 is a slip; the
# English "Co., Ltd." is written with the ASCII one)
_CLAUSE_COMMA = re.compile(r"[，﹐]")


@dataclass(frozen=True)
class NameProblem:
    code: str      # empty_name | name_too_long | control_characters | invalid_characters
    #                no_name_text (only brackets and joiners)
    message: str   # Chinese, for the person who typed it


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).replace("〔", "(").replace("〕", ")") \
        .replace("【", "(").replace("】", ")")


def check_customer_name(raw: str | None, *, what: str = "客户名称") -> NameProblem | None:
    """None when `raw` is acceptable as a customer name (or a suggest query)."""
    text = (raw or "").strip()
    if not text:
        return NameProblem("empty_name", f"{what}不能为空")
    if _CONTROL.search(text):
        return NameProblem("control_characters", f"{what}含有控制字符或不可见字符")
    if len(text) > MAX_NAME_LENGTH:
        return NameProblem("name_too_long",
                           f"{what}过长（{len(text)} 字），最多 {MAX_NAME_LENGTH} 字")
    # full-width letters, digits and brackets fold to their ASCII forms first
    folded = _fold(text)
    bad = sorted({ch for ch in folded if not _ALLOWED.fullmatch(ch)}
                 | set(_CLAUSE_COMMA.findall(text)))
    if bad:
        # named as typed (“，”), not as folded (“,”): the person must find them in his text
        typed = sorted({ch for ch in text if _CLAUSE_COMMA.fullmatch(ch)
                        or any(not _ALLOWED.fullmatch(f) for f in _fold(ch))})
        shown = " ".join((typed or bad)[:10])
        return NameProblem("invalid_characters", f"{what}含有不允许的字符：{shown}")
    if not flat(normalize_name(folded)):
        # only brackets and joiners ("()", "·", "-"): nothing to match, nothing to file under
        return NameProblem("no_name_text", f"{what}没有可识别的文字：{text}")
    return None

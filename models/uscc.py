"""Unified social credit code (统一社会信用代码, GB 32100-2015) structure check.

18 characters from the alphabet 0-9 A-H J-N P-R T-U W-Y (no I, O, Z, S, V):

    1      registration authority code (登记管理部门代码)
    2      organisation type code under that authority (机构类别代码)
    3-8    administrative division code of the registering office (GB/T 2260, 6 digits)
    9-17   subject identifier = organisation code (GB 11714-1997): 8 body characters
           and a check digit (weights 3 7 9 10 5 8 4 2, mod 11, 10 -> X, 11 -> 0)
    18     check character (GB/T 17710 style: weights 3^i mod 31, mod 31 over the alphabet)

Pure functions, no I/O. Messages are in Chinese because people read them.

Note: a few codes issued by early pilot offices (e.g. some 91350100M000...) do not follow the
check rules and are still legally valid; callers that meet such a code from an official
registry should trust the registry over this check.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))  # 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

# Registration authority -> allowed organisation type codes (GB 32100-2015 table 1 + amendment 1).
AUTHORITY_TYPES: dict[str, dict[str, str]] = {
    "1": {"1": "机关", "2": "事业单位", "3": "中央编办直接管理机构编制的群众团体", "9": "其他"},
    "2": {"1": "外国常驻新闻机构", "9": "其他"},
    "3": {"1": "律师执业机构", "2": "公证处", "3": "基层法律服务所", "4": "司法鉴定机构",
          "5": "仲裁委员会", "9": "其他"},
    "4": {"1": "外国在华文化中心", "9": "其他"},
    "5": {"1": "社会团体", "2": "民办非企业单位", "3": "基金会", "9": "其他"},
    "6": {"1": "外国旅游部门常驻代表机构", "2": "港澳台地区旅游部门常驻内地（大陆）代表机构",
          "9": "其他"},
    "7": {"1": "宗教活动场所", "2": "宗教院校", "9": "其他"},
    "8": {"1": "基层工会", "9": "其他"},
    "9": {"1": "企业", "2": "个体工商户", "3": "农民专业合作社"},
    "A": {"1": "军队事业单位", "9": "其他"},
    "N": {"1": "组级集体经济组织", "2": "村级集体经济组织", "3": "乡镇级集体经济组织", "9": "其他"},
    "Y": {"1": "其他"},
}
AUTHORITY_NAMES = {"1": "机构编制", "2": "外交", "3": "司法行政", "4": "文化", "5": "民政",
                   "6": "旅游", "7": "宗教", "8": "工会", "9": "市场监管（工商）",
                   "A": "中央军委改革和编制办公室", "N": "农业", "Y": "其他"}

# First two digits of GB/T 2260 division codes → the province as the customer file writes it
PROVINCES = {
    "11": "北京", "12": "天津", "13": "河北", "14": "山西", "15": "内蒙古", "21": "辽宁",
    "22": "吉林", "23": "黑龙江", "31": "上海", "32": "江苏", "33": "浙江", "34": "安徽",
    "35": "福建", "36": "江西", "37": "山东", "41": "河南", "42": "湖北", "43": "湖南",
    "44": "广东", "45": "广西", "46": "海南", "50": "重庆", "51": "四川", "52": "贵州",
    "53": "云南", "54": "西藏", "61": "陕西", "62": "甘肃", "63": "青海", "64": "宁夏",
    "65": "新疆", "71": "台湾", "81": "香港", "82": "澳门"}
# … and "10", the national (central) level
PROVINCE_PREFIXES = frozenset({"10", *PROVINCES})


def uscc_province(code: str | None) -> str | None:
    """The province in a USCC's division code (its 3rd and 4th characters), e.g. 江苏 for
    91320…; None when it is not 18 characters or names no province (the national level).
    For codes from the registry: the check character is not looked at."""
    code = clean_uscc(code or "")
    return PROVINCES.get(code[2:4]) if len(code) == 18 else None

# problem codes
OK = "ok"
BAD_LENGTH = "bad_length"
BAD_CHARACTER = "bad_character"
UNKNOWN_AUTHORITY = "unknown_authority"
UNKNOWN_TYPE = "unknown_type"
BAD_DIVISION = "bad_division"
BAD_ORG_CHECK = "bad_org_code_check"
BAD_CHECK = "bad_check_character"


@dataclass(frozen=True)
class UsccCheck:
    code: str            # the code as checked (upper-cased, spaces removed)
    ok: bool
    problem: str         # one of the problem codes above ("ok" when valid)
    message: str         # Chinese, for people
    authority: str = ""  # e.g. 市场监管（工商）
    org_type: str = ""   # e.g. 企业
    division: str = ""   # 6-digit division code
    org_code: str = ""   # 9-character organisation code

    def __bool__(self) -> bool:
        return self.ok


def clean_uscc(code: str) -> str:
    text = unicodedata.normalize("NFKC", code or "")
    return "".join(text.split()).replace("-", "").upper()


def looks_like_uscc(text: str) -> bool:
    """Whether a typed value is shaped like a USCC (18 letters and digits, spaces, dashes and
    full width aside), whatever its check character: a code, not a name."""
    code = clean_uscc(text)
    return len(code) == 18 and code.isascii() and code.isalnum()


def uscc_check_character(first17: str) -> str:
    """The 18th character for the given first 17 characters (all from ALPHABET)."""
    if len(first17) != 17 or any(ch not in _VALUE for ch in first17):
        raise ValueError("需要17位合法字符")
    total = sum(_VALUE[ch] * w for ch, w in zip(first17, WEIGHTS))
    return ALPHABET[(31 - total % 31) % 31]


def _org_value(ch: str) -> int:
    return int(ch) if ch.isdigit() else ord(ch) - 55  # A=10 … Z=35 (GB 11714)


def org_code_check_digit(body8: str) -> str:
    """Check digit of a GB 11714-1997 organisation code body (8 characters)."""
    if len(body8) != 8 or not all(ch.isdigit() or "A" <= ch <= "Z" for ch in body8):
        raise ValueError("需要8位数字或大写字母")
    c = 11 - sum(_org_value(ch) * w for ch, w in zip(body8, ORG_WEIGHTS)) % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def make_uscc(authority: str, org_type: str, division: str, org_body8: str) -> str:
    """A structurally valid code from its parts (for test data): adds both check characters."""
    first16 = f"{authority}{org_type}{division}{org_body8}"
    first17 = first16 + org_code_check_digit(org_body8)
    return first17 + uscc_check_character(first17)


def check_uscc(code: str) -> UsccCheck:
    c = clean_uscc(code)

    def bad(problem: str, message: str, **kw) -> UsccCheck:
        return UsccCheck(code=c, ok=False, problem=problem, message=message, **kw)

    if len(c) != 18:
        return bad(BAD_LENGTH, f"统一社会信用代码应为18位，实际为{len(c)}位")
    for i, ch in enumerate(c, 1):
        if ch not in _VALUE:
            hint = "（不使用字母 I、O、Z、S、V）" if ch in "IOZSV" else ""
            return bad(BAD_CHARACTER, f"第{i}位字符“{ch}”不合法{hint}")
    auth, typ, division, org = c[0], c[1], c[2:8], c[8:17]
    if auth not in AUTHORITY_TYPES:
        return bad(UNKNOWN_AUTHORITY, f"第1位登记管理部门代码“{auth}”不存在")
    auth_name = AUTHORITY_NAMES[auth]
    if typ not in AUTHORITY_TYPES[auth]:
        return bad(UNKNOWN_TYPE, f"第2位机构类别代码“{typ}”在登记管理部门“{auth_name}”下不存在",
                   authority=auth_name)
    type_name = AUTHORITY_TYPES[auth][typ]
    parts = {"authority": auth_name, "org_type": type_name, "division": division, "org_code": org}
    if not division.isdigit() or division[:2] not in PROVINCE_PREFIXES:
        return bad(BAD_DIVISION, f"第3-8位登记管理机关行政区划码“{division}”不合法", **parts)
    expected_org = org_code_check_digit(org[:8])
    if org[8] != expected_org:
        return bad(BAD_ORG_CHECK, f"第9-17位组织机构代码“{org}”的校验位应为“{expected_org}”，"
                   f"实际为“{org[8]}”", **parts)
    expected = uscc_check_character(c[:17])
    if c[17] != expected:
        return bad(BAD_CHECK, f"第18位校验码应为“{expected}”，实际为“{c[17]}”", **parts)
    return UsccCheck(code=c, ok=True, problem=OK, message="统一社会信用代码格式与校验码正确", **parts)

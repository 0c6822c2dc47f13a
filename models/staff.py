"""People the hub assigns work to: reps, their managers and the back-office roles."""
from __future__ import annotations

import unicodedata

from sqlmodel import Field, SQLModel

# what a role is called where a person reads it
ROLE_LABELS = {"rep": "销售代表", "sales_manager": "区域经理", "sales_ops": "销售运营",
               "legal": "法务", "purchasing": "采购", "finance": "财务", "risk": "风控",
               "admin": "管理员"}


def role_label(role: str) -> str:
    return ROLE_LABELS.get(role, role)


REGION_SUFFIX = "大区"


def region_label(region: str) -> str:
    """A region as people name it: '华东' → '华东大区'. Regions are free text (imports, the
    customer form): one stored as '华东大区' already says it, and stays '华东大区'."""
    return region if region.endswith(REGION_SUFFIX) else f"{region}{REGION_SUFFIX}"


def normalize_region(region: str | None) -> str | None:
    """A region as stored, whoever typed it: '华东大区', ' 华东 ' and full-width forms are
    the one region '华东' (a manager of 华东 sees the customers of 华东大区). NFKC, spaces
    around dropped, a trailing 大区 dropped (not from a region that is only 大区); blank → None."""
    if region is None:
        return None
    text = unicodedata.normalize("NFKC", region).strip()
    if text.endswith(REGION_SUFFIX) and text[:-len(REGION_SUFFIX)].strip():
        text = text[:-len(REGION_SUFFIX)].strip()
    return text or None


class Staff(SQLModel, table=True):
    __tablename__ = "staff"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=40)
    # rep | sales_manager | sales_ops | legal | purchasing | finance | risk | admin
    role: str = Field(max_length=20, index=True)
    email: str = Field(max_length=120)
    mobile: str | None = Field(default=None, max_length=20)  # for @-mentions in pushes
    region: str | None = Field(default=None, max_length=20)
    manager_id: str | None = Field(default=None, foreign_key="staff.id", max_length=40)

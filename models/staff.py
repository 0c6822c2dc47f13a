"""People the hub assigns work to: reps, their managers and the back-office roles."""
from __future__ import annotations

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

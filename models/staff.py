"""People the hub assigns work to: reps, their managers and the back-office roles."""
from __future__ import annotations

from sqlmodel import Field, SQLModel


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

"""Publishing rebate policies: a clerk's document, validated, becomes a new version that is
never edited afterwards (a later version supersedes it from its own date)."""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import select

from flows.errors import Refusal
from flows.rebate_data import policy_book
from flows.settlement import confirmed_through
from models import RebatePolicyVersion, Staff
from models.db import session_scope
from models.oplog import record_create
from models.rebates.policy import (
    PolicyDocumentError, PolicySpec, PublishedVersion, parse_policy_document,
)

PUBLISHER_ROLES = ("sales_ops", "admin")


class PublishError(Refusal):
    """The document cannot be published."""

    status, code = 409, "publish_refused"


@dataclass(frozen=True)
class Published:
    code: str
    version: int
    name: str
    effective_from: dt.date
    supersedes: int | None


def publish_policy(db_url: str, text: str, person: Staff) -> Published:
    """Validate and publish as the next version of its code, in one transaction. Raises
    PolicyDocumentError (the problems, field by field) or PublishError."""
    if person.role not in PUBLISHER_ROLES:
        raise PublishError(f"只有销售运营或管理员可以发布返利政策（{person.name} 的角色是 {person.role}）",
                           status=403, code="forbidden")
    spec = parse_policy_document(text)
    closed = confirmed_through(db_url)
    if closed is not None and spec.effective_from <= closed:
        raise PublishError(f"生效日期 {spec.effective_from} 落在财务已确认结算的月份内（已确认至 {closed}），"
                           f"请从 {closed + dt.timedelta(days=1)} 或之后生效")
    with session_scope(db_url) as s:
        latest = s.exec(select(sa.func.max(RebatePolicyVersion.version)).where(
            RebatePolicyVersion.code == spec.code)).one()
        version = (latest or 0) + 1
        # the new version must fit with the ones already published (a rule keeps its measure)
        problems = policy_book(s).check_new_version(spec)
        if problems:
            raise PolicyDocumentError(problems)
        row = RebatePolicyVersion(
            code=spec.code, version=version, name=spec.name, effective_from=spec.effective_from,
            effective_to=spec.effective_to, document=text, spec=spec.to_json(),
            sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(), published_by=person.id)
        s.add(row)
        record_create(s, row, f"staff:{person.id}")
    return Published(spec.code, version, spec.name, spec.effective_from, latest)


def draft_version(db_url: str, spec: PolicySpec) -> PublishedVersion:
    """A draft as the version it would become if published now (for what-if replays)."""
    with session_scope(db_url) as s:
        latest = s.exec(select(sa.func.max(RebatePolicyVersion.version)).where(
            RebatePolicyVersion.code == spec.code)).one()
    return PublishedVersion(spec.code, (latest or 0) + 1, spec, None)

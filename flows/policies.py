"""Publishing rebate policies: a clerk's document, validated, becomes a new version that is
never edited afterwards (a later version supersedes it from its own date).

`review_publication` is what publishing checks against the database beyond the document
itself; `publish_policy` applies it in the transaction that inserts the version, and
`review_draft` runs it read-only for `salesops rebates validate`."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from flows.customer_import import CUSTOMER_TIERS
from flows.errors import Refusal
from flows.rebate_data import policy_book
from flows.settlement import parse_month
from models import Customer, Product, RebatePolicyVersion, SettlementRun, Staff
from models.db import schema_revision, schema_revisions, session_scope
from models.locks import lock_settlements
from models.oplog import record_create
from models.staff import role_label
from models.rebates.formatting import plain_number
from models.rebates.policy import (
    PolicyBook, PolicyDocumentError, PolicySpec, Problem, PublishedVersion,
    parse_policy_document, unknown_values,
)

PUBLISHER_ROLES = ("sales_ops", "admin")


class PublishError(Refusal):
    """The document cannot be published."""

    status, code = 409, "publish_refused"


class UnknownPolicy(Refusal):
    status, code = 404, "unknown_policy"


@dataclass(frozen=True)
class Published:
    code: str
    version: int
    name: str
    effective_from: dt.date
    supersedes: int | None
    warnings: tuple[Problem, ...] = ()  # published anyway: an unknown SKU, dates left uncovered

    def as_dict(self) -> dict:
        """The API's answer to a publication."""
        return {"code": self.code, "version": self.version, "name": self.name,
                "effective_from": self.effective_from.isoformat(),
                "supersedes": self.supersedes, "warnings": problem_dicts(self.warnings)}


def problem_dicts(problems) -> list[dict]:
    return [{"field": p.field, "message": p.message} for p in problems]


@dataclass(frozen=True)
class Review:
    """What publishing a document now would meet, beyond the document itself."""

    version: int = 0  # the number it would get
    supersedes: int | None = None  # the version in force on its effective_from, if any
    problems: tuple[Problem, ...] = ()  # it does not fit the published versions (422)
    refusals: tuple[Problem, ...] = ()  # publishing it now is refused (409)
    warnings: tuple[Problem, ...] = ()  # publishable, but the clerk should look
    skipped: str | None = None  # why the database was not consulted


def review_publication(session: Session, spec: PolicySpec, lock: bool = False) -> Review:
    """The checks publishing applies against the database, in `session`'s transaction
    (`lock`: the confirmed settlements cannot change before it commits)."""
    rows = session.exec(select(RebatePolicyVersion.code, RebatePolicyVersion.version,
                               RebatePolicyVersion.spec).where(
        sa.func.lower(RebatePolicyVersion.code) == spec.code.lower())).all()
    own = sorted((r for r in rows if r.code == spec.code), key=lambda r: r.version)
    latest = own[-1] if own else None
    refusals = []
    closed, settled = _settled_through(session, lock)
    if closed is not None and spec.effective_from <= closed:
        refusals.append(Problem("effective_from", (
            f"生效日期 {spec.effective_from} 落在财务已确认结算的月份内（已确认至 {closed}），"
            f"请从 {closed + dt.timedelta(days=1)} 或之后生效")))
    for other in sorted({r.code for r in rows} - {spec.code} if latest is None else ()):
        refusals.append(Problem("code", (
            f"政策编码 {spec.code} 与已发布的 {other} 只有大小写不同：修订该政策请沿用 {other}，"
            "另立新政策请换一个编码")))
    identical = (latest is not None
                 and PolicySpec.from_json(latest.spec).to_json() == spec.to_json())
    if identical:
        refusals.append(Problem("", f"与已发布的 {spec.code} 第 {latest.version} 版内容相同，"
                                    "无需重复发布"))
    if not _reads_back(spec):
        refusals.append(Problem("", "该政策保存后无法按原样读回，为免影响返利预估和结算，不能发布；"
                                    "请将政策文件发给系统管理员检查"))
    book = policy_book(session)
    problems = book.check_new_version(spec)
    warnings = unknown_values(spec, lambda kind: _master_values(session, kind))
    warnings += _exclusive_threshold_warnings(spec)
    warnings += _shut_out_skus(session, spec)
    if not problems and not identical:  # (a book with a measure change cannot be built;
        warnings += _coverage_warnings(book, spec)  # the same document supersedes nothing)
    if not refusals:
        warnings += _settled_warnings(spec, settled)
    return Review(version=(latest.version if latest else 0) + 1,
                  supersedes=_superseded(book, spec) if latest else None,
                  problems=tuple(problems),
                  refusals=tuple(refusals), warnings=tuple(warnings))


def _superseded(book: PolicyBook, spec: PolicySpec) -> int | None:
    """The version `spec` takes over from its start: the one in force on that date — not
    always the latest (a back-dated correction) — else, starting before every version, the
    first one it replaces; None after a gap (no version governs its dates now)."""
    in_force = book.version_on(spec.code, spec.effective_from)
    if in_force is not None:
        return in_force.version
    later = [w for w in book.windows(spec.code) if w.start > spec.effective_from]
    return min(later, key=lambda w: w.start).version if later else None


def _settled_through(session: Session, lock: bool) -> tuple[dt.date | None, str | None]:
    """(the last day of the latest month with a confirmed settlement, the latest month
    settled at all), read in `session` (`lock`: the settlement rows stay as read until the
    transaction ends; PostgreSQL)."""
    query = select(SettlementRun.month, SettlementRun.status)
    rows = session.exec(query.with_for_update() if lock else query).all()
    confirmed = [r.month for r in rows if r.status == "confirmed"]
    return (parse_month(max(confirmed))[1] if confirmed else None,
            max((r.month for r in rows), default=None))


def _settled_warnings(spec: PolicySpec, settled: str | None) -> list[Problem]:
    """A version starting inside a settled (unconfirmed) month changes what those orders are
    due, but no settlement recomputes them by itself: the next one does (a re-run of the
    latest settled month, or the next month), for every order dated from its start, those of
    earlier quarters included (flows.settlement._touched_windows)."""
    if settled is None:
        return []
    last = parse_month(settled)[1]
    start = spec.effective_from
    if start > last:
        return []
    return [Problem("effective_from", (
        f"生效日期 {start} 落在已结算的月份内（已结算至 {settled}）：已出的结算不会自动按新版本重算。"
        f"请在发布后、结算下一个月份之前重新结算 {settled}（salesops settle --month {settled}），"
        f"{start} 起的订单按新版本重算，差额计入更正"))]


def _master_values(session: Session, kind: str) -> list[str]:
    """The values a condition of `kind` can match (see policy.unknown_values)."""
    if kind == "skus":
        query = [select(Product.sku)]
    elif kind == "product_lines":
        query = [select(Product.product_line).distinct()]
    elif kind == "customer_tiers":
        return [*CUSTOMER_TIERS, *session.exec(select(Customer.tier).distinct())]
    elif kind == "regions":
        query = [select(Customer.region).distinct(), select(Staff.region).distinct()]
    else:  # customers: as the engine matches them, by USCC or legal name of a current file
        current = Customer.merged_into_id.is_(None)
        query = [select(Customer.uscc).where(current), select(Customer.legal_name).where(current)]
    return [v for q in query for v in session.exec(q) if v]


def _shut_out_skus(session: Session, spec: PolicySpec) -> list[Problem]:
    """Warnings for a rule's SKUs whose catalogue product line its own product-line condition
    leaves out: every condition must hold, so such a SKU never earns under the rule (a SKU not
    in the catalogue is unknown_values' warning)."""
    warnings = []
    for i, rule in enumerate(spec.rules):
        wanted, skus = rule.applies_to.product_lines, rule.applies_to.skus
        if not wanted or not skus:
            continue
        for sku, line in session.exec(select(Product.sku, Product.product_line).where(
                Product.sku.in_(skus)).order_by(Product.sku)):
            if line not in wanted:
                warnings.append(Problem(f"rules[{i}].applies_to.skus", (
                    f"SKU“{sku}”属于产品线“{line}”，不在本条的产品线条件（{'、'.join(wanted)}）内："
                    "各条件须同时满足，该产品不会按本条计返")))
    return warnings


def _coverage_warnings(book: PolicyBook, spec: PolicySpec) -> list[Problem]:
    lost = [Problem("effective_to", (
        f"发布后 {spec.code} {f'在 {start} 至 {end} 期间' if end else f'自 {start} 起'}"
        "没有生效的版本（目前由已发布的版本覆盖）；如需延续，请调整 effective_to"))
        for start, end in book.lost_coverage(spec)]
    gone = [Problem("effective_from", (
        f"发布后 {spec.code} 第 {w.version} 版（目前适用于 "
        f"{f'{w.start} 至 {w.end} ' if w.end else f'{w.start} 起'}的订单）"
        f"将不再适用于任何订单：新版本自 {spec.effective_from} 起取代它的全部期间；如只想修订"
        "其后的期间，请调整 effective_from"))
        for w in book.wholly_superseded(spec)]
    return lost + gone + _gap_before(book, spec)


def _gap_before(book: PolicyBook, spec: PolicySpec) -> list[Problem]:
    """A version starting some days after the last one of its code ended (next year's
    version dated the 15th, not the 1st): the order dates in between earn nothing under the
    code. Published anyway (a pause may be meant), but said."""
    start = spec.effective_from
    before = [w for w in book.windows(spec.code) if w.start < start]
    if not before or any(w.contains(start - dt.timedelta(days=1)) for w in before):
        return []
    last = max(before, key=lambda w: w.end)  # each ends before the day before `start`
    first_day = last.end + dt.timedelta(days=1)
    return [Problem("effective_from", (
        f"发布后 {spec.code} 在 {first_day} 至 {start - dt.timedelta(days=1)} 期间没有生效的版本："
        f"第 {last.version} 版止于 {last.end}，新版本自 {start} 起生效，其间的订单不按本政策返利；"
        f"如需衔接，请把 effective_from 改为 {first_day}"))]


def _exclusive_threshold_warnings(spec: PolicySpec) -> list[Problem]:
    """An exclusive rule takes its lines from every other rule as soon as its conditions
    hold, whatever volume is reached: below a first tier starting above 0 those lines earn
    nothing at all, not the base rebate (docs/rebates.md, stacking)."""
    unit = {"amount": "元", "quantity": "件"}
    return [Problem(f"rules[{i}].tiers[0].from", (
        f"互斥条款的首档起于 {plain_number(rule.tiers[0].lower)} {unit[rule.measure]}：本期累计未达到"
        "首档时，符合条件的订单在本条款下不返利，也不再享受其他可叠加的条款；如未达档时应按其他"
        "条款返利，请改为叠加（stack），或加一档从 0 起、按未达档时应得比例返利的档位"))
        for i, rule in enumerate(spec.rules)
        if rule.stacking == "exclusive" and rule.tiers[0].lower > 0]


def publish_policy(db_url: str, text: str, person: Staff, source: bytes | None = None
                   ) -> Published:
    """Validate and publish as the next version of its code, in one transaction. Raises
    PolicyDocumentError (the problems, field by field) or PublishError; the warnings of the
    review come back with the result. `source`: the document's bytes as the clerk sent them
    (a GBK file, one with a UTF-8 BOM), whose sha256 is stored so that `sha256sum` of her
    file finds the version; default `text` in UTF-8."""
    if person.role not in PUBLISHER_ROLES:
        raise PublishError(f"只有销售运营或管理员可以发布返利政策（{person.name} 的角色是"
                           f"{role_label(person.role)}）", status=403, code="forbidden")
    spec = parse_policy_document(text)
    try:
        with session_scope(db_url) as s:
            lock_settlements(s)  # no settlement is stored between this review and the commit
            review = review_publication(s, spec, lock=True)
            if review.refusals:
                raise PublishError("；".join(p.message for p in review.refusals))
            if review.problems:
                raise PolicyDocumentError(list(review.problems))
            row = RebatePolicyVersion(
                code=spec.code, version=review.version, name=spec.name,
                effective_from=spec.effective_from, effective_to=spec.effective_to,
                document=text, spec=spec.to_json(),
                sha256=hashlib.sha256(text.encode("utf-8") if source is None else source
                                      ).hexdigest(), published_by=person.id)
            s.add(row)
            record_create(s, row, f"staff:{person.id}")
    except sa.exc.IntegrityError as exc:  # someone published this code at the same moment
        raise PublishError(f"{spec.code} 第 {review.version} 版刚刚已由他人发布，请核对后重试") from exc
    return Published(spec.code, review.version, spec.name, spec.effective_from,
                     review.supersedes, review.warnings)


def _reads_back(spec: PolicySpec) -> bool:
    """Every preview, settlement and later publication reads the stored `spec` back: a
    version that does not read back as itself would stop them all (a 100 % rate once did)."""
    try:
        return PolicySpec.from_json(spec.to_json()) == spec
    except Exception:  # noqa: BLE001 - whatever the reader objects to, it must not be stored
        return False


def review_draft(db_url: str, spec: PolicySpec) -> Review:
    """The publication checks, read-only (`salesops rebates validate`). `skipped` says why
    they were not made when the database is missing, not initialised or out of date."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and not _exists(url.database):
        return Review(skipped="数据库尚未初始化")
    try:
        revision = schema_revision(db_url)
        if revision is None:
            return Review(skipped="数据库尚未初始化")
        if revision != schema_revisions()[-1]:
            return Review(skipped="数据库结构不是最新版本（请先运行 salesops migrate）")
        with session_scope(db_url) as s:
            return review_publication(s, spec)
    except sa.exc.OperationalError:
        return Review(skipped="无法连接数据库")


def _exists(path: str | None) -> bool:
    return not path or path == ":memory:" or Path(path).is_file()


def draft_version(db_url: str, spec: PolicySpec) -> PublishedVersion:
    """A draft as the version it would become if published now (for what-if replays)."""
    with session_scope(db_url) as s:
        latest = s.exec(select(sa.func.max(RebatePolicyVersion.version)).where(
            RebatePolicyVersion.code == spec.code)).one()
    return PublishedVersion(spec.code, (latest or 0) + 1, spec, None)


# --- reading back -------------------------------------------------------------------------

def version_summary(row: RebatePolicyVersion, book: PolicyBook) -> dict:
    """A published version as the listing shows it, with the order dates it governs."""
    window = next((w for w in book.windows(row.code) if w.version == row.version), None)
    return {"code": row.code, "version": row.version, "name": row.name,
            "effective_from": row.effective_from.isoformat(),
            "effective_to": row.effective_to.isoformat() if row.effective_to else None,
            "governs": ({"from": window.start.isoformat(),
                         "to": window.end.isoformat() if window.end else None}
                        if window else None),
            "published_by": row.published_by, "published_at": row.published_at.isoformat(),
            "sha256": row.sha256}


def policy_version(db_url: str, code: str, version: int | None = None) -> dict:
    """One published version (default: the latest) for `salesops rebates show` and
    GET /rebates/policies/{code}[/{version}]: the listing's fields, the publisher's name,
    the versions of the code and the document exactly as published. Raises UnknownPolicy."""
    with session_scope(db_url) as s:
        numbers = sorted(s.exec(select(RebatePolicyVersion.version).where(
            RebatePolicyVersion.code == code)).all())
        if not numbers:
            near = s.exec(select(RebatePolicyVersion.code).where(
                sa.func.lower(RebatePolicyVersion.code) == code.lower())).first()
            hint = f"（是否应为 {near}？）" if near else ""
            raise UnknownPolicy(f"没有已发布的返利政策 {code}{hint}")
        wanted = numbers[-1] if version is None else version
        if wanted not in numbers:
            raise UnknownPolicy(f"{code} 没有第 {wanted} 版（已发布：第 "
                                f"{'、'.join(map(str, numbers))} 版）")
        row = s.exec(select(RebatePolicyVersion).where(
            RebatePolicyVersion.code == code, RebatePolicyVersion.version == wanted)).one()
        publisher = s.get(Staff, row.published_by)
        book = policy_book(s)
    return {**version_summary(row, book),
            "published_by_name": publisher.name if publisher else None,
            "versions": numbers, "document": row.document,
            "spec": json.loads(row.spec)}

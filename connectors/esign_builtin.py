"""Built-in signing: our own signing page, no outside account needed (provider "builtin").

The customer opens `{public_base_url}/sign/{token}`, draws a signature with a finger and
submits it. The API stores the drawing with `save_signature_capture`, marks the token used and
starts the signing-completed flow, whose `fetch_signed` stamps the drawing onto the quote's
last page and seals the file with the company's PAdES certificate and a signature timestamp.

The page's token is issued by the hub with the quote (models.signing): only its SHA-256 is
stored, and nothing here logs it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import sqlalchemy.exc
from sqlmodel import select

from connectors import pades
from connectors.base import PermanentError, TransientError
from connectors.files import write_atomically
from connectors.esign import (
    EVIDENCE_LABELS_ZH,
    SignedDocument,
    stored_signed_document,
    SigningHandle,
    SigningRequest,
)
from models.customers import Customer
from models.db import session_scope
from models.orders import Quote

log = logging.getLogger(__name__)

PROVIDER = "builtin"
MAX_CAPTURE_BYTES = 2 * 1024 * 1024
MAX_CAPTURE_SIDE = 4096       # px; a phone canvas at 3x density stays well below
MIN_CAPTURE_SIDE = 16
MIN_INK_PIXELS = 30           # fewer visible dark pixels than this is "blank"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Signing-page messages (shown to the signer).
MSG_TOO_LARGE = "签名图片过大（不能超过 2 MB），请清除后重新签写。"
MSG_NOT_PNG = "签名图片格式不正确，请在签名区域内重新签写后提交。"
MSG_BAD_SIZE = "签名图片尺寸异常，请在签名区域内重新签写后提交。"
MSG_BLANK = "签名为空，请在签名区域内手写签名后再提交。"
MSG_NO_NAME = "请填写签署人姓名。"
MSG_ALREADY_SIGNED = "该报价单已签署，无需重复签署。"


# --- signature captures ----------------------------------------------------------------------

def save_signature_capture(data_dir: Path, quote_code: str, png_bytes: bytes, signer_name: str,
                           ip: str | None, user_agent: str | None,
                           signed_at: dt.datetime, *, replace: bool = False) -> dict:
    """Validate the customer's drawn signature and store it with its capture record.

    Stores data_dir/signatures/<code>.png and <code>.json; returns the record. Raises
    ValueError with a message for the signer when the image is not a sane, non-blank PNG.
    Saving the same image again is a no-op; a different image for a quote that already has
    one is refused (the first signature stands) unless `replace`: the caller holds the
    quote's unused signing token, so a capture on disk is left from a submit whose
    transaction did not commit (nothing was signed) and the new drawing takes its place.
    """
    code = _safe_code(quote_code)
    signer_name = (signer_name or "").strip()
    if not signer_name:
        raise ValueError(MSG_NO_NAME)
    width, height = _check_signature_png(png_bytes)
    if signed_at.tzinfo is None:
        raise ValueError("signed_at must be timezone-aware")

    folder = Path(data_dir) / "signatures"
    folder.mkdir(parents=True, exist_ok=True)
    png_path, json_path = folder / f"{code}.png", folder / f"{code}.json"
    png_sha = hashlib.sha256(png_bytes).hexdigest()
    with pades.file_lock(folder / f".{code}.lock"):
        if json_path.exists() and not replace:
            existing = json.loads(json_path.read_text(encoding="utf-8"))
            if existing.get("png_sha256") == png_sha:
                return existing
            raise ValueError(MSG_ALREADY_SIGNED)
        if json_path.exists():
            log.warning("signature capture of %s replaced: the earlier submit was not saved",
                        code)
        record = {
            "quote_code": code,
            "signer_name": signer_name[:60],
            "ip": (ip or None),
            "user_agent": (user_agent or "")[:400] or None,
            "signed_at": _iso(signed_at),
            "captured_at": _iso(dt.datetime.now(dt.timezone.utc)),
            "png_sha256": png_sha,
            "width": width,
            "height": height,
        }
        write_atomically(png_path, png_bytes, mode=0o640)
        write_atomically(json_path, json.dumps(record, ensure_ascii=False, indent=2).encode(),
                           mode=0o640)
    return record


def load_signature_capture(data_dir: Path, quote_code: str) -> tuple[dict, bytes] | None:
    """The stored capture record and PNG for a quote, or None when the customer has not signed."""
    code = _safe_code(quote_code)
    folder = Path(data_dir) / "signatures"
    json_path, png_path = folder / f"{code}.json", folder / f"{code}.png"
    if not json_path.exists() or not png_path.exists():
        return None
    record = json.loads(json_path.read_text(encoding="utf-8"))
    png = png_path.read_bytes()
    if hashlib.sha256(png).hexdigest() != record.get("png_sha256"):
        raise PermanentError(f"signature image of {code} does not match its capture record",
                             provider=PROVIDER, code="capture_mismatch")
    return record, png


def _check_signature_png(png_bytes: bytes) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    if not isinstance(png_bytes, (bytes, bytearray)) or not png_bytes:
        raise ValueError(MSG_BLANK)
    if len(png_bytes) > MAX_CAPTURE_BYTES:
        raise ValueError(MSG_TOO_LARGE)
    if not bytes(png_bytes[:8]) == _PNG_MAGIC:
        raise ValueError(MSG_NOT_PNG)
    try:
        with Image.open(io.BytesIO(png_bytes)) as probe:
            if probe.format != "PNG":
                raise ValueError(MSG_NOT_PNG)
            width, height = probe.size
            # Check the declared size before decoding: a tiny file can declare a huge canvas.
            if not (MIN_CAPTURE_SIDE <= width <= MAX_CAPTURE_SIDE
                    and MIN_CAPTURE_SIDE <= height <= MAX_CAPTURE_SIDE):
                raise ValueError(MSG_BAD_SIZE)
            probe.verify()
        with Image.open(io.BytesIO(png_bytes)) as image:
            image.load()
            rgba = image.convert("RGBA")
    except ValueError:
        raise
    except Image.DecompressionBombError:
        raise ValueError(MSG_BAD_SIZE) from None
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise ValueError(MSG_NOT_PNG) from None

    # "Ink" = a pixel that is visible (alpha) and darker than paper. Fully transparent and
    # all-white canvases have none.
    alpha = rgba.getchannel("A")
    gray = rgba.convert("L")
    visible = alpha.point(lambda a: 255 if a > 32 else 0)
    dark = gray.point(lambda g: 255 if g < 200 else 0)
    ink = Image.composite(dark, Image.new("L", rgba.size, 0), visible)
    ink_pixels = ink.histogram()[255]
    if ink_pixels < MIN_INK_PIXELS:
        raise ValueError(MSG_BLANK)
    return width, height


# --- callbacks from our own signing page ------------------------------------------------------

# --- the connector ---------------------------------------------------------------------------

class BuiltinSigning:
    """ESignature over our own signing page and PAdES seal."""

    provider = PROVIDER

    def __init__(self, db_url: str, data_dir: Path, public_base_url: str,
                 identity_loader: Callable[[], pades.CompanyIdentity], *,
                 stamp_box: Sequence[float] | None = None,
                 location: str = "在线签署") -> None:
        self.db_url = db_url
        self.data_dir = Path(data_dir)
        self.public_base_url = public_base_url.rstrip("/")
        self._identity_loader = identity_loader
        self._identity: pades.CompanyIdentity | None = None
        self.stamp_box = tuple(stamp_box) if stamp_box else pades.DEFAULT_STAMP_BOX
        self.location = location

    def identity(self) -> pades.CompanyIdentity:
        if self._identity is None:
            self._identity = self._identity_loader()
        return self._identity

    # -- ESignature ----------------------------------------------------------------------------
    def create_signing(self, request: SigningRequest) -> SigningHandle:
        """The built-in page needs no envelope: the hub issued the page's single-use token
        with the quote (its link is printed in the PDF's QR code), so this only checks the
        quote and hands that link back."""
        if not request.page_url:
            raise PermanentError(f"no signing page link for quote {request.quote_code}",
                                 provider=PROVIDER, code="no_page_url")
        if request.expires_at <= dt.datetime.now(dt.timezone.utc):
            raise PermanentError(f"signing link for {request.quote_code} would already be "
                                 "expired", provider=PROVIDER, code="expired")
        try:
            with session_scope(self.db_url) as session:
                known = session.exec(
                    select(Quote.id).where(Quote.code == request.quote_code)).first()
        except sqlalchemy.exc.OperationalError as exc:  # locked / unreachable database
            raise TransientError(f"database busy: {type(exc).__name__}", provider=PROVIDER,
                                 code="db") from exc
        if known is None:
            raise PermanentError(f"quote {request.quote_code} does not exist",
                                 provider=PROVIDER, code="unknown_quote")
        return SigningHandle(provider=PROVIDER, ref=request.quote_code, url=request.page_url)

    def fetch_signed(self, ref: str, dest_dir: Path) -> SignedDocument:
        """Stamp the customer's drawing on the quote and seal it into
        dest_dir/<ref>-signed.pdf with dest_dir/<ref>-evidence.json. A second call returns
        the stored result without signing again."""
        code = _safe_code(ref)
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        pdf_out = dest_dir / f"{code}-signed.pdf"
        evidence_out = dest_dir / f"{code}-evidence.json"
        with pades.file_lock(dest_dir / f".{code}.sign.lock"):
            existing = stored_signed_document(pdf_out, evidence_out)
            if existing is not None:
                return existing

            loaded = load_signature_capture(self.data_dir, code)
            if loaded is None:
                raise PermanentError(f"quote {code} has no signature capture yet",
                                     provider=PROVIDER, code="not_signed")
            capture, png = loaded
            source, expected_sha, company = self._quote_source(code)
            original = source.read_bytes()
            original_sha = hashlib.sha256(original).hexdigest()
            if expected_sha and expected_sha != original_sha:
                raise PermanentError(f"quote PDF of {code} changed after it was issued",
                                     provider=PROVIDER, code="pdf_changed")

            identity = self.identity()
            signer_name = capture["signer_name"]
            signer_label = f"{signer_name}（{company}）" if company else signer_name
            signed_sha = pades.sign_pdf(
                source, pdf_out, identity, signer_label=signer_label,
                reason=f"客户确认报价单 {code}", location=self.location,
                stamp_png=png, stamp_box=self.stamp_box)
            report = pades.validate_signed_pdf(pdf_out, identity)
            if not report.ok:
                raise PermanentError(f"sealed PDF of {code} does not validate: {report.summary}",
                                     provider=PROVIDER, code="self_check")

            evidence = {
                "provider": PROVIDER,
                "provider_ref": code,
                "quote_code": code,
                "signer_name": signer_name,
                "signer_company": company,
                "signer_ip": capture.get("ip"),
                "signer_user_agent": capture.get("user_agent"),
                "signed_at": capture.get("signed_at"),
                "sealed_at": _iso(report.signed_at) if report.signed_at else None,
                "original_sha256": original_sha,
                "signed_sha256": signed_sha,
                "signature_image_sha256": capture.get("png_sha256"),
                "certificate": identity.certificate_info(),
                "timestamp": {
                    "present": report.timestamped,
                    "valid": report.timestamp_valid,
                    "gen_time": _iso(report.signed_at) if report.signed_at else None,
                    **identity.tsa_info(),
                },
                "validation": {
                    "intact": report.intact, "valid": report.valid, "trusted": report.trusted,
                    "coverage": report.coverage, "summary": report.summary,
                },
                "labels": EVIDENCE_LABELS_ZH,
            }
            write_atomically(evidence_out, json.dumps(evidence, ensure_ascii=False,
                                                        indent=2).encode(), mode=0o644)
        log.info("sealed quote %s (sha256 %s)", code, signed_sha)
        return SignedDocument(pdf_path=pdf_out, sha256=signed_sha, evidence_path=evidence_out,
                              evidence=evidence)

    # -- helpers -------------------------------------------------------------------------------
    def _quote_source(self, code: str) -> tuple[Path, str | None, str]:
        with session_scope(self.db_url) as session:
            row = session.exec(
                select(Quote.pdf_path, Quote.pdf_sha256, Customer.legal_name)
                .join(Customer, Customer.id == Quote.customer_id, isouter=True)
                .where(Quote.code == code)
            ).first()
        if row is None:
            raise PermanentError(f"quote {code} does not exist", provider=PROVIDER,
                                 code="unknown_quote")
        pdf_path, pdf_sha, company = row
        if not pdf_path or not Path(pdf_path).is_file():
            raise PermanentError(f"quote {code} has no PDF on disk", provider=PROVIDER,
                                 code="no_pdf")
        return Path(pdf_path), pdf_sha, company or ""




def _safe_code(code: str) -> str:
    if not isinstance(code, str) or not _CODE_RE.match(code):
        raise ValueError(f"not a quote code: {code!r}")
    return code


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")

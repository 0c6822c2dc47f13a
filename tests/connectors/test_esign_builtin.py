"""Built-in signing: single-use links stored only as hashes, drawn signatures validated,
the quote sealed once (fetch_signed is idempotent) with evidence."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zlib
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas
from sqlmodel import SQLModel, select

import models  # noqa: F401 - registers every table
from connectors import esign_builtin, pades
from connectors.base import PermanentError
from connectors.esign import ESignature, SigningRequest
from connectors.esign_builtin import BuiltinSigning, save_signature_capture
from models.customers import Customer
from models.db import get_engine, session_scope
from models.orders import IntentOrder, Quote, SigningToken

CODE = "Q20250101-0001"
UTC = dt.timezone.utc


def make_pdf(path: Path) -> Path:
    c = canvas.Canvas(str(path), pagesize=A4)
    c.drawString(72, 760, f"Quote {CODE}")
    c.showPage()
    c.drawString(72, 760, "Terms and signature")
    c.showPage()
    c.save()
    return path


def png(width=360, height=140, *, ink=True, background=(0, 0, 0, 0)) -> bytes:
    image = Image.new("RGBA", (width, height), background)
    if ink:
        ImageDraw.Draw(image).line([(10, 100), (120, 20), (250, 120), (350, 30)],
                                   fill=(0, 0, 0, 255), width=6)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture()
def env(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'hub.db'}"
    SQLModel.metadata.create_all(get_engine(db_url))
    (tmp_path / "quotes").mkdir()
    pdf = make_pdf(tmp_path / "quotes" / f"{CODE}.pdf")
    with session_scope(db_url) as s:
        customer = Customer(legal_name="苏州某某机械有限公司", uscc="91320500MA1TEST001")
        s.add(customer)
        s.flush()
        s.add(IntentOrder(id="IO-1", event_id="evt-1", sender_id="crm",
                          customer_name="苏州某某机械", customer_id=customer.id))
        s.flush()
        s.add(Quote(code=CODE, order_id="IO-1", customer_id=customer.id,
                    total_amount=Decimal("11300.00"), tax_amount=Decimal("1300.00"),
                    valid_until=dt.date(2099, 1, 1), pdf_path=str(pdf),
                    pdf_sha256=hashlib.sha256(pdf.read_bytes()).hexdigest()))
    identity_calls = []

    def identity_loader():
        identity_calls.append(1)
        return pades.CompanyIdentity.load_or_create(tmp_path / "identity", "华东精工设备有限公司",
                                                    b"pw")

    signing = BuiltinSigning(db_url, tmp_path / "data", "https://hub.example.com/",
                             identity_loader)
    return {"db_url": db_url, "tmp": tmp_path, "pdf": pdf, "signing": signing,
            "identity_calls": identity_calls}


def request(pdf: Path, **over) -> SigningRequest:
    values = dict(quote_code=CODE, pdf_path=pdf, title="报价单", signer_name="王经理",
                  signer_company="苏州某某机械有限公司", signer_phone="13800000000",
                  signer_email=None, expires_at=dt.datetime.now(UTC) + dt.timedelta(hours=72),
                  idempotency_key=f"signing:{CODE}")
    values.update(over)
    return SigningRequest(**values)


def test_builtin_is_an_esignature(env):
    assert isinstance(env["signing"], ESignature)
    assert env["signing"].provider == "builtin"


def test_create_signing_hands_back_the_hubs_page_link(env):
    link = "https://hub.example.com/sign/issued-by-the-hub"
    handle = env["signing"].create_signing(request(env["pdf"], page_url=link))
    assert (handle.provider, handle.ref, handle.url) == ("builtin", CODE, link)
    with session_scope(env["db_url"]) as s:
        assert s.exec(select(SigningToken)).all() == []  # no second token, nothing stored
    with pytest.raises(PermanentError) as err:
        env["signing"].create_signing(request(env["pdf"]))
    assert err.value.code == "no_page_url"


def test_unknown_quote_and_past_expiry_are_permanent(env):
    with pytest.raises(PermanentError):
        env["signing"].create_signing(request(env["pdf"], quote_code="Q-NOPE", page_url="x"))
    with pytest.raises(PermanentError):
        env["signing"].create_signing(
            request(env["pdf"], page_url="x", expires_at=dt.datetime.now(UTC) - dt.timedelta(minutes=1)))
    with pytest.raises(ValueError):
        request(env["pdf"], expires_at=dt.datetime(2030, 1, 1))  # naive


@pytest.mark.parametrize("payload, message", [
    (png(ink=False), esign_builtin.MSG_BLANK),                                 # transparent
    (png(ink=False, background=(255, 255, 255, 255)), esign_builtin.MSG_BLANK),  # white
    (b"\x89PNG\r\n\x1a\n" + b"\0" * (2 * 1024 * 1024), esign_builtin.MSG_TOO_LARGE),
    (b"\xff\xd8\xff\xe0 not a png", esign_builtin.MSG_NOT_PNG),
    (b"\x89PNG\r\n\x1a\n garbage after the magic", esign_builtin.MSG_NOT_PNG),
    (b"", esign_builtin.MSG_BLANK),
])
def test_bad_captures_are_refused_with_a_chinese_message(env, payload, message):
    with pytest.raises(ValueError) as err:
        save_signature_capture(env["tmp"] / "data", CODE, payload, "王经理", "203.0.113.9",
                               "Mobile Safari", dt.datetime.now(UTC))
    assert str(err.value) == message
    assert not (env["tmp"] / "data" / "signatures" / f"{CODE}.json").exists()


def test_oversized_and_jpeg_images_are_refused(env):
    jpeg = io.BytesIO()
    Image.new("RGB", (200, 100), (255, 255, 255)).save(jpeg, "JPEG")
    with pytest.raises(ValueError, match="格式不正确"):
        save_signature_capture(env["tmp"] / "data", CODE, jpeg.getvalue(), "王经理", None, None,
                               dt.datetime.now(UTC))
    # a valid, small file that declares a huge canvas (decompression bomb)
    huge = _png_with_declared_size(20000, 20000)
    with pytest.raises(ValueError, match="尺寸异常"):
        save_signature_capture(env["tmp"] / "data", CODE, huge, "王经理", None, None,
                               dt.datetime.now(UTC))
    with pytest.raises(ValueError, match="姓名"):
        save_signature_capture(env["tmp"] / "data", CODE, png(), "  ", None, None,
                               dt.datetime.now(UTC))


def _png_with_declared_size(width: int, height: int) -> bytes:
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_capture_is_stored_once(env):
    data_dir = env["tmp"] / "data"
    when = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    record = save_signature_capture(data_dir, CODE, png(), "王经理", "203.0.113.9",
                                    "Mozilla/5.0 (iPhone)", when)
    assert record["signed_at"] == "2025-01-02T03:04:05Z"
    stored = json.loads((data_dir / "signatures" / f"{CODE}.json").read_text(encoding="utf-8"))
    assert stored == record
    # the same drawing again is a no-op; a different one is refused
    assert save_signature_capture(data_dir, CODE, png(), "王经理", "203.0.113.9",
                                  "Mozilla/5.0 (iPhone)", when) == record
    with pytest.raises(ValueError, match="已签署"):
        save_signature_capture(data_dir, CODE, png(width=300), "王经理", None, None, when)


def test_fetch_signed_seals_once_with_evidence(env, monkeypatch):
    signing = env["signing"]
    with pytest.raises(PermanentError):      # the customer has not signed yet
        signing.fetch_signed(CODE, env["tmp"] / "signed")

    save_signature_capture(env["tmp"] / "data", CODE, png(), "王经理", "203.0.113.9",
                           "Mozilla/5.0 (iPhone)", dt.datetime.now(UTC))
    dest = env["tmp"] / "signed"
    first = signing.fetch_signed(CODE, dest)
    assert first.pdf_path == dest / f"{CODE}-signed.pdf"
    assert (dest / f"{CODE}-evidence.json").exists()
    assert first.sha256 == hashlib.sha256(first.pdf_path.read_bytes()).hexdigest()

    ev = first.evidence
    assert ev["provider"] == "builtin" and ev["provider_ref"] == CODE
    assert ev["signer_name"] == "王经理" and ev["signer_company"] == "苏州某某机械有限公司"
    assert ev["signer_ip"] == "203.0.113.9" and ev["signer_user_agent"] == "Mozilla/5.0 (iPhone)"
    assert ev["original_sha256"] == hashlib.sha256(env["pdf"].read_bytes()).hexdigest()
    assert ev["signed_sha256"] == first.sha256
    assert ev["timestamp"]["present"] and ev["timestamp"]["valid"]
    assert ev["timestamp"]["gen_time"].endswith("Z")
    assert ev["validation"]["intact"] and ev["validation"]["trusted"]
    assert ev["labels"]["signer_name"] == "签署人"

    identity = signing.identity()
    assert pades.validate_signed_pdf(first.pdf_path, identity).ok

    # second call: same file, no signing at all
    mtime = first.pdf_path.stat().st_mtime_ns

    def no_signing(*args, **kwargs):
        raise AssertionError("fetch_signed signed twice")

    monkeypatch.setattr(pades, "sign_pdf", no_signing)
    second = signing.fetch_signed(CODE, dest)
    assert second.sha256 == first.sha256 and second.pdf_path == first.pdf_path
    assert second.evidence == json.loads(json.dumps(ev))
    assert first.pdf_path.stat().st_mtime_ns == mtime
    assert env["identity_calls"] == [1]  # identity loaded lazily, once


def test_changed_quote_pdf_is_not_sealed(env):
    save_signature_capture(env["tmp"] / "data", CODE, png(), "王经理", None, None,
                           dt.datetime.now(UTC))
    env["pdf"].write_bytes(env["pdf"].read_bytes() + b"\n% edited\n")
    with pytest.raises(PermanentError) as err:
        env["signing"].fetch_signed(CODE, env["tmp"] / "signed")
    assert err.value.code == "pdf_changed"

"""The company's PAdES signing identity: created once, signatures validate offline, tampering
and foreign roots are detected, and the customer's drawn signature lands on the last page."""
from __future__ import annotations

import io
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from PIL import Image, ImageDraw
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from connectors import pades

COMPANY = "华东精工设备有限公司"
PASSWORD = b"correct horse battery staple"
STAMP_BOX = (360.0, 70.0, 540.0, 150.0)


def make_pdf(path: Path, pages: int = 2) -> Path:
    c = canvas.Canvas(str(path), pagesize=A4, pageCompression=0)  # readable content streams
    for n in range(1, pages + 1):
        c.drawString(72, 760, f"Hello Quote Q-TEST-0001 page {n}")
        c.showPage()
    c.save()
    return path


def signature_png(width: int = 400, height: int = 150) -> bytes:
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.line([(10, 110), (120, 20), (250, 130), (390, 25)], fill=(20, 20, 60, 255), width=8)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def identity_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("identity") / "company"


@pytest.fixture(scope="module")
def identity(identity_dir) -> pades.CompanyIdentity:
    return pades.CompanyIdentity.load_or_create(identity_dir, COMPANY, PASSWORD)


@pytest.fixture(scope="module")
def signed(identity, tmp_path_factory) -> tuple[Path, Path, str]:
    folder = tmp_path_factory.mktemp("signed")
    source = make_pdf(folder / "quote.pdf")
    out = folder / "quote-signed.pdf"
    sha = pades.sign_pdf(source, out, identity, signer_label="王经理（苏州某某机械有限公司）",
                         reason="客户确认报价单 Q-TEST-0001", location="在线签署",
                         stamp_png=signature_png(), stamp_box=STAMP_BOX)
    return source, out, sha


def test_identity_is_created_once_and_reloaded(identity, identity_dir):
    again = pades.CompanyIdentity.load_or_create(identity_dir, COMPANY, PASSWORD)
    assert again.signer_fingerprint == identity.signer_fingerprint
    assert again.root_fingerprint == identity.root_fingerprint

    for name in (pades.ROOT_KEY, pades.SIGNER_KEY, pades.TSA_KEY):
        path = identity_dir / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in path.read_bytes()
    assert "PRIVATE" not in repr(identity) and "Key" not in repr(identity)

    root = identity.root_cert
    assert root.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == \
        f"{COMPANY} 电子签章根证书"
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    signer = identity.signer_cert
    assert signer.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == COMPANY
    assert signer.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value == COMPANY
    usage = signer.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment

    eku = identity.tsa_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


def test_wrong_password_and_incomplete_identity_are_refused(identity, identity_dir, tmp_path):
    with pytest.raises(pades.IdentityError):
        pades.CompanyIdentity.load_or_create(identity_dir, COMPANY, b"wrong")
    with pytest.raises(pades.IdentityError):
        pades.CompanyIdentity.load_or_create(identity_dir, COMPANY, None)
    broken = tmp_path / "broken"
    shutil.copytree(identity_dir, broken)
    (broken / pades.SIGNER_KEY).unlink()
    with pytest.raises(pades.IdentityError):
        pades.CompanyIdentity.load_or_create(broken, COMPANY, PASSWORD)


def test_signed_pdf_validates_intact_trusted_and_timestamped(identity, signed):
    _, out, sha = signed
    import hashlib

    assert hashlib.sha256(out.read_bytes()).hexdigest() == sha
    report = pades.validate_signed_pdf(out, identity)
    assert report.intact and report.valid and report.trusted, report.summary
    assert report.timestamped and report.timestamp_valid, report.summary
    assert report.ok
    assert report.signer == COMPANY
    assert report.signed_at is not None and report.signed_at.tzinfo is not None
    assert report.coverage == "ENTIRE_FILE"

    # PAdES baseline: ETSI.CAdES.detached sub-filter
    assert b"/ETSI.CAdES.detached" in out.read_bytes()

    # The same check with the root passed as a PEM file (what an auditor would have).
    report_from_file = pades.validate_signed_pdf(out, [identity.directory / pades.ROOT_CERT])
    assert report_from_file.ok


def test_flipping_one_byte_in_the_signed_range_is_detected(identity, signed, tmp_path):
    _, out, _ = signed
    data = bytearray(out.read_bytes())
    at = data.index(b"Hello Quote")  # page content of the original revision: signed
    data[at] ^= 0x01                 # "Hello" → "Iello"
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(bytes(data))
    report = pades.validate_signed_pdf(tampered, identity)
    assert not report.intact and not report.ok


def test_signature_from_another_root_is_not_trusted(signed, tmp_path):
    _, out, _ = signed
    stranger = pades.CompanyIdentity.load_or_create(tmp_path / "other", "别家公司", None)
    report = pades.validate_signed_pdf(out, stranger)
    assert report.intact and not report.trusted and not report.ok


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler (pdftoppm) not installed")
def test_stamped_signature_image_is_on_the_last_page(signed, tmp_path):
    source, out, _ = signed

    def dark_pixels_in_stamp_box(pdf: Path, page: int) -> int:
        prefix = tmp_path / f"{pdf.stem}-{page}"
        subprocess.run(["pdftoppm", "-f", str(page), "-l", str(page), "-r", "72", "-png",
                        "-singlefile", str(pdf), str(prefix)], check=True)
        image = Image.open(f"{prefix}.png").convert("L")
        height = image.height  # 72 dpi: one pixel per point; image y runs downwards
        x1, y1, x2, y2 = STAMP_BOX
        box = image.crop((int(x1), int(height - y2), int(x2), int(height - y1)))
        return sum(1 for value in box.tobytes() if value < 128)

    assert dark_pixels_in_stamp_box(source, 2) == 0           # blank before signing
    assert dark_pixels_in_stamp_box(out, 2) > 100             # the drawing is there
    assert dark_pixels_in_stamp_box(out, 1) == 0              # and only on the last page


def test_signing_is_atomic_and_does_not_touch_the_input(identity, tmp_path):
    source = make_pdf(tmp_path / "in.pdf", pages=1)
    before = source.read_bytes()
    out = tmp_path / "out" / "signed.pdf"
    pades.sign_pdf(source, out, identity, signer_label="张三", reason="测试", location="苏州")
    assert source.read_bytes() == before
    assert out.exists() and not list(out.parent.glob(".*.tmp"))
    assert pades.validate_signed_pdf(out, identity).ok

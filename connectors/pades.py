"""The company's own signing identity and PAdES signatures with pyHanko.

The built-in signing path needs no outside account: on first run we create a small PKI of our
own (root CA, a signing certificate for the company, a time-stamping authority) and every
signed quote carries a PAdES signature (ETSI.CAdES.detached) with an RFC 3161 signature
timestamp from our local TSA. Anyone holding the root certificate can validate the file.

Key material never reaches a log: we log file names and certificate fingerprints only.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import io
import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from connectors.files import write_atomically

log = logging.getLogger(__name__)

ROOT_CERT = "root-ca.crt.pem"
ROOT_KEY = "root-ca.key.pem"
SIGNER_CERT = "signer.crt.pem"
SIGNER_KEY = "signer.key.pem"
TSA_CERT = "tsa.crt.pem"
TSA_KEY = "tsa.key.pem"
META = "identity.json"
_ALL_FILES = (ROOT_CERT, ROOT_KEY, SIGNER_CERT, SIGNER_KEY, TSA_CERT, TSA_KEY, META)

# Stamp box (x1, y1, x2, y2) in PDF points on the last page when the caller gives none:
# the lower right of an A4 page, where the quote template leaves room for the buyer's signature.
DEFAULT_STAMP_BOX = (360.0, 70.0, 540.0, 150.0)


class IdentityError(ValueError):
    """The stored identity cannot be loaded (wrong password, damaged or incomplete files)."""


# --- the identity ----------------------------------------------------------------------------

@dataclass(frozen=True)
class CompanyIdentity:
    company_name: str
    directory: Path
    root_cert: x509.Certificate
    signer_cert: x509.Certificate
    signer_key: rsa.RSAPrivateKey
    tsa_cert: x509.Certificate
    tsa_key: rsa.RSAPrivateKey

    def __repr__(self) -> str:  # keep keys out of reprs, tracebacks and logs
        return (f"CompanyIdentity(company_name={self.company_name!r}, "
                f"directory={str(self.directory)!r}, signer={self.signer_fingerprint[:16]}…)")

    # -- loading / creating --------------------------------------------------------------------
    @classmethod
    def load_or_create(cls, directory: Path, company_name: str,
                       password: bytes | None) -> "CompanyIdentity":
        """Load the identity stored in `directory`, creating it on first run.

        Creation happens under a file lock so two processes starting together make one
        identity, not two. A different `company_name` on a later run does not replace the
        identity (that would orphan every signature made so far); it is logged instead.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        password = password or None
        with file_lock(directory / ".identity.lock"):
            present = [name for name in _ALL_FILES if (directory / name).exists()]
            if len(present) == len(_ALL_FILES):
                identity = cls._load(directory, password)
                if identity.company_name != company_name:
                    log.warning("signing identity in %s belongs to %r, configured seller is %r; "
                                "keeping the existing identity", directory,
                                identity.company_name, company_name)
                return identity
            if present:
                raise IdentityError(
                    f"signing identity in {directory} is incomplete (found {present}); "
                    "restore it from backup or move the directory away to create a new one")
            return cls._create(directory, company_name, password)

    @classmethod
    def _create(cls, directory: Path, company_name: str,
                password: bytes | None) -> "CompanyIdentity":
        now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)  # tolerate clock skew
        root_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
        signer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

        root_name = _name(f"{company_name} 电子签章根证书", company_name)
        root_cert = (
            x509.CertificateBuilder()
            .subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=365 * 20))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA256())
        )
        signer_cert = _issue(root_cert, root_key, signer_key.public_key(),
                             _name(company_name, company_name), now, days=365 * 10,
                             key_usage=_key_usage(digital_signature=True, content_commitment=True))
        tsa_cert = _issue(root_cert, root_key, tsa_key.public_key(),
                          _name(f"{company_name} 时间戳服务", company_name), now, days=365 * 10,
                          key_usage=_key_usage(digital_signature=True, content_commitment=True),
                          eku=[ExtendedKeyUsageOID.TIME_STAMPING])

        # Write everything to temporary names first, then rename: a crash never leaves a
        # half-written key that looks complete.
        files = {
            ROOT_CERT: _cert_pem(root_cert), SIGNER_CERT: _cert_pem(signer_cert),
            TSA_CERT: _cert_pem(tsa_cert),
            ROOT_KEY: _key_pem(root_key, password), SIGNER_KEY: _key_pem(signer_key, password),
            TSA_KEY: _key_pem(tsa_key, password),
            META: json.dumps({
                "company_name": company_name,
                "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                "encrypted": password is not None,
                "signer_sha256": _fingerprint(signer_cert),
                "root_sha256": _fingerprint(root_cert),
            }, ensure_ascii=False, indent=2).encode(),
        }
        for name, data in files.items():
            write_atomically(directory / name, data, mode=0o600 if name.endswith(".key.pem") else 0o644)
        log.info("created signing identity for %r in %s (signer sha256 %s)", company_name,
                 directory, _fingerprint(signer_cert))
        return cls(company_name, directory, root_cert, signer_cert, signer_key, tsa_cert, tsa_key)

    @classmethod
    def _load(cls, directory: Path, password: bytes | None) -> "CompanyIdentity":
        try:
            meta = json.loads((directory / META).read_text(encoding="utf-8"))
            certs = {name: x509.load_pem_x509_certificate((directory / name).read_bytes())
                     for name in (ROOT_CERT, SIGNER_CERT, TSA_CERT)}
            signer_key = _load_key(directory / SIGNER_KEY, password)
            tsa_key = _load_key(directory / TSA_KEY, password)
        except IdentityError:
            raise
        except (ValueError, OSError, KeyError) as exc:
            raise IdentityError(f"cannot read the signing identity in {directory}: "
                                f"{type(exc).__name__}") from None
        return cls(meta["company_name"], directory, certs[ROOT_CERT], certs[SIGNER_CERT],
                   signer_key, certs[TSA_CERT], tsa_key)

    def tsa_info(self) -> dict:
        return {"tsa": self.tsa_cert.subject.rfc4514_string(),
                "tsa_sha256": _fingerprint(self.tsa_cert)}

    # -- what signing and validation need ------------------------------------------------------
    @property
    def signer_fingerprint(self) -> str:
        return _fingerprint(self.signer_cert)

    @property
    def root_fingerprint(self) -> str:
        return _fingerprint(self.root_cert)

    def trust_roots(self) -> list[asn1_x509.Certificate]:
        return [_asn1_cert(self.root_cert)]

    def pyhanko_signer(self):
        from pyhanko_certvalidator.registry import SimpleCertificateStore

        return _preloaded_key_signer_class()(
            private_key=self.signer_key,
            signing_cert=_asn1_cert(self.signer_cert),
            signing_key=_asn1_key(self.signer_key),
            cert_registry=SimpleCertificateStore.from_certs([_asn1_cert(self.root_cert)]),
        )

    def timestamper(self):
        """Our local RFC 3161 TSA (pyHanko's in-process time stamper, signing with the TSA key)."""
        from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
        from pyhanko_certvalidator.registry import SimpleCertificateStore

        return DummyTimeStamper(
            tsa_cert=_asn1_cert(self.tsa_cert),
            tsa_key=_asn1_key(self.tsa_key),
            certs_to_embed=SimpleCertificateStore.from_certs([_asn1_cert(self.root_cert)]),
        )

    def certificate_info(self) -> dict:
        c = self.signer_cert
        return {
            "subject": c.subject.rfc4514_string(),
            "issuer": c.issuer.rfc4514_string(),
            "serial": format(c.serial_number, "x"),
            "sha256": self.signer_fingerprint,
            "not_after": c.not_valid_after_utc.isoformat(),
        }


# --- signing ---------------------------------------------------------------------------------

SIGNATURE_BYTES_RESERVED = 16 * 1024


@functools.lru_cache(maxsize=1)
def _preloaded_key_signer_class():
    """pyHanko's SimpleSigner re-parses (and re-validates) the RSA key for every raw
    signature, ~35 ms each; sign with the key object we already hold instead."""
    from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
    from pyhanko.sign import signers
    from pyhanko_certvalidator.util import get_pyca_cryptography_hash

    class PreloadedKeySigner(signers.SimpleSigner):
        def __init__(self, *, private_key, **kwargs):
            super().__init__(**kwargs)
            self._private_key = private_key

        def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
            mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
            try:
                algo = mechanism.signature_algo
            except ValueError:
                algo = mechanism["algorithm"].native
            if algo == "rsassa_pkcs1v15" and isinstance(self._private_key, rsa.RSAPrivateKey):
                return self._private_key.sign(data, PKCS1v15(),
                                              get_pyca_cryptography_hash(digest_algorithm))
            return super().sign_raw(data, digest_algorithm)

    return PreloadedKeySigner


def sign_pdf(input_pdf: Path, output_pdf: Path, identity: CompanyIdentity, *, signer_label: str,
             reason: str, location: str, stamp_png: bytes | None = None,
             stamp_box: Sequence[float] | None = None) -> str:
    """Sign `input_pdf` into `output_pdf` (written atomically); return the output's SHA-256.

    When `stamp_png` is given it is drawn onto the last page inside `stamp_box`
    (x1, y1, x2, y2 in points, aspect ratio kept) in an incremental update *before* the
    signature, so the signature covers the drawn image.
    """
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    data = Path(input_pdf).read_bytes()
    if stamp_png is not None:
        data = _stamp_last_page(data, stamp_png, tuple(stamp_box or DEFAULT_STAMP_BOX))

    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    meta = signers.PdfSignatureMetadata(
        field_name=f"Signature-{uuid.uuid4().hex[:8]}",
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        name=signer_label,
        reason=reason,
        location=location,
    )
    pdf_signer = signers.PdfSigner(meta, signer=identity.pyhanko_signer(),
                                   timestamper=identity.timestamper())
    out = io.BytesIO()
    try:
        # A fixed reservation skips pyHanko's dry-run signature (and timestamp) used to size
        # the container: it halves the signing time. Our container is ~8 KB.
        pdf_signer.sign_pdf(writer, output=out, bytes_reserved=SIGNATURE_BYTES_RESERVED)
    except Exception:
        log.info("signature larger than the fixed reservation; signing with estimation")
        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
        out = io.BytesIO()
        pdf_signer.sign_pdf(writer, output=out)
    signed = out.getvalue()
    write_atomically(Path(output_pdf), signed, mode=0o644)
    return hashlib.sha256(signed).hexdigest()


def _stamp_last_page(pdf: bytes, png: bytes, box: tuple[float, ...]) -> bytes:
    from PIL import Image
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.images import PdfImage
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.layout import BoxConstraints

    x1, y1, x2, y2 = (float(v) for v in box)
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"stamp box must be (x1, y1, x2, y2) with x2 > x1 and y2 > y1: {box}")
    image = Image.open(io.BytesIO(png))
    image.load()
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA")
    # Fit the image into the box, keeping its aspect ratio, centred.
    scale = min((x2 - x1) / image.width, (y2 - y1) / image.height)
    width, height = image.width * scale, image.height * scale
    left, bottom = x1 + ((x2 - x1) - width) / 2, y1 + ((y2 - y1) - height) / 2

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    last_page = int(writer.root["/Pages"]["/Count"]) - 1
    pdf_image = PdfImage(image, writer=writer, box=BoxConstraints(width=width, height=height))
    drawing = pdf_image.render()
    content = b"q 1 0 0 1 %.3f %.3f cm %s Q" % (left, bottom, drawing)
    stream = generic.StreamObject(stream_data=content)
    stream.compress()
    writer.add_stream_to_page(last_page, writer.add_object(stream),
                              resources=pdf_image.resources.as_pdf_object())
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- validation ------------------------------------------------------------------------------

@dataclass(frozen=True)
class SignatureReport:
    intact: bool
    valid: bool
    trusted: bool
    timestamped: bool
    timestamp_valid: bool
    signer: str
    signed_at: dt.datetime | None
    coverage: str
    summary: str

    @property
    def ok(self) -> bool:
        return self.intact and self.valid and self.trusted and self.timestamp_valid


def validate_signed_pdf(path: Path,
                        identity_or_trust_roots: CompanyIdentity | Sequence) -> SignatureReport:
    """Validate the last signature of a PDF offline against our root (no network fetching).

    A damaged or tampered file never raises: it yields a report with intact/valid False and
    the reason in `summary`, so callers can store the result as evidence.
    """
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    roots = _trust_roots(identity_or_trust_roots)
    try:
        with open(path, "rb") as fh:
            reader = PdfFileReader(fh, strict=False)
            signatures = reader.embedded_signatures
            if not signatures:
                return _failed_report("文件中没有数字签名")
            embedded = signatures[-1]
            context = ValidationContext(trust_roots=roots, allow_fetching=False)
            ts_context = ValidationContext(trust_roots=roots, allow_fetching=False)
            status = validate_pdf_signature(embedded, signer_validation_context=context,
                                            ts_validation_context=ts_context)
            ts = status.timestamp_validity
            signer = ""
            if status.signing_cert is not None:
                subject = status.signing_cert.subject.native
                signer = subject.get("common_name") or status.signing_cert.subject.human_friendly
            signed_at = ts.timestamp if ts is not None else status.signer_reported_dt
            return SignatureReport(
                intact=bool(status.intact),
                valid=bool(status.valid),
                trusted=bool(status.trusted),
                timestamped=ts is not None,
                timestamp_valid=bool(ts is not None and ts.intact and ts.valid and ts.trusted),
                signer=signer,
                signed_at=signed_at.astimezone(dt.timezone.utc) if signed_at else None,
                coverage=status.coverage.name if status.coverage is not None else "",
                summary=status.summary(),
            )
    except Exception as exc:  # tampered bytes can break parsing anywhere
        return _failed_report(f"{type(exc).__name__}: {exc}"[:500])


def inspect_signatures(path: Path) -> list[dict]:
    """What the embedded signatures of a PDF say about themselves (signer, time, timestamp,
    integrity), without trust decisions: for files sealed by someone else (e.g. e签宝)."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    out = []
    try:
        with open(path, "rb") as fh:
            reader = PdfFileReader(fh, strict=False)
            for embedded in reader.embedded_signatures:
                context = ValidationContext(trust_roots=[], allow_fetching=False)
                status = validate_pdf_signature(embedded, signer_validation_context=context)
                ts = status.timestamp_validity
                cert = status.signing_cert
                out.append({
                    "field": embedded.field_name,
                    "signer": (cert.subject.native.get("common_name") if cert else None),
                    "issuer": (cert.issuer.human_friendly if cert else None),
                    "intact": bool(status.intact),
                    "signer_reported_time": (status.signer_reported_dt.isoformat()
                                             if status.signer_reported_dt else None),
                    "timestamp_time": ts.timestamp.isoformat() if ts is not None else None,
                    "timestamp_intact": bool(ts.intact) if ts is not None else None,
                    "coverage": status.coverage.name if status.coverage is not None else None,
                })
    except Exception as exc:
        out.append({"error": f"{type(exc).__name__}: {exc}"[:300]})
    return out


def _failed_report(summary: str) -> SignatureReport:
    return SignatureReport(intact=False, valid=False, trusted=False, timestamped=False,
                           timestamp_valid=False, signer="", signed_at=None, coverage="",
                           summary=summary)


def _trust_roots(value) -> list[asn1_x509.Certificate]:
    if isinstance(value, CompanyIdentity):
        return value.trust_roots()
    roots = []
    for item in value:
        if isinstance(item, asn1_x509.Certificate):
            roots.append(item)
        elif isinstance(item, x509.Certificate):
            roots.append(_asn1_cert(item))
        elif isinstance(item, (str, Path)):
            roots.append(_asn1_cert(x509.load_pem_x509_certificate(Path(item).read_bytes())))
        else:
            raise TypeError(f"unsupported trust root: {type(item).__name__}")
    return roots


# --- helpers ---------------------------------------------------------------------------------

def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _key_usage(*, digital_signature=False, content_commitment=False, key_cert_sign=False,
               crl_sign=False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature,
                         content_commitment=content_commitment, key_encipherment=False,
                         data_encipherment=False, key_agreement=False,
                         key_cert_sign=key_cert_sign, crl_sign=crl_sign,
                         encipher_only=False, decipher_only=False)


def _issue(ca_cert, ca_key, public_key, subject, now, *, days, key_usage, eku=None):
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
    )
    if eku:
        # RFC 3161 §2.3: a TSA certificate carries exactly timeStamping, marked critical.
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=True)
    return builder.sign(ca_key, hashes.SHA256())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key, password: bytes | None) -> bytes:
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption)


def _load_key(path: Path, password: bytes | None):
    data = path.read_bytes()
    encrypted = b"ENCRYPTED PRIVATE KEY" in data
    if encrypted and not password:
        raise IdentityError(f"{path.name} is encrypted: set the certificate password")
    try:
        return serialization.load_pem_private_key(data, password=password if encrypted else None)
    except (ValueError, TypeError):
        raise IdentityError(f"cannot decrypt {path.name}: wrong certificate password?") from None


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _asn1_key(key) -> asn1_keys.PrivateKeyInfo:
    return asn1_keys.PrivateKeyInfo.load(key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock between processes (no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

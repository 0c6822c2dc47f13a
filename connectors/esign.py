"""E-signature: what the hub needs from a signing service, in business words.

Two implementations sit behind `ESignature`:
- `connectors.esign_builtin.BuiltinSigning` (provider "builtin"): our own signing page, the
  customer draws a signature, the hub seals the quote with its own PAdES certificate;
- `connectors.esign_tsign.TsignSigning` (provider "esign"): e签宝 (tsign) open platform v3.

Which one runs is configuration (`Settings.esign_backend`). Both answer callbacks that must be
verified with `verify_callback(provider, ...)` before anything is stored.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class SigningRequest:
    quote_code: str
    pdf_path: Path
    title: str
    signer_name: str
    signer_company: str
    signer_phone: str | None
    signer_email: str | None
    expires_at: dt.datetime  # aware
    idempotency_key: str     # the hub's effect key, e.g. "signing:<quote code>"
    notify_url: str | None = None
    # the hub's own signing page for this quote (its token already issued): the built-in
    # provider hands it out as is; a remote provider may send the signer back to it
    page_url: str | None = None

    def __post_init__(self):
        if self.expires_at.tzinfo is None:
            raise ValueError("SigningRequest.expires_at must be timezone-aware")


@dataclass(frozen=True)
class SigningHandle:
    provider: str
    ref: str   # what fetch_signed needs: quote code (builtin) or signFlowId (e签宝)
    url: str   # the link the customer opens; a bearer secret: never log it


@dataclass(frozen=True)
class SignedDocument:
    pdf_path: Path
    sha256: str
    evidence_path: Path   # the evidence JSON the connector wrote beside the PDF
    evidence: dict = field(default_factory=dict)
    # evidence: who signed, when (ISO UTC), IP / user agent when known, provider ref,
    # document hashes before/after, timestamp token info, and Chinese labels for the report.


@runtime_checkable
class ESignature(Protocol):
    provider: str

    def create_signing(self, request: SigningRequest) -> SigningHandle:
        """Open a signing request for one quote. Effectful: the caller records the effect
        under `request.idempotency_key` and calls this once per key."""
        ...

    def fetch_signed(self, ref: str, dest_dir: Path) -> SignedDocument:
        """Store the signed PDF and its evidence in `dest_dir`; idempotent."""
        ...


class CallbackSignatureError(Exception):
    """A signing callback failed verification. `reason_code` is stable and safe to log:
    missing_signature, missing_timestamp, bad_timestamp, stale_timestamp, bad_signature,
    unsupported_algorithm, app_id_mismatch, bad_body."""

    def __init__(self, reason_code: str, message: str = "") -> None:
        super().__init__(message or reason_code)
        self.reason_code = reason_code


# Evidence labels for reports (the evidence dict keys stay English for machines).
EVIDENCE_LABELS_ZH = {
    "provider": "签署服务",
    "provider_ref": "签署流水号",
    "quote_code": "报价单编号",
    "signer_name": "签署人",
    "signer_company": "签署单位",
    "signer_ip": "签署 IP 地址",
    "signer_user_agent": "签署设备（浏览器）",
    "signed_at": "签署时间（UTC）",
    "sealed_at": "盖章时间（UTC）",
    "original_sha256": "原始文件 SHA-256",
    "signed_sha256": "签署后文件 SHA-256",
    "signature_image_sha256": "手写签名图片 SHA-256",
    "certificate": "签章证书",
    "timestamp": "可信时间戳",
    "validation": "验签结果",
}


def verify_callback(provider: str, headers: Mapping[str, str], raw_query: str, body: bytes,
                    secret: str, *, now: dt.datetime | None = None,
                    window_seconds: int = 300, app_id: str | None = None) -> dict:
    """Verify a signing callback for `provider` and return its parsed JSON body.

    Raises CallbackSignatureError(reason_code) when headers are missing, the signature is
    forged, or the timestamp is outside `window_seconds` of `now`.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    if provider == "esign":
        from connectors.esign_tsign import verify_tsign_callback

        return verify_tsign_callback(headers, raw_query, body, secret, now=now,
                                     window_seconds=window_seconds, app_id=app_id)
    raise ValueError(f"unknown e-signature provider: {provider!r}")


def stored_signed_document(pdf_out: Path, evidence_out: Path) -> SignedDocument | None:
    """A signed file fetched earlier, when it is complete and matches its evidence (a crash
    between the two writes means: fetch or sign again)."""
    if not (pdf_out.is_file() and evidence_out.is_file()):
        return None
    try:
        evidence = json.loads(evidence_out.read_text(encoding="utf-8"))
    except ValueError:
        return None
    sha = hashlib.sha256(pdf_out.read_bytes()).hexdigest()
    if evidence.get("signed_sha256") != sha:
        return None
    return SignedDocument(pdf_path=pdf_out, sha256=sha, evidence_path=evidence_out,
                          evidence=evidence)

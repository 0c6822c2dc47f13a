"""e签宝 (tsign) open platform v3: the real remote signing client (provider "esign").

Auth follows e签宝's "请求签名鉴权" exactly:

    StringToSign = METHOD \\n Accept \\n Content-MD5 \\n Content-Type \\n Date \\n [Headers \\n] PathAndParameters
    X-Tsign-Open-Ca-Signature = Base64(HMAC-SHA256(AppSecret, StringToSign))
    Content-MD5 = Base64(MD5(raw body bytes))   (empty for a request without body)

with headers X-Tsign-Open-App-Id, X-Tsign-Open-Auth-Mode: Signature, X-Tsign-Open-Ca-Timestamp
(ms, valid 15 minutes). PathAndParameters is the path plus the query sorted by key, values not
URL-encoded. The body is serialized once and the same bytes are hashed and sent.

Callbacks are signed differently: X-Tsign-Open-SIGNATURE = hex(HMAC-SHA256(AppSecret,
X-Tsign-Open-TIMESTAMP + query values sorted by key + raw body)).

Flow of one quote: file-upload-url → PUT bytes to OSS → poll file status → create-by-file
(the one effect) → sign-url. fetch_signed: detail → file-download-url → download.

Sign-flow creation happens once per quote: the caller records the effect (effects table,
key `request.idempotency_key`) and calls `create_signing` once per key; in addition the client
looks for an existing flow of the quote (by title marker) before creating and before each
retry of the create call, so a lost response or a crash before the effect was recorded does
not start a second flow.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import httpx
from pydantic import SecretStr

from connectors import pades
from connectors.base import PermanentError, RemoteClient, TransientError, send, transient_retry
from connectors.files import write_atomically
from connectors.esign import (
    EVIDENCE_LABELS_ZH,
    CallbackSignatureError,
    SignedDocument,
    stored_signed_document,
    SigningHandle,
    SigningRequest,
)

log = logging.getLogger(__name__)

PROVIDER = "esign"
ACCEPT = "*/*"
JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
PDF_CONTENT_TYPE = "application/pdf"
MAX_FLOW_DAYS = 90               # signFlowExpireTime may be at most 90 days ahead
FLOW_IN_PROGRESS, FLOW_DONE = 1, 2
_FORBIDDEN_TITLE_CHARS = re.compile(r'[/\\:*"<>|?\U0001F000-\U0001FFFF]')
_REF_RE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


# --- request signing (pure functions, also used by tests) ------------------------------------

def content_md5(data: bytes) -> str:
    """Base64 of the 16 raw MD5 bytes (not of the hex digest)."""
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def path_and_parameters(path: str, query: Mapping[str, object] | None = None) -> str:
    """Path plus query sorted by key, values not encoded; a key with an empty value is
    written without '='."""
    if not query:
        return path
    parts = []
    for key in sorted(query):
        value = _query_value(query[key])
        parts.append(key if value == "" else f"{key}={value}")
    return path + "?" + "&".join(parts)


def string_to_sign(method: str, accept: str, md5: str, content_type: str, date: str,
                   path_and_params: str, headers: str = "") -> str:
    head = f"{method.upper()}\n{accept}\n{md5}\n{content_type}\n{date}\n"
    return head + (f"{headers}\n{path_and_params}" if headers else path_and_params)


def request_signature(app_secret: str, sts: str) -> str:
    digest = hmac.new(app_secret.encode("utf-8"), sts.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_headers(app_id: str, app_secret: str, method: str, path: str, body: bytes = b"",
                   query: Mapping[str, object] | None = None, *,
                   content_type: str = JSON_CONTENT_TYPE, now: dt.datetime | None = None
                   ) -> dict[str, str]:
    """All headers of one signed e签宝 API request."""
    md5 = content_md5(body) if body else ""
    sts = string_to_sign(method, ACCEPT, md5, content_type, "", path_and_parameters(path, query))
    ts = int((now or dt.datetime.now(dt.timezone.utc)).timestamp() * 1000)
    headers = {
        "X-Tsign-Open-App-Id": app_id,
        "X-Tsign-Open-Auth-Mode": "Signature",
        "X-Tsign-Open-Ca-Timestamp": str(ts),
        "X-Tsign-Open-Ca-Signature": request_signature(app_secret, sts),
        "Accept": ACCEPT,
        "Content-Type": content_type,
    }
    if md5:
        headers["Content-MD5"] = md5
    return headers


def _query_value(value: object) -> str:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


# --- callbacks -------------------------------------------------------------------------------

def callback_signature(app_secret: str, timestamp: str, raw_query: str, body: bytes) -> str:
    """hex(HMAC-SHA256(AppSecret, timestamp + query values sorted by key + raw body))."""
    first: dict[str, str] = {}
    for key, value in parse_qsl(raw_query or "", keep_blank_values=True):
        first.setdefault(key, value)
    query_values = "".join(first[k] for k in sorted(first))
    message = timestamp.encode("utf-8") + query_values.encode("utf-8") + body
    return hmac.new(app_secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify_tsign_callback(headers: Mapping[str, str], raw_query: str, body: bytes,
                          app_secret: str, *, now: dt.datetime | None = None,
                          window_seconds: int = 300, app_id: str | None = None) -> dict:
    """Verify an e签宝 callback and return its JSON (signFlowId, action such as
    SIGN_FLOW_COMPLETE / SIGN_MISSON_COMPLETE, signFlowStatus or signResult).

    Raises CallbackSignatureError with reason missing_signature, missing_timestamp,
    bad_timestamp, unsupported_algorithm, app_id_mismatch, bad_signature, stale_timestamp
    or bad_body. The signature is checked before freshness, so "stale_timestamp" means a
    genuine but late (or replayed) delivery.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    lower = {k.lower(): v for k, v in headers.items()}
    signature = (lower.get("x-tsign-open-signature") or "").strip()
    timestamp = (lower.get("x-tsign-open-timestamp") or "").strip()
    algorithm = (lower.get("x-tsign-open-signature-algorithm") or "hmac-sha256").strip().lower()
    if not signature:
        raise CallbackSignatureError("missing_signature")
    if not timestamp:
        raise CallbackSignatureError("missing_timestamp")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 15:
        raise CallbackSignatureError("bad_timestamp")
    if algorithm != "hmac-sha256":
        raise CallbackSignatureError("unsupported_algorithm")
    if app_id is not None and lower.get("x-tsign-open-app-id") != app_id:
        raise CallbackSignatureError("app_id_mismatch")
    expected = callback_signature(app_secret, timestamp, raw_query, body)
    # as bytes: compare_digest refuses text with non-ASCII characters (a TypeError, a 500)
    if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
        raise CallbackSignatureError("bad_signature")
    if abs(now.timestamp() * 1000 - int(timestamp)) > window_seconds * 1000:
        raise CallbackSignatureError("stale_timestamp")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # nested past the parser's depth: no callback either
        raise CallbackSignatureError("bad_body") from None
    if not isinstance(payload, dict):
        raise CallbackSignatureError("bad_body")
    return payload


# --- the client ------------------------------------------------------------------------------

class TsignSigning(RemoteClient):
    """ESignature over e签宝 open platform v3."""

    provider = PROVIDER

    def __init__(self, base_url: str, app_id: str, app_secret: SecretStr | str,
                 timeout: float = 10.0, attempts: int = 4, *,
                 transient_codes: frozenset[int] | set[int] = frozenset(),
                 seal_position: tuple[float, float] = (450.0, 110.0),
                 sign_url_need_login: bool = False,
                 dedupe_window: dt.timedelta = dt.timedelta(days=3),
                 file_ready_timeout: float = 30.0, poll_interval: float = 0.5,
                 backoff_initial: float = 0.2, backoff_max: float = 3.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self._secret = app_secret if isinstance(app_secret, SecretStr) else SecretStr(app_secret)
        self.attempts = attempts
        # Business codes worth retrying. e签宝's published code tables list no rate-limit or
        # "system busy" code for these endpoints (throttling shows as HTTP 429/5xx, which is
        # always transient), so the set is empty unless configured.
        self.transient_codes = frozenset(transient_codes)
        self.seal_position = seal_position
        self.sign_url_need_login = sign_url_need_login
        self.dedupe_window = dedupe_window
        self.file_ready_timeout = file_ready_timeout
        self.poll_interval = poll_interval
        self._retry = transient_retry(attempts=attempts, initial=backoff_initial,
                                      maximum=backoff_max)
        self._client = httpx.Client(timeout=timeout, transport=transport,
                                    headers={"User-Agent": "salesops-hub/esign"})

    def __repr__(self) -> str:
        return f"TsignSigning(base_url={self.base_url!r}, app_id={self.app_id!r})"

    # -- ESignature ----------------------------------------------------------------------------
    def create_signing(self, request: SigningRequest) -> SigningHandle:
        """Upload the quote, start one sign flow for the customer's company and return the
        signing link. Effectful (starts a flow, which costs a contract unit): see the module
        docstring for how a second flow for the same quote is avoided."""
        self._require_config()
        account = signer_account(request.signer_phone, request.signer_email)
        if not account:
            raise PermanentError(f"报价单 {request.quote_code} 缺少签署人手机号（11 位手机号码，"
                                 "座机不能作为 e签宝 账号）或邮箱，无法发起 e签宝 签署",
                                 provider=PROVIDER, code="no_signer_account")
        if not request.signer_company.strip():
            raise PermanentError(f"报价单 {request.quote_code} 缺少签署单位名称",
                                 provider=PROVIDER, code="no_signer_company")
        title = flow_title(request.title, request.quote_code)

        flow_id = self._retry(self.find_flow)(request.quote_code)
        if flow_id:
            log.info("e签宝 flow for quote %s already exists (%s): reusing it",
                     request.quote_code, flow_id)
        else:
            file_id = self.upload_pdf(Path(request.pdf_path), f"{request.quote_code}.pdf")
            body = self._create_body(request, title, file_id, account)
            flow_id = self._start_flow(body, request.quote_code)
            log.info("e签宝 flow %s started for quote %s", flow_id, request.quote_code)
        url = self._retry(self.signing_url)(flow_id, account, request.signer_company)
        return SigningHandle(provider=PROVIDER, ref=flow_id, url=url)

    def fetch_signed(self, ref: str, dest_dir: Path) -> SignedDocument:
        """Download the signed file of a completed flow into dest_dir/<ref>-signed.pdf with
        dest_dir/<ref>-evidence.json. Idempotent. A flow still being signed raises
        TransientError (retry later); revoked, expired or rejected flows raise PermanentError."""
        if not _REF_RE.match(ref or ""):
            raise ValueError(f"not a sign flow id: {ref!r}")
        self._require_config()
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        pdf_out = dest_dir / f"{ref}-signed.pdf"
        evidence_out = dest_dir / f"{ref}-evidence.json"
        with pades.file_lock(dest_dir / f".{ref}.fetch.lock"):
            stored = stored_signed_document(pdf_out, evidence_out)
            if stored is not None:
                return stored
            detail = self._retry(self._api)("GET", f"/v3/sign-flow/{ref}/detail")
            status = _int(detail.get("signFlowStatus"))
            if status in (0, FLOW_IN_PROGRESS):
                raise TransientError(f"e签宝 flow {ref} is not finished yet (status {status})",
                                     provider=PROVIDER, code="not_finished")
            if status != FLOW_DONE:
                raise PermanentError(f"e签宝 flow {ref} ended without signature (status {status}: "
                                     f"{detail.get('signFlowDescription', '')})",
                                     provider=PROVIDER, code=f"flow_status_{status}")
            files = self._retry(self._download_files)(ref)
            main_name, main_bytes = files[0]
            signed_sha = hashlib.sha256(main_bytes).hexdigest()
            write_atomically(pdf_out, main_bytes)
            extra = []
            for index, (name, data) in enumerate(files[1:], start=2):
                extra_path = dest_dir / f"{ref}-signed-{index}.pdf"
                write_atomically(extra_path, data)
                extra.append({"file": extra_path.name, "name": name,
                              "sha256": hashlib.sha256(data).hexdigest()})
            evidence = _evidence(ref, detail, main_name, signed_sha, extra,
                                 pades.inspect_signatures(pdf_out))
            write_atomically(evidence_out, json.dumps(evidence, ensure_ascii=False,
                                                        indent=2).encode())
        log.info("fetched signed file of e签宝 flow %s (sha256 %s)", ref, signed_sha)
        return SignedDocument(pdf_path=pdf_out, sha256=signed_sha, evidence_path=evidence_out,
                              evidence=evidence)

    def flow_status(self, ref: str) -> tuple[int, str]:
        """(signFlowStatus, signFlowDescription) of a flow as e签宝 has it now: 1 being
        signed, 2 done, 3 revoked, 5 expired, 7 refused (a callback that never arrived)."""
        if not _REF_RE.match(ref or ""):
            raise ValueError(f"not a sign flow id: {ref!r}")
        self._require_config()
        detail = self._retry(self._api)("GET", f"/v3/sign-flow/{ref}/detail")
        return _int(detail.get("signFlowStatus")), str(detail.get("signFlowDescription") or "")

    # -- steps (public so flows and ops scripts can call them one by one) ----------------------
    def upload_pdf(self, pdf_path: Path, file_name: str) -> str:
        """Upload a PDF to e签宝's storage; return its fileId once it is usable."""
        raw = pdf_path.read_bytes()
        md5 = content_md5(raw)
        data = self._retry(self._api)("POST", "/v3/files/file-upload-url", {
            "contentMd5": md5,
            "contentType": PDF_CONTENT_TYPE,
            "convertToPDF": False,
            "fileName": file_name,
            "fileSize": len(raw),
        })
        file_id, upload_url = data.get("fileId"), data.get("fileUploadUrl")
        if not file_id or not upload_url:
            raise PermanentError("e签宝 file-upload-url answered without fileId/fileUploadUrl",
                                 provider=PROVIDER, code="bad_response")
        self._retry(self._put_file)(upload_url, raw, md5)
        self._wait_file_ready(file_id)
        return file_id

    def find_flow(self, quote_code: str) -> str | None:
        """The signFlowId of a flow of this quote that is being signed or done, if any."""
        now = dt.datetime.now(dt.timezone.utc)
        marker = _title_marker(quote_code)
        page = 1
        while page <= 20:
            data = self._api("POST", "/v3/sign-flow/sign-flow-list", {
                "pageNum": page,
                "pageSize": 100,
                "signFlowStartTimeFrom": _ms(now - self.dedupe_window),
                "signFlowStartTimeTo": _ms(now + dt.timedelta(minutes=5)),
                "signFlowStatus": [FLOW_IN_PROGRESS, FLOW_DONE],
            })
            infos = data.get("signFlowInfos") or []
            for info in infos:
                title = info.get("signFlowTitle") or (info.get("signFlowConfig") or {}).get(
                    "signFlowTitle") or ""
                if title.endswith(marker) and info.get("signFlowId"):
                    return info["signFlowId"]
            if len(infos) < 100 or page * 100 >= _int(data.get("total")):
                return None
            page += 1
        return None

    def signing_url(self, flow_id: str, account: str, company: str) -> str:
        """A signing link for the company's transactor (links may be short-lived when
        needLogin is false: ask again when the customer clicks an old one)."""
        data = self._api("POST", f"/v3/sign-flow/{flow_id}/sign-url", {
            "needLogin": self.sign_url_need_login,
            "urlType": 2,
            "operator": {"psnAccount": account},
            "organization": {"orgName": company},
            "clientType": "ALL",
        })
        url = data.get("url") or data.get("shortUrl")
        if not url:
            raise PermanentError("e签宝 sign-url answered without a url", provider=PROVIDER,
                                 code="bad_response")
        return url

    # -- internals -----------------------------------------------------------------------------
    def _require_config(self) -> None:
        if not (self.base_url and self.app_id and self._secret.get_secret_value()):
            raise PermanentError("e签宝 未配置（需要 SALESOPS_ESIGN_URL / ESIGN_APP_ID / "
                                 "ESIGN_APP_SECRET）", provider=PROVIDER, code="not_configured")

    def _start_flow(self, body: dict, quote_code: str) -> str:
        """The effectful call. Retried only for transient errors, and every retry first looks
        for a flow the previous attempt may have created before its answer was lost."""
        attempted = False

        @self._retry
        def attempt() -> str:
            nonlocal attempted
            if attempted:
                existing = self.find_flow(quote_code)
                if existing:
                    log.warning("e签宝 create-by-file answer for quote %s was lost; the flow "
                                "exists (%s)", quote_code, existing)
                    return existing
            attempted = True
            data = self._api("POST", "/v3/sign-flow/create-by-file", body)
            flow_id = data.get("signFlowId")
            if not flow_id:
                raise PermanentError("e签宝 create-by-file answered without signFlowId",
                                     provider=PROVIDER, code="bad_response")
            return flow_id

        return attempt()

    def _create_body(self, request: SigningRequest, title: str, file_id: str,
                     account: str) -> dict:
        now = dt.datetime.now(dt.timezone.utc)
        expires = min(request.expires_at, now + dt.timedelta(days=MAX_FLOW_DAYS))
        config: dict = {
            "signFlowTitle": title,
            "signFlowExpireTime": _ms(expires),
            "autoStart": True,
            "autoFinish": True,   # default false would leave the flow "signing" forever
        }
        if request.notify_url:
            config["notifyUrl"] = request.notify_url
        x, y = self.seal_position
        return {
            "docs": [{"fileId": file_id, "fileName": f"{request.quote_code}.pdf"}],
            "signFlowConfig": config,
            "signers": [{
                "signConfig": {"signOrder": 1},
                "signerType": 1,
                "orgSignerInfo": {
                    "orgName": request.signer_company,
                    "transactorInfo": {
                        "psnAccount": account,
                        "psnInfo": {"psnName": request.signer_name},
                    },
                },
                "signFields": [{
                    "customBizNum": request.quote_code,
                    "fileId": file_id,
                    "normalSignFieldConfig": {
                        "signFieldStyle": 1,
                        "signFieldPosition": {
                            "positionPage": str(_page_count(Path(request.pdf_path))),
                            "positionX": x,
                            "positionY": y,
                        },
                    },
                }],
            }],
        }

    def _put_file(self, upload_url: str, raw: bytes, md5: str) -> None:
        # The upload URL is pre-signed OSS: no e签宝 headers, but Content-MD5 and Content-Type
        # must equal what file-upload-url was told. Never log the URL (it is a credential).
        try:
            response = self._client.put(upload_url, content=raw, headers={
                "Content-MD5": md5, "Content-Type": PDF_CONTENT_TYPE})
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise TransientError(f"e签宝 file storage unreachable: {type(exc).__name__}",
                                 provider=PROVIDER, code="network") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"e签宝 file storage answered {response.status_code}",
                                 provider=PROVIDER, code=str(response.status_code))
        if response.status_code >= 300:
            raise PermanentError(f"e签宝 file storage refused the upload "
                                 f"({response.status_code})", provider=PROVIDER,
                                 code=str(response.status_code))
        try:
            err = _int(response.json().get("errCode"))
        except ValueError:
            err = 0
        if err != 0:
            raise PermanentError(f"e签宝 file storage refused the upload (errCode {err})",
                                 provider=PROVIDER, code=str(err))

    def _wait_file_ready(self, file_id: str) -> None:
        deadline = time.monotonic() + self.file_ready_timeout
        while True:
            data = self._retry(self._api)("GET", f"/v3/files/{file_id}")
            status = _int(data.get("fileStatus"))
            if status in (2, 5):        # uploaded / converted to PDF
                return
            if status in (3, 9, 12):    # upload or conversion failed
                raise PermanentError(f"e签宝 could not take file {file_id} (status {status})",
                                     provider=PROVIDER, code=f"file_status_{status}")
            if time.monotonic() > deadline:
                raise TransientError(f"e签宝 file {file_id} not ready (status {status})",
                                     provider=PROVIDER, code="file_not_ready")
            time.sleep(self.poll_interval)

    def _download_files(self, flow_id: str) -> list[tuple[str, bytes]]:
        # Documented as POST since 2025-12 (GET kept for compatibility).
        data = self._api("POST", f"/v3/sign-flow/{flow_id}/file-download-url",
                         {"urlAvailableDate": 600})
        files = data.get("files") or []
        if not files:
            raise PermanentError(f"e签宝 flow {flow_id} has no signed files",
                                 provider=PROVIDER, code="no_files")
        out = []
        for item in files:
            url = item.get("downloadUrl")
            if not url:
                raise PermanentError("e签宝 file-download-url answered without downloadUrl",
                                     provider=PROVIDER, code="bad_response")
            response = send(self._client, PROVIDER, "GET", url)
            if not response.content.startswith(b"%PDF-"):
                raise PermanentError(f"e签宝 signed file of flow {flow_id} is not a PDF",
                                     provider=PROVIDER, code="not_pdf")
            out.append((item.get("fileName") or "", response.content))
        return out

    def _api(self, method: str, path: str, body: dict | None = None,
             query: Mapping[str, object] | None = None) -> dict:
        """One signed request; returns `data` of a code-0 answer or raises a typed error."""
        raw = (json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
               if body is not None else b"")
        headers = signed_headers(self.app_id, self._secret.get_secret_value(), method, path,
                                 raw, query)
        url = self.base_url + path
        if query:
            url += "?" + urlencode([(k, _query_value(query[k])) for k in sorted(query)])
        response = send(self._client, PROVIDER, method, url, content=raw or None,
                        headers=headers)
        try:
            payload = response.json()
        except ValueError:
            raise PermanentError(f"e签宝 {path} answered non-JSON", provider=PROVIDER,
                                 code="bad_response") from None
        code = _int(payload.get("code"), default=-1)
        if code != 0:
            message = str(payload.get("message", ""))[:200]
            error = TransientError if code in self.transient_codes else PermanentError
            raise error(f"e签宝 {path} failed: {code} {message}", provider=PROVIDER,
                        code=str(code))
        data = payload.get("data")
        return data if isinstance(data, dict) else {}


# --- helpers ---------------------------------------------------------------------------------

_MOBILE_RE = re.compile(r"^1[3-9][0-9]{9}$")


def signer_account(phone: str | None, email: str | None) -> str:
    """The signer's e签宝 account (psnAccount): a mainland mobile number as 11 digits (the
    order's phone may be typed "+86 139-1234-5678"), else the mail address; "" when neither
    is usable (a landline is no account)."""
    digits = re.sub(r"[\s\-()（）+]", "", phone or "")
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if _MOBILE_RE.match(digits):
        return digits
    return (email or "").strip()


def flow_title(title: str, quote_code: str) -> str:
    """The sign flow title: the quote's title plus a marker that identifies the quote
    (e签宝 forbids / \\ : * " < > | ? and emoji in titles)."""
    clean = _FORBIDDEN_TITLE_CHARS.sub("", title or "").strip() or "报价单"
    return f"{clean[:60]}{_title_marker(quote_code)}"


def _title_marker(quote_code: str) -> str:
    return f"（{quote_code}）"


def _page_count(pdf_path: Path) -> int:
    from pyhanko.pdf_utils.reader import PdfFileReader

    with open(pdf_path, "rb") as fh:
        return int(PdfFileReader(fh, strict=False).root["/Pages"]["/Count"])


def _ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


def _int(value, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _iso_ms(value) -> str | None:
    ms = _int(value, default=0)
    if not ms:
        return None
    return (dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)
            .isoformat().replace("+00:00", "Z"))


def _evidence(ref: str, detail: dict, file_name: str, signed_sha: str, extra: list,
              signatures: list) -> dict:
    title = (detail.get("signFlowConfig") or {}).get("signFlowTitle") or ""
    match = re.search(r"（([A-Za-z0-9_-]+)）$", title)
    signer_name = signer_company = None
    for signer in detail.get("signers") or []:
        org = signer.get("orgSigner") or {}
        psn = signer.get("psnSigner") or {}
        signer_company = signer_company or org.get("orgName")
        signer_name = signer_name or psn.get("psnName")
    timestamps = [s.get("timestamp_time") for s in signatures if s.get("timestamp_time")]
    return {
        "provider": PROVIDER,
        "provider_ref": ref,
        "quote_code": match.group(1) if match else None,
        "signer_name": signer_name,
        "signer_company": signer_company,
        "signer_ip": None,            # e签宝 keeps IP / device evidence in its own 出证 report
        "signer_user_agent": None,
        "signed_at": _iso_ms(detail.get("signFlowFinishTime")),
        "flow_created_at": _iso_ms(detail.get("signFlowCreateTime")),
        "original_sha256": None,      # not reported by e签宝; the hub keeps Quote.pdf_sha256
        "signed_sha256": signed_sha,
        "signed_file_name": file_name,
        "extra_files": extra,
        "timestamp": {"present": bool(timestamps), "gen_time": timestamps[-1] if timestamps
                      else None, "tsa": "e签宝"},
        "embedded_signatures": signatures,
        "flow_status": detail.get("signFlowStatus"),
        "labels": EVIDENCE_LABELS_ZH,
    }



"""e签宝 (tsign) open platform v3 simulator: file upload, sign flows, sign URLs, downloads
and signed callbacks.

Speaks the documented wire format and checks it independently of the client code:
- every /v3 call must carry X-Tsign-Open-App-Id, X-Tsign-Open-Auth-Mode: Signature,
  X-Tsign-Open-Ca-Timestamp (ms, ±15 min) and X-Tsign-Open-Ca-Signature =
  Base64(HMAC-SHA256(secret, METHOD\\nAccept\\nContent-MD5\\nContent-Type\\nDate\\n[Headers\\n]
  PathAndParameters)); Content-MD5 must match the body. Failures answer like the gateway:
  HTTP 401 `{"success": false, "code": 401, "message": "INVALID_SIGNATURE"}`;
- business answers are `{"code": 0, "message": "成功", "data": {...}}`, errors a non-zero code;
- uploads go to a pre-signed "OSS" URL (PUT, Content-MD5/Content-Type must match what was
  declared), downloads come from short-lived "OSS" URLs;
- `complete(flow_id)` signs the uploaded PDF (PAdES, with a simulator CA) and POSTs
  SIGN_MISSON_COMPLETE and SIGN_FLOW_COMPLETE to the flow's notifyUrl with
  X-Tsign-Open-SIGNATURE = hex(HMAC-SHA256(secret, timestamp + query values + body)).

`created_for(quote_code)` counts created flows per quote so tests can prove "exactly once".
"""
from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import re
import secrets
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx

from tests.simulators.base import Faults, Reply, Request, Simulator

TIMESTAMP_WINDOW_MS = 15 * 60 * 1000
_FLOW_PATH = re.compile(r"^/v3/sign-flow/([A-Za-z0-9]+)/(sign-url|detail|file-download-url)$")
_FILE_PATH = re.compile(r"^/v3/files/([A-Za-z0-9]+)$")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@dataclass
class SimFile:
    file_id: str
    file_name: str
    content_md5: str
    content_type: str
    size: int
    upload_token: str
    data: bytes | None = None


@dataclass
class SimFlow:
    flow_id: str
    title: str
    quote_code: str | None
    file_ids: list[str]
    notify_url: str | None
    body: dict
    status: int = 1
    created_ms: int = field(default_factory=_now_ms)
    finished_ms: int | None = None
    signed_pdf: bytes | None = None


class TsignSimulator(Simulator):
    name = "tsign"

    def __init__(self, app_id: str, app_secret: str, faults: Faults | None = None) -> None:
        super().__init__(faults)
        self.app_id = app_id
        self.app_secret = app_secret
        self.files: dict[str, SimFile] = {}
        self.flows: dict[str, SimFlow] = {}
        self.downloads: dict[str, str] = {}     # download token → flow id
        self.created_by_title: collections.Counter[str] = collections.Counter()
        self.created_by_quote: collections.Counter[str] = collections.Counter()
        self.auth_failures: collections.Counter[str] = collections.Counter()  # message → n
        self.callbacks: list[dict] = []          # what complete() delivered
        self.error_codes: collections.deque[tuple[int, str]] = collections.deque()
        self.lose_create_answers = 0             # apply create-by-file, then answer 503
        self.file_ready_after_polls = 0          # fileStatus 1 for this many polls
        self._polls: collections.Counter[str] = collections.Counter()
        self._identity = None
        self._identity_lock = threading.Lock()

    # --- test controls -----------------------------------------------------------------
    def created_for(self, quote_code: str) -> int:
        with self.lock:
            return self.created_by_quote[quote_code]

    @property
    def flows_created(self) -> int:
        with self.lock:
            return sum(self.created_by_title.values())

    def fail_next(self, code: int, message: str = "系统繁忙") -> None:
        """Answer the next /v3 business call with this non-zero code."""
        with self.lock:
            self.error_codes.append((code, message))

    def flow_for(self, quote_code: str) -> SimFlow:
        with self.lock:
            matches = [f for f in self.flows.values() if f.quote_code == quote_code]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} flows for {quote_code}")
        return matches[0]

    def complete(self, flow_id: str, *, signer_name: str = "王经理",
                 deliver: bool = True, status: int = 2) -> list[int]:
        """Finish a flow as the signer would (status 2 = signed; 7 = rejected ...), then POST
        the callbacks to its notifyUrl. Returns the HTTP statuses of the deliveries."""
        with self.lock:
            flow = self.flows[flow_id]
            source = self.files[flow.file_ids[0]].data
        signed = self._sign(source, signer_name) if status == 2 else None
        with self.lock:
            flow.status = status
            flow.finished_ms = _now_ms()
            flow.signed_pdf = signed
        events = []
        if status == 2:
            events.append({
                "action": "SIGN_MISSON_COMPLETE", "timestamp": flow.finished_ms,
                "signFlowId": flow_id, "customBizNum": flow.quote_code or "", "signOrder": 1,
                "operateTime": flow.finished_ms, "signResult": 2, "resultDescription": "签署完成",
                "operator": {"psnId": "psn-sim", "psnAccount": {"accountMobile": "138****0000"}},
            })
        events.append({
            "action": "SIGN_FLOW_COMPLETE", "timestamp": flow.finished_ms, "signFlowId": flow_id,
            "signFlowTitle": flow.title, "signFlowStatus": str(status),
            "statusDescription": "完成" if status == 2 else "结束",
            "signFlowCreateTime": flow.created_ms, "signFlowStartTime": flow.created_ms,
            "signFlowFinishTime": flow.finished_ms,
        })
        statuses = []
        for event in events:
            body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
            self.callbacks.append({"flow_id": flow_id, "event": event, "body": body})
            if deliver and flow.notify_url:
                statuses.append(self.deliver(flow.notify_url, body))
        return statuses

    def callback_headers(self, notify_url: str, body: bytes,
                         timestamp_ms: int | None = None) -> dict[str, str]:
        ts = str(timestamp_ms if timestamp_ms is not None else _now_ms())
        query = urlsplit(notify_url).query
        first: dict[str, str] = {}
        for k, v in parse_qsl(query, keep_blank_values=True):
            first.setdefault(k, v)
        message = ts + "".join(first[k] for k in sorted(first))
        mac = hmac.new(self.app_secret.encode(), message.encode() + body, hashlib.sha256)
        return {
            "X-Tsign-Open-App-Id": self.app_id,
            "X-Tsign-Open-TIMESTAMP": ts,
            "X-Tsign-Open-SIGNATURE-ALGORITHM": "hmac-sha256",
            "X-Tsign-Open-SIGNATURE": mac.hexdigest(),
            "Content-Type": "application/json; charset=UTF-8",
        }

    def deliver(self, notify_url: str, body: bytes, timestamp_ms: int | None = None) -> int:
        headers = self.callback_headers(notify_url, body, timestamp_ms)
        try:
            return httpx.post(notify_url, content=body, headers=headers, timeout=5).status_code
        except httpx.HTTPError:
            return 0

    # --- wire --------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        if request.path.startswith("/oss/upload/") and request.method == "PUT":
            return self._oss_upload(request)
        if request.path.startswith("/oss/download/") and request.method == "GET":
            return self._oss_download(request)
        if not request.path.startswith("/v3/"):
            return Reply(404, {"code": 404, "message": "not found"})
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        with self.lock:
            if self.error_codes:
                code, message = self.error_codes.popleft()
                return self._fail(code, message)
        try:
            body = request.json() if request.body else {}
        except ValueError:
            return self._fail(1435002, "参数错误: 请求体不是合法 JSON")

        if request.method == "POST" and request.path == "/v3/files/file-upload-url":
            return self._file_upload_url(body)
        if request.method == "GET" and (m := _FILE_PATH.match(request.path)):
            return self._file_status(m.group(1))
        if request.method == "POST" and request.path == "/v3/sign-flow/create-by-file":
            return self._create_by_file(body)
        if request.method == "POST" and request.path == "/v3/sign-flow/sign-flow-list":
            return self._flow_list(body)
        m = _FLOW_PATH.match(request.path)
        if m:
            flow_id, action = m.groups()
            with self.lock:
                flow = self.flows.get(flow_id)
            if flow is None:
                return self._fail(1437104, "签署流程不存在")
            if action == "sign-url" and request.method == "POST":
                return self._sign_url(flow, body)
            if action == "detail" and request.method == "GET":
                return self._ok(self._detail(flow))
            if action == "file-download-url" and request.method in ("POST", "GET"):
                return self._download_url(flow)
        return self._fail(1435002, f"参数错误: 不支持的接口 {request.method} {request.path}")

    # --- gateway -----------------------------------------------------------------------
    def _check_auth(self, request: Request) -> Reply | None:
        h = request.headers
        if h.get("x-tsign-open-auth-mode") != "Signature":
            return self._denied("TOKEN_CANT_BE_NULL")
        app_id = h.get("x-tsign-open-app-id")
        ts = h.get("x-tsign-open-ca-timestamp")
        signature = h.get("x-tsign-open-ca-signature")
        if not (app_id and ts and signature):
            return self._denied("缺少参数")
        if app_id != self.app_id:
            return self._denied("无效的应用")
        if not ts.isdigit() or abs(_now_ms() - int(ts)) > TIMESTAMP_WINDOW_MS:
            return self._denied("INVALID_TIMESTAMP")
        md5 = h.get("content-md5", "")
        if request.body and md5 != _md5_b64(request.body):
            return self._denied("INVALID_SIGNATURE")
        # Optional signed headers, as the gateway documents them.
        names = [n.strip() for n in h.get("x-tsign-open-ca-signature-headers", "").split(",")
                 if n.strip()]
        signed_headers = "\n".join(f"{n}:{h.get(n.lower(), '')}" for n in sorted(names))
        query: dict[str, str] = {}
        for k, v in parse_qsl(request.raw_query, keep_blank_values=True):
            query.setdefault(k, v)
        pap = request.path
        if query:
            pap += "?" + "&".join(k if query[k] == "" else f"{k}={query[k]}"
                                  for k in sorted(query))
        sts = (f"{request.method}\n{h.get('accept', '')}\n{md5}\n{h.get('content-type', '')}\n"
               f"{h.get('date', '')}\n")
        sts += f"{signed_headers}\n{pap}" if signed_headers else pap
        expected = base64.b64encode(hmac.new(self.app_secret.encode(), sts.encode(),
                                             hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected, signature):
            return self._denied("INVALID_SIGNATURE")
        return None

    def _denied(self, message: str) -> Reply:
        with self.lock:
            self.auth_failures[message] += 1
        return Reply(401, {"success": False, "code": 401, "message": message})

    @staticmethod
    def _ok(data: dict) -> Reply:
        return Reply(200, {"code": 0, "message": "成功", "data": data})

    @staticmethod
    def _fail(code: int, message: str) -> Reply:
        return Reply(200, {"code": code, "message": message, "data": None})

    # --- files -------------------------------------------------------------------------
    def _file_upload_url(self, body: dict) -> Reply:
        missing = [k for k in ("contentMd5", "contentType", "fileName", "fileSize") if not body.get(k)]
        if missing:
            return self._fail(1435002, f"参数错误: {missing[0]}不能为空")
        if re.search(r'[/\\:*"<>|?]', body["fileName"]):
            return self._fail(1435002, "参数错误: 文件名称包含特殊字符")
        file_id = uuid.uuid4().hex
        token = secrets.token_urlsafe(16)
        with self.lock:
            self.files[file_id] = SimFile(file_id, body["fileName"], body["contentMd5"],
                                          body["contentType"], int(body["fileSize"]), token)
        upload_url = (f"{self.url}/oss/upload/{file_id}?Expires={int(time.time()) + 3600}"
                      f"&OSSAccessKeyId=SIM&Signature={token}")
        return self._ok({"fileId": file_id, "fileUploadUrl": upload_url})

    def _oss_upload(self, request: Request) -> Reply:
        file_id = request.path.rsplit("/", 1)[-1]
        with self.lock:
            f = self.files.get(file_id)
        token = (request.query.get("Signature") or [""])[0]
        if f is None or token != f.upload_token:
            return Reply(403, "<Error><Code>AccessDenied</Code></Error>",
                         {"Content-Type": "application/xml"})
        if (request.headers.get("content-md5") != f.content_md5
                or request.headers.get("content-type") != f.content_type
                or _md5_b64(request.body) != f.content_md5):
            return Reply(403, "<Error><Code>SignatureDoesNotMatch</Code></Error>",
                         {"Content-Type": "application/xml"})
        with self.lock:
            f.data = request.body
        return Reply(200, {"errCode": 0, "msg": "成功"})

    def _file_status(self, file_id: str) -> Reply:
        with self.lock:
            f = self.files.get(file_id)
            if f is None:
                return self._fail(1437501, "文件不存在")
            self._polls[file_id] += 1
            ready = f.data is not None and self._polls[file_id] > self.file_ready_after_polls
        return self._ok({"fileId": file_id, "fileName": f.file_name, "fileSize": None,
                         "fileStatus": 2 if ready else (1 if f.data is not None else 0)})

    # --- flows -------------------------------------------------------------------------
    def _create_by_file(self, body: dict) -> Reply:
        config = body.get("signFlowConfig") or {}
        title = config.get("signFlowTitle")
        if not title:
            return self._fail(1435002, "参数错误: signFlowTitle不能为空")
        signers = body.get("signers") or []
        if not signers:
            return self._fail(1435002, "参数错误: signers不能为空")
        for signer in signers:
            if signer.get("signerType") not in (0, 1):
                return self._fail(1435002, "参数错误: signerType只支持0或1")
            org = signer.get("orgSignerInfo")
            if signer["signerType"] == 1 and not (org and org.get("orgName")
                                                  and (org.get("transactorInfo") or {}).get("psnAccount")):
                return self._fail(1435002, "参数错误: 非自动签签署机构签署方经办人transactorInfo不能为空")
            for sign_field in signer.get("signFields") or []:
                pos = (sign_field.get("normalSignFieldConfig") or {}).get("signFieldPosition")
                if not pos or not all(k in pos for k in ("positionPage", "positionX", "positionY")):
                    return self._fail(1435002, "参数错误: 单页签章区,positionX、positionY、positionPage不能为空")
        file_ids = [d.get("fileId") for d in body.get("docs") or []]
        with self.lock:
            for file_id in file_ids:
                f = self.files.get(file_id)
                if f is None or f.data is None:
                    return self._fail(1437513, "文档未成功转换成pdf")
            biz = {sf.get("customBizNum") for s in signers for sf in s.get("signFields") or []}
            quote_code = next((b for b in biz if b), None)
            flow = SimFlow(uuid.uuid4().hex, title, quote_code, file_ids,
                           config.get("notifyUrl"), body)
            self.flows[flow.flow_id] = flow
            self.created_by_title[title] += 1
            if quote_code:
                self.created_by_quote[quote_code] += 1
            if self.lose_create_answers > 0:
                self.lose_create_answers -= 1
                return Reply(503, {"error": "answer lost after the flow was created"})
        return self._ok({"signFlowId": flow.flow_id})

    def _flow_list(self, body: dict) -> Reply:
        page, size = int(body.get("pageNum") or 1), int(body.get("pageSize") or 10)
        start_from = body.get("signFlowStartTimeFrom")
        start_to = body.get("signFlowStartTimeTo")
        if start_from is None or start_to is None:
            return self._fail(1435002, "参数错误: 发起签署流程的时间区间和完结签署流程的时间区间不可同时为空")
        statuses = set(body.get("signFlowStatus") or [1, 2, 3, 5, 7])
        with self.lock:
            flows = sorted((f for f in self.flows.values()
                            if start_from <= f.created_ms <= start_to and f.status in statuses),
                           key=lambda f: f.created_ms)
        chunk = flows[(page - 1) * size: page * size]
        return self._ok({"total": len(flows), "signFlowInfos": [
            {"signFlowId": f.flow_id, "signFlowTitle": f.title, "signFlowStatus": f.status,
             "signFlowStartTime": f.created_ms, "signFlowFinishTime": f.finished_ms}
            for f in chunk]})

    def _sign_url(self, flow: SimFlow, body: dict) -> Reply:
        account = (body.get("operator") or {}).get("psnAccount")
        transactors = [(s.get("orgSignerInfo") or {}).get("transactorInfo", {}).get("psnAccount")
                       for s in flow.body.get("signers") or []]
        if account not in transactors:
            return self._fail(1435002, "参数错误: 操作人不是流程签署方")
        ctx = secrets.token_urlsafe(16)
        return self._ok({"url": f"{self.url}/h5/sign?flowId={flow.flow_id}&context={ctx}",
                         "shortUrl": f"{self.url}/s/{ctx[:8]}"})

    def _detail(self, flow: SimFlow) -> dict:
        signers = []
        for s in flow.body.get("signers") or []:
            org = s.get("orgSignerInfo") or {}
            transactor = org.get("transactorInfo") or {}
            signers.append({
                "signOrder": 1, "signerType": s.get("signerType"),
                "orgSigner": {"orgId": "org-sim", "orgName": org.get("orgName")},
                "psnSigner": {"psnId": "psn-sim",
                              "psnName": (transactor.get("psnInfo") or {}).get("psnName"),
                              "psnAccount": {"accountMobile": transactor.get("psnAccount")}},
                "signFields": [{"signFieldStatus": "4" if flow.status == 2 else "1",
                                "customBizNum": sf.get("customBizNum"),
                                "statusUpdateTime": flow.finished_ms}
                               for sf in s.get("signFields") or []],
            })
        return {
            "signFlowStatus": flow.status,
            "signFlowDescription": {1: "签署中", 2: "完成", 3: "撤销", 5: "过期", 7: "拒签"}.get(
                flow.status, ""),
            "signFlowCreateTime": flow.created_ms, "signFlowStartTime": flow.created_ms,
            "signFlowFinishTime": flow.finished_ms,
            "signFlowConfig": {"signFlowTitle": flow.title, "autoFinish": True,
                               "notifyUrl": flow.notify_url},
            "docs": [{"fileId": fid, "fileName": self.files[fid].file_name}
                     for fid in flow.file_ids],
            "signers": signers,
        }

    def _download_url(self, flow: SimFlow) -> Reply:
        if flow.status != 2 or flow.signed_pdf is None:
            return self._fail(1437518, "流程非签署完成状态,不允许下载文档")
        token = secrets.token_urlsafe(16)
        with self.lock:
            self.downloads[token] = flow.flow_id
        name = self.files[flow.file_ids[0]].file_name
        return self._ok({"files": [{"fileId": flow.file_ids[0], "fileName": name,
                                    "downloadUrl": f"{self.url}/oss/download/{token}"}],
                         "attachments": []})

    def _oss_download(self, request: Request) -> Reply:
        token = request.path.rsplit("/", 1)[-1]
        with self.lock:
            flow_id = self.downloads.get(token)
            flow = self.flows.get(flow_id) if flow_id else None
        if flow is None or flow.signed_pdf is None:
            return Reply(403, "<Error><Code>AccessDenied</Code></Error>",
                         {"Content-Type": "application/xml"})
        return Reply(200, flow.signed_pdf, {"Content-Type": "application/pdf"})

    # --- signing -----------------------------------------------------------------------
    def _sign(self, pdf: bytes, signer_name: str) -> bytes:
        """Seal the uploaded file the way e签宝 would: PAdES with its own CA and TSA."""
        from connectors import pades

        with self._identity_lock:
            if self._identity is None:
                folder = Path(tempfile.mkdtemp(prefix="tsign-sim-"))
                self._identity = pades.CompanyIdentity.load_or_create(
                    folder / "ca", "e签宝模拟签章中心", None)
            identity = self._identity
            with tempfile.TemporaryDirectory() as tmp:
                src, out = Path(tmp) / "in.pdf", Path(tmp) / "out.pdf"
                src.write_bytes(pdf)
                pades.sign_pdf(src, out, identity, signer_label=signer_name,
                               reason="e签宝 签署", location="e签宝")
                return out.read_bytes()

    @property
    def ca_identity(self):
        return self._identity


class CallbackSink(Simulator):
    """A webhook receiver for tests: records what it was sent and answers 200."""

    name = "callback-sink"

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Request] = []

    def handle(self, request: Request) -> Reply:
        with self.lock:
            self.received.append(request)
        return Reply(200, {"code": "200", "msg": "success"})

"""e签宝 v3 client against the simulator on loopback: signed requests, the full
create → complete → callback → fetch path, callback verification, exactly one flow per quote
under injected faults and lost answers, and permanent errors that are not retried."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from pydantic import SecretStr
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from connectors import pades
from connectors.base import PermanentError, TransientError
from connectors.esign import CallbackSignatureError, ESignature, SigningRequest, verify_callback
from connectors.esign_tsign import (
    TsignSigning,
    content_md5,
    path_and_parameters,
    request_signature,
    string_to_sign,
    verify_tsign_callback,
)
from tests.simulators.base import Faults
from tests.simulators.esign_sim import CallbackSink, TsignSimulator

APP_ID = "7438000001"
SECRET = "sim-app-secret-0123456789"
UTC = dt.timezone.utc


def make_pdf(path: Path, code: str) -> Path:
    c = canvas.Canvas(str(path), pagesize=A4)
    c.drawString(72, 760, f"Quote {code}")
    c.showPage()
    c.save()
    return path


@pytest.fixture()
def sim():
    simulator = TsignSimulator(APP_ID, SECRET).start()
    yield simulator
    simulator.stop()


@pytest.fixture()
def sink():
    receiver = CallbackSink().start()
    yield receiver
    receiver.stop()


def client(sim, secret=SECRET, **kw) -> TsignSigning:
    options = dict(timeout=2.0, attempts=4, backoff_initial=0.01, backoff_max=0.05,
                   poll_interval=0.01)
    options.update(kw)
    return TsignSigning(sim.url, APP_ID, SecretStr(secret), **options)


def request(tmp_path: Path, code: str, notify_url: str | None = None, **over) -> SigningRequest:
    pdf = make_pdf(tmp_path / f"{code}.pdf", code)
    values = dict(quote_code=code, pdf_path=pdf, title="华东精工报价单", signer_name="王经理",
                  signer_company="苏州某某机械有限公司", signer_phone="13800000000",
                  signer_email=None, expires_at=dt.datetime.now(UTC) + dt.timedelta(days=3),
                  idempotency_key=f"signing:{code}", notify_url=notify_url)
    values.update(over)
    return SigningRequest(**values)


# --- request signing as documented ----------------------------------------------------------

def test_signing_string_matches_documented_vectors():
    assert content_md5(b"{}") == "mZFLkyvTelC5g8XnyQrpOw=="
    assert content_md5('{"name":"张某人","age":18}'.encode()) == "jsmDBtOHeXhiozlzXsFtlg=="
    sts = string_to_sign("POST", "*/*", "uxydqKBMBy6x1siClKEQ6Q==",
                         "application/json; charset=UTF-8", "", "/v3/sign-flow/create-by-file")
    assert sts == ("POST\n*/*\nuxydqKBMBy6x1siClKEQ6Q==\napplication/json; charset=UTF-8\n\n"
                   "/v3/sign-flow/create-by-file")
    assert request_signature("dummysecret", sts) == "6dYuzEqXUobDAEL97Ja5pvH3QWHpn4R5iJSWEvIsCo8="
    get = string_to_sign("GET", "*/*", "", "application/json; charset=UTF-8", "",
                         "/v3/sign-flow/abc123/detail")
    assert request_signature("dummysecret", get) == "xG4jw3vs+xusJ0x3XkIJBwxpTHHzEHqdMGOJ45Ry8Fk="
    assert path_and_parameters("/v3/organizations/identity-info",
                               {"orgName": "某某科技有限公司", "orgIDCardType": ""}) == \
        "/v3/organizations/identity-info?orgIDCardType&orgName=某某科技有限公司"


# --- the whole path -------------------------------------------------------------------------

def test_create_complete_callback_fetch(sim, sink, tmp_path):
    esign = client(sim)
    assert isinstance(esign, ESignature) and esign.provider == "esign"
    notify = f"{sink.url}/webhooks/esign/esign?tenant=hz&b=2"
    handle = esign.create_signing(request(tmp_path, "Q-0001", notify))
    assert handle.provider == "esign"
    assert handle.url.startswith(sim.url + "/h5/sign?flowId=" + handle.ref)
    assert sim.created_for("Q-0001") == 1
    flow = sim.flow_for("Q-0001")
    assert flow.flow_id == handle.ref
    assert flow.title == "华东精工报价单（Q-0001）"
    config = flow.body["signFlowConfig"]
    assert config["autoFinish"] is True and config["notifyUrl"] == notify
    signer = flow.body["signers"][0]
    assert signer["signerType"] == 1
    assert signer["orgSignerInfo"]["orgName"] == "苏州某某机械有限公司"
    assert signer["orgSignerInfo"]["transactorInfo"]["psnAccount"] == "13800000000"
    assert signer["signFields"][0]["normalSignFieldConfig"]["signFieldPosition"]["positionPage"] == "1"
    assert sim.auth_failures == {}

    with pytest.raises(TransientError) as not_yet:      # still being signed
        esign.fetch_signed(handle.ref, tmp_path / "signed")
    assert not_yet.value.code == "not_finished"

    assert sim.complete(handle.ref) == [200, 200]
    assert len(sink.received) == 2
    now = dt.datetime.now(UTC)
    events = [verify_tsign_callback(r.headers, r.raw_query, r.body, SECRET, now=now,
                                    app_id=APP_ID) for r in sink.received]
    assert [e["action"] for e in events] == ["SIGN_MISSON_COMPLETE", "SIGN_FLOW_COMPLETE"]
    done = events[-1]
    assert done["signFlowId"] == handle.ref and done["signFlowStatus"] == "2"
    # the same through the provider-neutral entry point
    last = sink.received[-1]
    assert verify_callback("esign", last.headers, last.raw_query, last.body, SECRET,
                           now=now)["signFlowId"] == handle.ref

    dest = tmp_path / "signed"
    signed = esign.fetch_signed(done["signFlowId"], dest)
    assert signed.pdf_path == dest / f"{handle.ref}-signed.pdf"
    data = signed.pdf_path.read_bytes()
    assert data.startswith(b"%PDF-") and hashlib.sha256(data).hexdigest() == signed.sha256
    ev = json.loads((dest / f"{handle.ref}-evidence.json").read_text(encoding="utf-8"))
    assert ev == signed.evidence
    assert ev["provider"] == "esign" and ev["provider_ref"] == handle.ref
    assert ev["quote_code"] == "Q-0001"
    assert ev["signer_company"] == "苏州某某机械有限公司" and ev["signer_name"] == "王经理"
    assert ev["signed_at"].endswith("Z") and ev["signed_sha256"] == signed.sha256
    assert ev["timestamp"]["present"] and ev["embedded_signatures"][0]["intact"]
    # the file e签宝 sealed validates against e签宝's (here: the simulator's) root
    assert pades.validate_signed_pdf(signed.pdf_path, sim.ca_identity).ok

    downloads = sim.calls["POST /v3/sign-flow/" + handle.ref + "/file-download-url"]
    again = esign.fetch_signed(handle.ref, dest)
    assert again.sha256 == signed.sha256
    assert sim.calls["POST /v3/sign-flow/" + handle.ref + "/file-download-url"] == downloads


def test_rejected_flow_is_permanent(sim, tmp_path):
    esign = client(sim)
    handle = esign.create_signing(request(tmp_path, "Q-0002"))
    sim.complete(handle.ref, status=7, deliver=False)
    with pytest.raises(PermanentError) as err:
        esign.fetch_signed(handle.ref, tmp_path / "signed")
    assert err.value.code == "flow_status_7"


# --- callbacks ------------------------------------------------------------------------------

def _callback(sim, notify_url: str, *, age_seconds: float = 0):
    body = json.dumps({"action": "SIGN_FLOW_COMPLETE", "signFlowId": "f1",
                       "signFlowStatus": "2"}, separators=(",", ":")).encode()
    ts = int((dt.datetime.now(UTC).timestamp() - age_seconds) * 1000)
    return sim.callback_headers(notify_url, body, ts), body


def test_forged_stale_and_incomplete_callbacks_are_refused(sim):
    now = dt.datetime.now(UTC)
    headers, body = _callback(sim, "https://hub.example.com/webhooks/esign/esign?x=1")
    assert verify_tsign_callback(headers, "x=1", body, SECRET, now=now)["signFlowId"] == "f1"
    assert verify_tsign_callback(headers, "x=1", body, SECRET)["signFlowId"] == "f1"  # now=utcnow

    def reason(h, q="x=1", b=body, secret=SECRET, **kw):
        with pytest.raises(CallbackSignatureError) as err:
            verify_tsign_callback(h, q, b, secret, now=now, **kw)
        return err.value.reason_code

    forged = dict(headers, **{"X-Tsign-Open-SIGNATURE": "0" * 64})
    assert reason(forged) == "bad_signature"
    assert reason(headers, b=body.replace(b'"2"', b'"7"')) == "bad_signature"   # body changed
    assert reason(headers, q="x=2") == "bad_signature"                          # query changed
    assert reason(headers, secret="other-secret") == "bad_signature"
    assert reason({k: v for k, v in headers.items() if k != "X-Tsign-Open-SIGNATURE"}) == \
        "missing_signature"
    assert reason({k: v for k, v in headers.items() if k != "X-Tsign-Open-TIMESTAMP"}) == \
        "missing_timestamp"
    assert reason(dict(headers, **{"X-Tsign-Open-TIMESTAMP": "yesterday"})) == "bad_timestamp"
    assert reason(headers, app_id="someone-else") == "app_id_mismatch"

    stale_headers, stale_body = _callback(sim, "https://hub.example.com/cb?x=1",
                                          age_seconds=301)
    assert reason(stale_headers, b=stale_body) == "stale_timestamp"
    assert verify_tsign_callback(stale_headers, "x=1", stale_body, SECRET, now=now,
                                 window_seconds=900)["action"] == "SIGN_FLOW_COMPLETE"
    future_headers, future_body = _callback(sim, "https://hub.example.com/cb?x=1",
                                            age_seconds=-400)
    assert reason(future_headers, b=future_body) == "stale_timestamp"
    # signed, but nested past the JSON parser's depth: refused as a bad body, not a 500
    deep = b"[" * 100_000 + b"]" * 100_000
    deep_headers = sim.callback_headers("https://hub.example.com/cb?x=1", deep)
    assert reason(deep_headers, b=deep) == "bad_body"


# --- exactly once ---------------------------------------------------------------------------

def test_faults_do_not_duplicate_flows(tmp_path):
    faults = Faults(rate=0.2, hang_seconds=1.0, seed=11)
    with TsignSimulator(APP_ID, SECRET, faults=faults) as sim:
        esign = client(sim, timeout=0.4, attempts=8)
        codes = [f"Q-F{n:03d}" for n in range(10)]
        handles = [esign.create_signing(request(tmp_path, code)) for code in codes]
        assert sim.injected["5xx"] > 0 and sim.injected["hang"] > 0
        assert all(sim.created_for(code) == 1 for code in codes)
        assert sim.flows_created == len(codes)
        assert len({h.ref for h in handles}) == len(codes)


def test_lost_create_answer_and_rerun_reuse_the_flow(sim, tmp_path):
    esign = client(sim)
    sim.lose_create_answers = 1          # the flow is created, the answer is a 503
    first = esign.create_signing(request(tmp_path, "Q-LOST"))
    assert sim.created_for("Q-LOST") == 1
    assert sim.calls["POST /v3/sign-flow/create-by-file"] == 1
    assert first.ref == sim.flow_for("Q-LOST").flow_id
    # a rerun after a crash before the effect was recorded: no second flow either
    second = esign.create_signing(request(tmp_path, "Q-LOST"))
    assert second.ref == first.ref and sim.created_for("Q-LOST") == 1


def test_new_flow_after_the_previous_one_expired(sim, tmp_path):
    esign = client(sim)
    first = esign.create_signing(request(tmp_path, "Q-AGAIN"))
    sim.complete(first.ref, status=5, deliver=False)    # expired unsigned
    second = esign.create_signing(request(tmp_path, "Q-AGAIN"))
    assert second.ref != first.ref and sim.created_for("Q-AGAIN") == 2


# --- permanent errors -----------------------------------------------------------------------

def test_wrong_secret_is_permanent_and_not_retried(sim, tmp_path):
    esign = client(sim, secret="not-the-secret", attempts=5)
    with pytest.raises(PermanentError) as err:
        esign.create_signing(request(tmp_path, "Q-AUTH"))
    assert err.value.code == "401" and "INVALID_SIGNATURE" in str(err.value)
    assert sum(sim.calls.values()) == 1
    assert sim.auth_failures == {"INVALID_SIGNATURE": 1}
    assert sim.flows_created == 0
    assert "not-the-secret" not in repr(esign) and "not-the-secret" not in str(err.value)


def test_business_errors_permanent_unless_listed_transient(sim, tmp_path):
    esign = client(sim)
    sim.fail_next(1435002, "参数错误: signFlowTitle不能为空")
    with pytest.raises(PermanentError) as err:
        esign.create_signing(request(tmp_path, "Q-BIZ"))
    assert err.value.code == "1435002"
    assert sum(sim.calls.values()) == 1

    busy = client(sim, transient_codes={1499999})
    sim.fail_next(1499999, "系统繁忙")
    handle = busy.create_signing(request(tmp_path, "Q-BUSY"))
    assert handle.ref and sim.created_for("Q-BUSY") == 1


def test_missing_contact_or_configuration_fails_before_any_call(sim, tmp_path):
    unconfigured = TsignSigning(sim.url, "", SecretStr(""))
    with pytest.raises(PermanentError) as err:
        unconfigured.create_signing(request(tmp_path, "Q-NOCONF"))
    assert err.value.code == "not_configured"
    esign = client(sim)
    with pytest.raises(PermanentError) as err:
        esign.create_signing(request(tmp_path, "Q-NOPHONE", signer_phone=None, signer_email=None))
    assert err.value.code == "no_signer_account"
    assert sum(sim.calls.values()) == 0


def test_file_conversion_is_waited_for(sim, tmp_path):
    sim.file_ready_after_polls = 3
    esign = client(sim)
    handle = esign.create_signing(request(tmp_path, "Q-POLL"))
    assert handle.ref and sim.created_for("Q-POLL") == 1

"""Audit round 4 (H1): our signing link forwards to a signing link e签宝 issues when the
customer opens it — e签宝's login-free links last about 30 minutes, while the customer opens
the quote mail hours or days later."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import select

from api.app import create_app
from models import Customer, IntentOrder, Quote, SigningToken, utcnow
from models.db import session_scope
from models.signing import token_hash
from tests.connectors.test_esign_tsign import APP_ID, SECRET, client, request
from tests.connectors.test_esign_tsign import sim  # noqa: F401 - fixture
from tests.support import free_port

TOKEN = "tok-" + "a" * 39
STALE = "https://smlh5.esign.cn/mesign/guide?context=expired-long-ago"


def esign_quote(settings, sim, tmp_path) -> str:
    """An order signed at e签宝: its flow, the link stored when it started, our token."""
    with session_scope(settings.db_url) as s:
        cust = s.exec(select(Customer)).first()
        legal_name = cust.legal_name
        s.add(IntentOrder(id="IO-ES1", event_id="e-es1", sender_id="portal",
                          customer_name=legal_name, customer_id=cust.id, status="quoted",
                          contact_name="顾晓峰", contact_phone="139 1234 5678"))
        s.flush()
        quote = Quote(code="Q2611-ESIGN-1", order_id="IO-ES1", customer_id=cust.id,
                      total_amount=Decimal("100.00"), tax_amount=Decimal("11.50"),
                      valid_until=dt.date(2099, 1, 1), status="sent")
        s.add(quote)
        s.flush()
        s.add(SigningToken(token_hash=token_hash(TOKEN), quote_id=quote.id,
                           expires_at=utcnow() + dt.timedelta(days=10)))
    handle = client(sim).create_signing(request(tmp_path, "Q2611-ESIGN-1",
                                                signer_phone="13912345678",
                                                signer_company=legal_name))
    with session_scope(settings.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.code == "Q2611-ESIGN-1")).one()
        quote.signing_provider, quote.signing_ref, quote.signing_url = "esign", handle.ref, STALE
        s.add(quote)
    return handle.ref


def esign_settings(seeded, url):
    return seeded.model_copy(update={"esign_url": url, "esign_app_id": APP_ID,
                                     "esign_app_secret": SecretStr(SECRET)})


def test_opening_the_link_days_later_forwards_to_a_link_esign_issues_now(seeded, sim,
                                                                          tmp_path):
    settings = esign_settings(seeded, sim.url)
    flow_id = esign_quote(settings, sim, tmp_path)
    with TestClient(create_app(settings, launcher=None)) as c:
        r = c.get(f"/sign/{TOKEN}", follow_redirects=False)
    assert r.status_code == 302
    assert r.headers["location"].startswith(f"{sim.url}/h5/sign?flowId={flow_id}")


def test_esign_not_answering_forwards_to_the_stored_link(seeded, sim, tmp_path):
    esign_quote(esign_settings(seeded, sim.url), sim, tmp_path)
    settings = esign_settings(seeded, f"http://127.0.0.1:{free_port()}")  # nobody listens
    with TestClient(create_app(settings, launcher=None)) as c:
        r = c.get(f"/sign/{TOKEN}", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == STALE


def builtin_quote(seeded, pdf_path=None) -> None:
    """A quote to sign on our own page, its token TOKEN."""
    from models import IntentOrderLine

    with session_scope(seeded.db_url) as s:
        cust = s.exec(select(Customer)).first()
        s.add(IntentOrder(id="IO-BI1", event_id="e-bi1", sender_id="portal",
                          customer_name=cust.legal_name, customer_id=cust.id, status="quoted",
                          contact_name="顾晓峰"))
        s.flush()
        s.add(IntentOrderLine(order_id="IO-BI1", line_no=1, sku="MON-M8", model="M8",
                              name="多参数监护仪", quantity=2, unit="台",
                              unit_price=Decimal("50.00"), tax_rate=Decimal("0.13")))
        quote = Quote(code="Q2611-BUILT-1", order_id="IO-BI1", customer_id=cust.id,
                      total_amount=Decimal("100.00"), tax_amount=Decimal("11.50"),
                      valid_until=dt.date(2099, 1, 1), status="sent",
                      signing_provider="builtin", signing_ref="Q2611-BUILT-1",
                      pdf_path=pdf_path)
        s.add(quote)
        s.flush()
        s.add(SigningToken(token_hash=token_hash(TOKEN), quote_id=quote.id,
                           expires_at=utcnow() + dt.timedelta(days=10)))


def test_a_refused_submit_keeps_the_name_the_signer_typed(seeded):
    """The order's contact is 顾晓峰 but 李建国 signs: a refused drawing must not put the
    contact's name back into the field (he would sign under the wrong name)."""
    builtin_quote(seeded)
    with TestClient(create_app(seeded, launcher=None)) as c:
        assert 'value="顾晓峰"' in c.get(f"/sign/{TOKEN}").text
        r = c.post(f"/sign/{TOKEN}", data={"signer_name": "李建国", "consent": "yes",
                                           "signature": "data:image/png;base64,@@"})
    assert r.status_code == 422 and "签名图片无法解析" in r.text
    assert 'value="李建国"' in r.text and 'value="顾晓峰"' not in r.text


@pytest.mark.parametrize("pdf_path", [None, "/nonexistent/quotes/Q2611-BUILT-1.pdf"])
def test_the_quote_pdf_link_without_its_file_is_a_page_not_a_500(seeded, pdf_path):
    """The customer taps 查看完整报价单（PDF） while the file is not there (not rendered yet,
    or the quotes folder was not restored with the database)."""
    builtin_quote(seeded, pdf_path)
    with TestClient(create_app(seeded, launcher=None), raise_server_exceptions=False) as c:
        r = c.get(f"/sign/{TOKEN}/pdf")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    assert "销售顾问" in r.text

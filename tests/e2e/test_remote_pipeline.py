"""The whole pipeline on the real remote clients, against provider simulators on loopback:
天眼查 (registry), a REST ERP (inventory + finance), e签宝 v3 (signing) and an SMTP server with
STARTTLS + AUTH. The simulators count every effect, so duplicates would show."""
from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from api.app import create_app
from connectors.registry import RegistryRecord
from connectors.settings import Settings
from deployments.seed import PRODUCTS, seed_sample_data
from flows.dispatch import dispatch_pending, requeue_stalled
from flows.hub import build_hub, use_hub
from models import Effect, IntentOrder, Quote
from models.db import session_scope
from tests.simulators.base import Faults
from tests.simulators.erp_sim import ErpSimulator
from tests.simulators.esign_sim import TsignSimulator
from tests.simulators.registry_sim import TianyanchaSimulator
from tests.simulators.smtp_sim import TEST_PASSWORD, TEST_USER, SmtpFaults, SmtpSimulator, make_test_pki
from tests.support import SECRET, SENDER, InlineLauncher, LiveServer, free_port, signed_headers

pytestmark = pytest.mark.usefixtures("prefect_harness")

REGISTRY = Path(__file__).resolve().parents[2] / "deployments" / "sample_data" / "registry.jsonl"
NAMES = ["江苏康达医疗设备有限公司", "康达医疗", "仁和医疗", "广州华南医药贸易有限公司", "申康医疗",
         "安徽济民医疗器械有限责任公司", "重庆渝康医疗器械有限公司"]


@pytest.fixture
def world(request, db_url, tmp_path):
    """Simulators (with the fault rate the test asks for), settings on remote clients,
    and the API live on loopback so e签宝 can call it back."""
    rate = getattr(request, "param", 0.0)
    faults = lambda seed: Faults(rate=rate, hang_seconds=1.5 if rate else 0, seed=seed)  # noqa: E731
    pki = make_test_pki(tmp_path / "smtp-pki")
    smtp = SmtpSimulator(pki, security="starttls", faults=SmtpFaults(rate_451=rate, seed=3))
    erp = ErpSimulator("erp-token", stock={sku: stock for sku, *_, stock in PRODUCTS},
                       faults=faults(11))
    tyc = TianyanchaSimulator("tyc-token", faults=faults(13))
    for line in REGISTRY.read_text(encoding="utf-8").splitlines():
        tyc.add(RegistryRecord.from_dict(json.loads(line)))
    tsign = TsignSimulator("app-1", "tsign-secret", faults=faults(17))
    port = free_port()
    with smtp, erp, tyc, tsign:
        settings = Settings(
            _env_file=None, data_dir=tmp_path / "data", database_url=db_url,
            public_base_url=f"http://127.0.0.1:{port}", webhook_senders={SENDER: SECRET},
            registry_backend="tianyancha", tianyancha_url=tyc.url, tianyancha_token="tyc-token",
            inventory_backend="rest", erp_url=erp.url, erp_token="erp-token",
            finance_backend="rest", finance_url=erp.url, finance_token="erp-token",
            esign_backend="esign", esign_url=tsign.url, esign_app_id="app-1",
            esign_app_secret="tsign-secret",
            email_backend="smtp", smtp_host="127.0.0.1", smtp_port=smtp.port,
            smtp_security="starttls", smtp_username=TEST_USER, smtp_password=TEST_PASSWORD,
            smtp_ca_file=pki.ca_file, connector_timeout_seconds=1.0, connector_attempts=5)
        seed_sample_data(settings.db_url)
        hub = build_hub(settings)
        use_hub(hub)
        with LiveServer(create_app(settings, launcher=None), port) as live:
            yield {"settings": settings, "smtp": smtp, "erp": erp, "tyc": tyc, "tsign": tsign,
                   "api": live.url}
        use_hub(None)


def deliver(api: str, payload: dict) -> httpx.Response:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return httpx.post(f"{api}/webhooks/intent-orders", content=body,
                      headers=signed_headers(body), timeout=30)


def drive_until_settled(settings, rounds: int = 8) -> None:
    """What the dispatcher and the sweeper do in production, run here in-process."""
    import datetime as dt

    launcher = InlineLauncher()
    for _ in range(rounds):
        dispatch_pending(settings.db_url, launcher, batch_size=50)
        if not requeue_stalled(settings.db_url, launcher, dt.timedelta(seconds=0), 10, 50):
            break


def orders_payloads(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [{"event_id": f"e2e-{seed}-{i}",
             "customer": {"name": rng.choice(NAMES), "contact_name": "采购部",
                          "contact_phone": "13800138000",
                          "contact_email": f"buyer{i}@customer.example.com"},
             "rep_id": "rep-zhangwei",
             "lines": [{"sku": rng.choice(["MON-M8", "PUMP-SP3", "CONS-ECG10"]),
                        "quantity": rng.randint(1, 5)}]} for i in range(n)]


def quote_mails(smtp) -> list:
    return [m for m in smtp.messages if str(m["Subject"]).startswith("报价单")]


def test_200_deliveries_of_100_orders_make_each_effect_once(world):
    payloads = orders_payloads(100, seed=1)
    deliveries = payloads + payloads
    random.Random(2).shuffle(deliveries)
    with ThreadPoolExecutor(max_workers=8) as pool:  # some deliveries race each other
        answers = list(pool.map(lambda p: deliver(world["api"], p), deliveries))
    assert {r.status_code for r in answers} == {202}
    by_event: dict[str, set] = {}
    for p, r in zip(deliveries, answers):
        by_event.setdefault(p["event_id"], set()).add(r.json()["order_id"])
    assert all(len(ids) == 1 for ids in by_event.values())  # both deliveries: one order

    settings = world["settings"]
    drive_until_settled(settings)
    with session_scope(settings.db_url) as s:
        orders = s.exec(select(IntentOrder)).all()
        quotes = s.exec(select(Quote)).all()
    assert len(orders) == 100 and {o.status for o in orders} == {"quoted"}
    assert len(quotes) == 100
    smtp, tsign = world["smtp"], world["tsign"]
    assert len(quote_mails(smtp)) == 100
    assert smtp.duplicates() == {}
    assert tsign.flows_created == 100
    assert all(tsign.created_for(q.code) == 1 for q in quotes)

    # ten customers sign at e签宝; it calls back (once more for good measure)
    signed = quotes[:10]
    for q in signed:
        flow = tsign.flow_for(q.code)
        assert 200 in tsign.complete(flow.flow_id)
        tsign.complete(flow.flow_id)  # a duplicate notification
    drive_until_settled(settings)
    erp = world["erp"]
    assert sorted(erp.effects) == sorted(f"INV-{q.code}" for q in signed)
    assert all(n == 1 for n in erp.effects.values())
    with session_scope(settings.db_url) as s:
        statuses = {o.id: o.status for o in s.exec(select(IntentOrder))}
        dup_effects = [e for e in s.exec(select(Effect)) if e.status != "done"]
    assert [statuses[q.order_id] for q in signed] == ["invoicing"] * 10
    assert dup_effects == []


@pytest.mark.parametrize("world", [0.2], indirect=True)
def test_every_order_completes_when_simulators_fail_a_fifth_of_calls(world):
    payloads = orders_payloads(40, seed=5)
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda p: deliver(world["api"], p), payloads))
    assert {r.status_code for r in answers} == {202}
    settings = world["settings"]
    drive_until_settled(settings)
    with session_scope(settings.db_url) as s:
        orders = s.exec(select(IntentOrder)).all()
        quotes = s.exec(select(Quote)).all()
    assert {o.status for o in orders} == {"quoted"}, {o.id: o.error for o in orders}
    smtp, tsign, erp = world["smtp"], world["tsign"], world["erp"]
    assert sum(tsign.injected.values()) + sum(erp.injected.values()) > 0  # faults did happen
    assert len(quote_mails(smtp)) == 40 and smtp.duplicates() == {}
    assert all(tsign.created_for(q.code) == 1 for q in quotes)
    for q in quotes[:5]:
        tsign.complete(tsign.flow_for(q.code).flow_id)
    drive_until_settled(settings)
    assert sorted(erp.effects) == sorted(f"INV-{q.code}" for q in quotes[:5])
    assert all(n == 1 for n in erp.effects.values())

"""Credit registry: the embedded dataset and the 天眼查 client against its simulator."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os

import pytest
from pydantic import SecretStr

from connectors.base import PermanentError, TransientError
from connectors.registry import (
    BASEINFO_PATH,
    CreditRegistry,
    EmbeddedRegistry,
    RegistryRecord,
    TianyanchaRegistry,
    established_millis,
    record_from_tianyancha,
)
from tests.simulators.base import Faults
from tests.simulators.registry_sim import TianyanchaSimulator, tianyancha_result

TOKEN = "tyc-7b1e2c4d-test-token"
CALL = f"GET {BASEINFO_PATH}"

SUZHOU = RegistryRecord(
    legal_name="苏州恒润精密机械有限公司",
    uscc="91320594MA1W8XYZ3K",
    status="存续",
    registered_capital="5000万人民币",
    legal_representative="王建国",
    established_on=dt.date(2008, 5, 20),
    former_names=("苏州恒润机械制造有限公司", "吴县恒润五金厂"),
    province="江苏",
    city="苏州市",
)
WUXI = RegistryRecord(
    legal_name="无锡东晟自动化设备（集团）有限公司",
    uscc="91320211MA20ABCD1X",
    status="在业",
    registered_capital="1200万人民币",
    legal_representative="李梅",
    established_on=dt.date(2015, 1, 1),
    province="江苏",
    city="无锡市",
)
CLOSED = RegistryRecord(
    legal_name="宁波甬兴贸易有限公司",
    uscc=None,
    status="注销",
    registered_capital=None,
    legal_representative=None,
    established_on=None,
)


def write_dataset(path, records, extra_lines=()):
    lines = [json.dumps(r.to_dict(), ensure_ascii=False) for r in records]
    path.write_text("\n".join([*lines, *extra_lines]) + "\n", encoding="utf-8")


# --- embedded ------------------------------------------------------------------------------

@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "registry.jsonl"
    write_dataset(path, [SUZHOU, WUXI, CLOSED], extra_lines=[""])
    return path


def test_embedded_finds_by_legal_name_uscc_and_former_name(dataset):
    registry = EmbeddedRegistry(dataset)
    assert isinstance(registry, CreditRegistry)
    assert registry.lookup("苏州恒润精密机械有限公司") == SUZHOU
    assert registry.lookup("91320594ma1w8xyz3k") == SUZHOU  # USCC case does not matter
    assert registry.lookup("吴县恒润五金厂") == SUZHOU
    assert registry.lookup(" 宁波甬兴贸易有限公司 ").status == "注销"
    assert registry.lookup("不存在的公司") is None
    assert registry.lookup("") is None


def test_embedded_round_trips_every_field(dataset):
    found = EmbeddedRegistry(dataset).lookup("91320211MA20ABCD1X")
    assert found == WUXI
    assert found.established_on == dt.date(2015, 1, 1)
    assert found.legal_name == "无锡东晟自动化设备（集团）有限公司"


def test_embedded_ignores_full_width_and_half_width_brackets(dataset):
    registry = EmbeddedRegistry(dataset)
    assert registry.lookup("无锡东晟自动化设备(集团)有限公司") == WUXI
    assert registry.lookup("无锡东晟自动化设备 （集团） 有限公司") == WUXI


def test_embedded_current_name_wins_over_anothers_former_name(tmp_path):
    renamed = RegistryRecord("常州新锐电气有限公司", "91320400MA1AAAAA1A", "存续", None, None,
                             None, former_names=("常州锐达电气有限公司",))
    current = RegistryRecord("常州锐达电气有限公司", "91320400MA1BBBBB2B", "存续", None, None, None)
    path = tmp_path / "r.jsonl"
    write_dataset(path, [renamed, current])
    assert EmbeddedRegistry(path).lookup("常州锐达电气有限公司") == current


def test_embedded_reloads_when_the_file_changes(dataset):
    registry = EmbeddedRegistry(dataset)
    assert registry.lookup(SUZHOU.legal_name).status == "存续"
    before = dataset.stat()
    revoked = dataclasses.replace(SUZHOU, status="吊销")
    write_dataset(dataset, [revoked, WUXI])
    os.utime(dataset, ns=(before.st_atime_ns, before.st_mtime_ns + 2_000_000_000))
    assert registry.lookup(SUZHOU.legal_name).status == "吊销"
    assert registry.lookup(CLOSED.legal_name) is None
    assert len(registry.records()) == 2


def test_embedded_keeps_last_good_index_when_a_reload_fails(dataset):
    registry = EmbeddedRegistry(dataset)
    assert registry.lookup(WUXI.legal_name) == WUXI
    before = dataset.stat()
    dataset.write_text('{"legal_name": "半行', encoding="utf-8")  # caught mid-write
    os.utime(dataset, ns=(before.st_atime_ns, before.st_mtime_ns + 2_000_000_000))
    assert registry.lookup(WUXI.legal_name) == WUXI


def test_embedded_missing_or_broken_dataset_is_permanent(tmp_path):
    with pytest.raises(PermanentError):
        EmbeddedRegistry(tmp_path / "absent.jsonl").lookup("x")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"uscc": "no name"}\n', encoding="utf-8")
    with pytest.raises(PermanentError, match="line 1"):
        EmbeddedRegistry(broken).lookup("x")


# --- 天眼查 --------------------------------------------------------------------------------

@pytest.fixture
def sim():
    simulator = TianyanchaSimulator(TOKEN)
    simulator.add(SUZHOU)
    simulator.add(WUXI)
    with simulator:
        yield simulator


def client(sim, token=TOKEN, attempts=4, timeout=2.0):
    return TianyanchaRegistry(sim.url, SecretStr(token), timeout, attempts)


def test_tianyancha_lookup_by_name_uscc_and_former_name(sim):
    with client(sim) as registry:
        assert isinstance(registry, CreditRegistry)
        assert registry.lookup("苏州恒润精密机械有限公司") == SUZHOU
        assert registry.lookup("91320594MA1W8XYZ3K") == SUZHOU
        assert registry.lookup("苏州恒润机械制造有限公司") == SUZHOU
        assert registry.lookup(WUXI.legal_name) == WUXI
    # the keyword arrived intact (URL-encoded Chinese, full-width brackets)
    assert sim.lookups[WUXI.legal_name] == 1
    assert sim.lookups["苏州恒润机械制造有限公司"] == 1


def test_tianyancha_reads_history_names_string_and_beijing_dates(sim):
    raw = {
        "name": "杭州云栖智造科技有限公司", "creditCode": "91330106MA2CXXXX9Q",
        "regStatus": "存续（在营、开业、在册）", "regCapital": "300万人民币",
        "legalPersonName": "陈晓", "base": "浙江", "city": "杭州市",
        # midnight 1 March 2016 in Beijing is still 29 February in UTC
        "estiblishTime": established_millis(dt.date(2016, 3, 1)),
        "historyNames": "杭州云栖科技有限公司;杭州云栖智能有限公司;",
    }
    sim.add(raw)
    with client(sim) as registry:
        found = registry.lookup("杭州云栖智能有限公司")
    assert found == RegistryRecord(
        legal_name="杭州云栖智造科技有限公司", uscc="91330106MA2CXXXX9Q",
        status="存续（在营、开业、在册）", registered_capital="300万人民币",
        legal_representative="陈晓", established_on=dt.date(2016, 3, 1),
        former_names=("杭州云栖科技有限公司", "杭州云栖智能有限公司"),
        province="浙江", city="杭州市")


def test_tianyancha_no_data_is_none(sim):
    with client(sim) as registry:
        assert registry.lookup("查无此公司有限公司") is None
        assert registry.lookup("  ") is None  # blank: not even asked (every call is billed)
    assert sim.calls[CALL] == 1


def test_tianyancha_bad_token_is_permanent_and_not_retried(sim):
    with client(sim, token="wrong-token", attempts=5) as registry:
        with pytest.raises(PermanentError) as info:
            registry.lookup(SUZHOU.legal_name)
    assert info.value.code == "300009"
    assert sim.calls[CALL] == 1


@pytest.mark.parametrize("code", [300002, 300006, 300007, 300008])
def test_tianyancha_account_balance_and_parameter_codes_are_permanent(sim, code):
    sim.fail_next(code)
    with client(sim, attempts=5) as registry, pytest.raises(PermanentError):
        registry.lookup(SUZHOU.legal_name)
    assert sim.calls[CALL] == 1


def test_tianyancha_rate_limit_and_request_failed_are_retried(sim):
    sim.fail_next(300004, 300001)
    with client(sim) as registry:
        assert registry.lookup(SUZHOU.legal_name) == SUZHOU
    assert sim.calls[CALL] == 3


def test_tianyancha_gives_up_after_the_configured_attempts(sim):
    sim.fail_next(*[300004] * 10)
    with client(sim, attempts=3) as registry, pytest.raises(TransientError):
        registry.lookup(SUZHOU.legal_name)
    assert sim.calls[CALL] == 3


def test_tianyancha_sees_registry_changes(sim):
    with client(sim) as registry:
        assert registry.lookup(SUZHOU.uscc).status == "存续"
        sim.change(SUZHOU.uscc, regStatus="吊销", legalPersonName="赵强")
        changed = registry.lookup(SUZHOU.uscc)
    assert (changed.status, changed.legal_representative) == ("吊销", "赵强")
    assert sim.lookups[SUZHOU.uscc] == 2


def test_tianyancha_survives_injected_5xx_and_timeouts():
    faults = Faults(rate=0.2, hang_seconds=1.5, seed=3)
    with TianyanchaSimulator(TOKEN, faults=faults) as sim:
        sim.add(SUZHOU)
        sim.add(WUXI)
        with client(sim, attempts=6, timeout=0.5) as registry:
            for n in range(20):
                record = SUZHOU if n % 2 else WUXI
                assert registry.lookup(record.uscc) == record
        assert sim.injected["5xx"] > 0 and sim.injected["hang"] > 0
        # every fault was retried (a loaded machine may add a retry of its own: hence >=)
        assert sim.calls[CALL] >= 20 + sim.injected["5xx"] + sim.injected["hang"]


def test_simulator_payload_matches_the_documented_shape():
    result = tianyancha_result(SUZHOU)
    assert result["historyNames"] == "苏州恒润机械制造有限公司;吴县恒润五金厂;"
    assert isinstance(result["estiblishTime"], int)


def test_tianyancha_province_comes_from_the_credit_code_not_its_pinyin_base():
    """天眼查's `base` abbreviates the province in pinyin ("js"): the file keeps 江苏, read
    from the USCC's division code; "js" alone is never stored as a province."""
    raw = {"name": "南京某某医疗器械有限公司", "creditCode": "91320105MA1XXXXX0A", "base": "js"}
    assert record_from_tianyancha(raw).province == "江苏"
    assert record_from_tianyancha({**raw, "creditCode": None}).province is None
    assert record_from_tianyancha({**raw, "creditCode": None, "base": "江苏"}).province == "江苏"
    assert tianyancha_result(record_from_tianyancha(raw))["base"] == "js"  # the simulator too


def test_tianyancha_code_is_stored_as_the_files_compare_it_and_dashes_are_no_value():
    """A credit code sent in lower case, with spaces or full width is kept as the customer
    files keep codes (a lookup by code would otherwise miss the file); a "-" where a
    registry has no value is no value, never a legal representative or a capital."""
    raw = {"name": "南京某某医疗器械有限公司", "creditCode": " ９１320105ma1xxxxx0a ",
           "regStatus": "存续", "regCapital": "-", "legalPersonName": "－", "city": "—"}
    record = record_from_tianyancha(raw)
    assert record.uscc == "91320105MA1XXXXX0A"
    assert record.province == "江苏"
    assert (record.registered_capital, record.legal_representative, record.city) == (
        None, None, None)
    assert record_from_tianyancha({**raw, "creditCode": "-"}).uscc is None
    assert RegistryRecord.from_dict({"legal_name": "南京某某医疗器械有限公司",
                                     "uscc": "91320105-ma1xxxxx0a"}).uscc == "91320105MA1XXXXX0A"

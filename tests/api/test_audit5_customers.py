"""Audit round 5 (customer master data) at the API: what a rep types into the customer field."""
from __future__ import annotations

from tests.api.test_customer_api import auth, client  # noqa: F401


def test_the_suggest_field_takes_the_chinese_zero(client, seeded):  # noqa: F811
    """第七〇二研究所: 〇 is a Chinese numeral, not a stray symbol to refuse."""
    r = client.get("/customers/suggest", params={"q": "中船重工第七〇二研究所"},
                   headers=auth(seeded))
    assert r.status_code == 200, r.text
    assert r.json()["decision"] == "unknown"


def test_the_english_name_of_a_joint_venture_is_a_name(client, seeded):  # noqa: F811
    """Reps of foreign-invested customers type the English name from the business card,
    commas and all (…Co., Ltd.): it finds the file that carries it, however it is cased."""
    from models.customer_files import create_customer
    from models.db import session_scope

    with session_scope(seeded.db_url) as s:
        jv = create_customer(s, legal_name="三星电子（苏州）半导体有限公司", actor="test",
                             origin="imported",
                             short_names=("Samsung Electronics (Suzhou) Semiconductor Co., Ltd.",))
        s.flush()
        jv_id = jv.id
    r = client.get("/customers/suggest",
                   params={"q": "SAMSUNG ELECTRONICS (SUZHOU) SEMICONDUCTOR CO.,LTD."},
                   headers=auth(seeded))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"] == "auto" and body["candidates"][0]["customer_id"] == jv_id
    # what no company name has is still refused
    r = client.get("/customers/suggest", params={"q": "Samsung'; DROP TABLE customer; --"},
                   headers=auth(seeded))
    assert r.status_code == 422 and r.json()["error"]["details"][0]["problem"] == \
        "invalid_characters"

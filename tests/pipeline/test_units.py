"""Small pieces without a DAG run: month resolution, Connection -> URL, trigger serialization, alerts."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
from pathlib import Path
from types import SimpleNamespace

import pendulum
import pytest

from include.edefter.naming import Period
from include.pipeline.hook import base_url_of
from include.pipeline.months import MonthNotGiven, parse_month, resolve_month
from include.pipeline.notifiers import build_alert, webhook_url_of
from include.pipeline.triggers import ApprovedBeratsTrigger, BackupStatusTrigger


def _ctx(conf=None, params=None, start=None):  # type: ignore[no-untyped-def]
    return {"dag_run": SimpleNamespace(conf=conf or {}, dag_id="d", run_id="r"), "params": params or {},
            "data_interval_start": start}


def test_resolve_month_conf_wins_then_istanbul_data_interval() -> None:
    sep_start_utc = pendulum.datetime(2025, 8, 31, 21, 0, tz="UTC")  # 1 Sep 00:00 in Istanbul
    assert resolve_month(_ctx(start=sep_start_utc), automatic=True) == Period(2025, 9)
    assert resolve_month(_ctx(conf={"month": "2025-03"}, start=sep_start_utc), automatic=True) == Period(2025, 3)
    assert resolve_month(_ctx(params={"month": "202504"}), automatic=False) == Period(2025, 4)
    with pytest.raises(MonthNotGiven, match="ayı belirtin"):
        resolve_month(_ctx(start=sep_start_utc), automatic=False)
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_month("2025-13")


def _conn(**kw):  # type: ignore[no-untyped-def]
    base = dict(conn_id="c", conn_type="http", host="", port=None, schema="", login=None, password=None,
                extra_dejson={})
    base.update(kw)
    return SimpleNamespace(**base)


def test_connection_urls() -> None:
    assert base_url_of(_conn(host="127.0.0.1", port=8765)) == "http://127.0.0.1:8765"
    assert base_url_of(_conn(host="arsiv.example.com.tr", schema="https")) == "https://arsiv.example.com.tr"
    assert base_url_of(_conn(conn_type="https", host="a.example")) == "https://a.example"
    with pytest.raises(ValueError, match="no host"):
        base_url_of(_conn())
    assert webhook_url_of(_conn(extra_dejson={"url": "https://hooks.slack.com/services/X"})) == (
        "https://hooks.slack.com/services/X"
    )
    assert webhook_url_of(_conn(host="127.0.0.1", port=9000, schema="hooks/x")) == "http://127.0.0.1:9000/hooks/x"


def test_triggers_serialize_to_an_importable_classpath_and_roundtrip(tmp_path: Path) -> None:
    for trig in (
        ApprovedBeratsTrigger(str(tmp_path), "1234567801", None, "2025-01", 5.0, "2030-01-01T00:00:00+00:00"),
        BackupStatusTrigger("conn", "1234567801", "0001", "2025-01", 5.0, "2030-01-01T00:00:00+00:00"),
    ):
        path, kwargs = trig.serialize()
        module, _, name = path.rpartition(".")
        again = getattr(importlib.import_module(module), name)(**kwargs)
        assert again.serialize() == (path, kwargs)


def test_berat_trigger_times_out_reporting_what_is_missing(tmp_path: Path) -> None:
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    trig = ApprovedBeratsTrigger(str(tmp_path), "1234567801", None, "2025-01", 0.01, past)

    async def first_event():  # type: ignore[no-untyped-def]
        async for event in trig.run():
            return event.payload

    payload = asyncio.run(first_event())
    assert payload["status"] == "timeout" and "no files for 2025-01" in payload["missing_text"]


def test_alert_names_company_month_task_and_reason() -> None:
    ctx = _ctx(conf={"month": "2025-02"})
    ctx["ti"] = SimpleNamespace(task_id="upload", try_number=1)
    ctx["exception"] = RuntimeError("Yedeklenemedi: sebep {{ not a template }}")
    alert = build_alert(ctx, {"company": "Örnek A.Ş.", "taxpayer_id": "1234567801", "branch": "0002",
                              "automatic": True, "dag_id": "d"})
    assert alert.subject == "[e-Defter] Yedeklenemedi: Örnek A.Ş. / şube 0002, Şubat-2025 (Paketleme ve entegratöre yükleme)"
    payload = alert.payload()
    assert payload["month"] == "2025-02" and payload["month_label"] == "Şubat-2025" and payload["task_id"] == "upload" and payload["branch"] == "0002"
    assert "{{ not a template }}" in payload["reason"] and payload["text"].count("\n") >= 4
    assert "&lt;" not in alert.html() and "Neden / Reason" in alert.html()

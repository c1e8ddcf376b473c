"""The DAG file parses cleanly and yields exactly the DAGs the config describes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from include.pipeline.config import PROJECT_ROOT
from include.pipeline.dag_factory import TASK_IDS

DAG_FOLDER = PROJECT_ROOT / "dags"


def _bag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAG_FOLDER))


def test_default_config_yields_the_demo_dags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDEFTER_COMPANIES_FILE", raising=False)
    bag = _bag()
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == [
        "edefter_geri_yukleme",
        "edefter_geri_yukleme_tatbikati",
        "edefter_yedekleme_1234567801",
        "edefter_yedekleme_12345678901",
        "edefter_yedekleme_9876543210_0001",
        "edefter_yedekleme_9876543210_0002",
    ]
    for dag in bag.dags.values():
        if dag.dag_id.startswith("edefter_geri_yukleme"):
            continue
        assert set(dag.task_ids) == set(TASK_IDS)
        assert dag.catchup is False and dag.max_active_runs == 12
        assert "e-defter" in dag.tags and dag.doc_md and "English" in dag.doc_md
        assert dag.default_args["retry_exponential_backoff"] is True
        assert all(t.on_failure_callback for t in dag.tasks)  # task-level alerts
    auto = bag.dags["edefter_yedekleme_1234567801"]
    assert type(auto.timetable).__name__ == "CronDataIntervalTimetable"
    assert str(auto.timetable.timezone) == "Europe/Istanbul" and auto.timetable.expression == "0 0 1 * *"
    manual = bag.dags["edefter_yedekleme_12345678901"]
    assert type(manual.timetable).__name__ == "NullTimetable" and "elle" in manual.tags
    assert "month" in manual.params  # the trigger form's "Ay / Month" field (Gönder)
    # the task order of the contract
    order = ["wait_for_approved_berats", "verify", "upload", "wait_for_backup_confirmation", "record"]
    for up, down in zip(order, order[1:], strict=False):
        assert down in auto.get_task(up).downstream_task_ids


def test_test_config_yields_exactly_its_dags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = {
        "companies": [
            {"id": f"firma-{i:03d}", "taxpayer_id": f"{1000000000 + i}", "name": f"Firma {i}", "folder": f"/srv/{i}",
             "start_month": "2025-01", "integrator_conn_id": f"c{i}"}
            for i in range(25)
        ]
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    monkeypatch.setenv("EDEFTER_COMPANIES_FILE", str(path))
    bag = _bag()
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == sorted(
        [f"edefter_yedekleme_{1000000000 + i}" for i in range(25)]
        + ["edefter_geri_yukleme", "edefter_geri_yukleme_tatbikati"]
    )


@pytest.mark.parametrize(
    ("company", "needle"),
    [
        ({"taxpayer_id": "12"}, "company 'kotu-firma', field 'taxpayer_id'"),
        ({"integrator_conn_id": None}, "company 'kotu-firma', field 'integrator_conn_id'"),
        ({"start_month": "2025/01"}, "company 'kotu-firma', field 'start_month'"),
    ],
)
def test_config_error_is_an_import_error_naming_company_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, company: dict, needle: str
) -> None:
    entry = {"id": "kotu-firma", "taxpayer_id": "1234567801", "name": "Kötü", "folder": "/srv/x",
             "start_month": "2025-01", "integrator_conn_id": "c"}
    entry.update(company)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"companies": [entry]}), encoding="utf-8")
    monkeypatch.setenv("EDEFTER_COMPANIES_FILE", str(path))
    bag = _bag()
    assert bag.dag_ids == [] or not bag.dags
    (err,) = bag.import_errors.values()
    assert needle in err


def test_parsing_imports_no_heavy_libraries() -> None:
    """The DAG file is parsed every few seconds: the domain's lxml/isal/HTTP stack loads only in tasks."""
    import subprocess
    import sys

    code = (
        "import sys, airflow.sdk\n"
        "before = set(sys.modules)\n"
        "import include.pipeline.dag_factory as f\n"
        "assert len(list(f.build_dags())) == 4\n"
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "EDEFTER_COMPANIES_FILE": ""}).stdout
    for heavy in ("lxml", "zlib_ng", "requests", "cryptography", "signxml"):
        assert f"'{heavy}'" not in out, out

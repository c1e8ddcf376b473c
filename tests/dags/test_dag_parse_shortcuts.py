"""The parse-speed shortcuts of dag_factory keep what Airflow would have built without them.

build_dags reads the Airflow config values a DAG/sensor would look up per object once per
parse, shares one monthly timetable, leaves edges to the XComArgs and pauses the GC while
building (bench B4). These tests pin that the outcome is the same as Airflow's own defaults.
"""

from __future__ import annotations

import gc

import pytest

from include.pipeline.dag_factory import TASK_IDS, build_dags

SENSORS = ("wait_for_approved_berats", "wait_for_backup_confirmation")


def test_config_values_match_airflows_own_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import DAG, BaseSensorOperator

    monkeypatch.delenv("EDEFTER_COMPANIES_FILE", raising=False)
    probe = DAG(dag_id="probe_defaults", schedule=None)
    with probe:
        sensor = BaseSensorOperator(task_id="probe_sensor")
    dags = list(build_dags())
    assert len(dags) == 4
    for dag in dags:
        assert dag.max_active_tasks == probe.max_active_tasks
        assert dag.max_consecutive_failed_dag_runs == probe.max_consecutive_failed_dag_runs
        assert dag.disable_bundle_versioning == probe.disable_bundle_versioning
        for task_id in SENSORS:
            assert dag.get_task(task_id).timeout == sensor.timeout


def test_airflow_config_overrides_still_reach_every_dag(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read once per parse, not frozen at import: an operator's airflow.cfg/env setting applies."""
    monkeypatch.delenv("EDEFTER_COMPANIES_FILE", raising=False)
    monkeypatch.setenv("AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG", "7")
    monkeypatch.setenv("AIRFLOW__CORE__MAX_CONSECUTIVE_FAILED_DAG_RUNS_PER_DAG", "3")
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DISABLE_BUNDLE_VERSIONING", "True")
    monkeypatch.setenv("AIRFLOW__SENSORS__DEFAULT_TIMEOUT", "1234")
    for dag in build_dags():
        assert (dag.max_active_tasks, dag.max_consecutive_failed_dag_runs) == (7, 3)
        assert dag.disable_bundle_versioning is True
        assert all(dag.get_task(t).timeout == 1234 for t in SENSORS)


def test_edges_are_the_full_contract_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDEFTER_COMPANIES_FILE", raising=False)
    for dag in build_dags():
        ups = {t: dag.get_task(t).upstream_task_ids for t in TASK_IDS}
        assert ups == {
            "wait_for_approved_berats": set(),
            "verify": {"wait_for_approved_berats"},
            "upload": {"verify"},
            "wait_for_backup_confirmation": {"upload"},
            # record reads every earlier result (XComArgs), so all of them are its upstreams
            "record": set(TASK_IDS[:-1]),
        }


def test_automatic_dags_share_one_monthly_timetable(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import CronDataIntervalTimetable

    monkeypatch.delenv("EDEFTER_COMPANIES_FILE", raising=False)
    auto = [d for d in build_dags() if "otomatik" in d.tags]
    assert len(auto) >= 2
    assert len({id(d.timetable) for d in auto}) == 1
    assert auto[0].timetable == CronDataIntervalTimetable("@monthly", timezone="Europe/Istanbul")


@pytest.mark.parametrize("enabled", [True, False])
def test_gc_state_is_restored(monkeypatch: pytest.MonkeyPatch, enabled: bool) -> None:
    monkeypatch.delenv("EDEFTER_COMPANIES_FILE", raising=False)
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        it = build_dags()
        next(it)
        assert gc.isenabled() is enabled  # consumer code between yields sees the GC as it was
        list(it)
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_gc_state_is_restored_when_the_config_is_wrong(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from include.pipeline.config import ConfigError

    path = tmp_path / "c.yaml"
    path.write_text("companies: [{id: x}]\n", encoding="utf-8")
    monkeypatch.setenv("EDEFTER_COMPANIES_FILE", str(path))
    assert gc.isenabled()
    with pytest.raises(ConfigError):
        list(build_dags())
    assert gc.isenabled()

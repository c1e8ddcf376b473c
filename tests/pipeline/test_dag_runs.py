"""End-to-end DAG runs with Airflow's dag.test() against a real integrator on 127.0.0.1."""

from __future__ import annotations

from include.edefter.naming import Period
from tests.pipeline.conftest import Env, evidence, tree_snapshot

TAX = "1234567801"


def test_ready_month_is_backed_up(env: Env) -> None:
    folder = env.company("ornek", TAX)
    env.month(folder, TAX, Period(2025, 1))
    before = tree_snapshot(folder)
    result = env.run(f"edefter_yedekleme_{TAX}", Period(2025, 1))
    result.assert_states(
        wait_for_approved_berats="success", verify="success", package="success", upload="success",
        wait_for_backup_confirmation="success", record="success",
    )
    ev = evidence(env.tmp, TAX, Period(2025, 1))
    assert ev["backup_status"] == "Yedeklendi"
    assert "Ocak-2025" in ev["message"]
    assert len(ev["files"]) == 7 and all(f["signature_value"] for f in ev["files"])
    assert tree_snapshot(folder) == before  # the e-Defter folder is never written

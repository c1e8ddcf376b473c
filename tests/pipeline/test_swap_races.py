"""Files changed between `verify` and `upload`, through real dag.test() runs (issue: pinned bytes).

The change is made inside the run, right before the upload task starts (dag.test runs tasks in
this process, so wrapping the task function is enough to land between the two tasks). Each case:
nothing uploaded, Yedeklenemedi naming the file, the alert fired; with the genuine files back, a
re-run ends Yedeklendi.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from include.edefter.naming import Period
from include.edefter.sample.breakage import flip_byte_in_ledger_body
from include.pipeline import tasks
from tests.pipeline.conftest import Env, Integrator, free_port

OK = dict.fromkeys(["wait_for_approved_berats", "verify", "upload", "wait_for_backup_confirmation", "record"], "success")


def _between_verify_and_upload(monkeypatch: pytest.MonkeyPatch, change: Callable[[], None]) -> list[int]:
    calls: list[int] = []
    original = tasks.upload_month

    def upload_after_change(*args: Any, **kwargs: Any) -> Any:
        if not calls:
            change()
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(tasks, "upload_month", upload_after_change)
    return calls


def _snapshot(folder: Path, to: Path) -> None:
    shutil.copytree(folder, to)


def _restore(saved: Path, folder: Path) -> None:
    for p in folder.glob("*.xml"):
        p.unlink()
    for p in saved.glob("*.xml"):
        shutil.copy2(p, folder / p.name)


def _assert_refused(env: Env, result: Any, tax: str, integrator: Integrator, names: list[str]) -> None:
    result.assert_states(verify="success", upload="failed", wait_for_backup_confirmation="upstream_failed")
    assert result.tries["upload"] == 1  # a verdict, not retried
    assert integrator.stored(tax) == []
    from include.integrator.client import IntegratorClient
    from tests.pipeline.conftest import PASSWORD

    with IntegratorClient(integrator.url, integrator.account(tax), PASSWORD) as c:
        status = c.month_status(tax, None, Period(2025, 4))
    assert status.submission_id is None  # nothing was submitted either
    reason = env.alert_reasons()[-1]
    assert tasks.CHANGED_TR in reason and tasks.CHANGED_EN in reason
    for name in names:
        assert name in reason
    assert env.webhook.payloads[-1]["task_id"] == "upload" and env.webhook.payloads[-1]["status"] == "Yedeklenemedi"


def test_whole_set_replaced_by_another_valid_set_is_refused(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    tax = "3131313131"
    folder = env.company("takas", tax)
    mf = env.month(folder, tax, Period(2025, 4))
    saved = env.tmp / "genuine"
    _snapshot(folder, saved)

    def replace_set() -> None:
        for p in folder.glob("*.xml"):
            p.unlink()
        env.month(folder, tax, Period(2025, 4), seed=42, entries_per_part=9)  # validly signed, other content

    calls = _between_verify_and_upload(monkeypatch, replace_set)
    result = env.run(f"edefter_yedekleme_{tax}", Period(2025, 4))
    assert calls
    _assert_refused(env, result, tax, env.integrator, [mf.path("Y").name])
    assert env.work_leftovers() == []

    _restore(saved, folder)
    env.run(f"edefter_yedekleme_{tax}", Period(2025, 4)).assert_states(**OK)
    assert {n for n, _ in env.integrator.stored(tax)} == {p.with_suffix(".zip").name for p in saved.glob("*.xml")}


@pytest.fixture
def third_party_integrator(tmp_path: Path) -> Any:
    """An archive that does not check signatures (as a licensed third-party one may not)."""
    data = tmp_path / "unsigned-archive"
    data.mkdir()
    srv = Integrator(data=data, port=free_port(), extra_env={"INTEGRATOR_VERIFY_SIGNATURES": "0"})
    srv.start()
    yield srv
    srv.stop()


def test_flipped_byte_after_verify_never_reaches_an_archive_that_checks_no_signatures(
    env: Env, monkeypatch: pytest.MonkeyPatch, third_party_integrator: Integrator
) -> None:
    tax = "3232323232"
    folder = env.company("ucuncu", tax, connect=False)
    env.connect(f"edefter_test_{tax}", third_party_integrator.conn_uri(tax))
    mf = env.month(folder, tax, Period(2025, 4))
    saved = env.tmp / "genuine"
    _snapshot(folder, saved)

    calls = _between_verify_and_upload(monkeypatch, lambda: flip_byte_in_ledger_body(mf.path("Y")))
    result = env.run(f"edefter_yedekleme_{tax}", Period(2025, 4))
    assert calls
    _assert_refused(env, result, tax, third_party_integrator, [mf.path("Y").name])

    _restore(saved, folder)
    env.run(f"edefter_yedekleme_{tax}", Period(2025, 4)).assert_states(**OK)
    assert len(third_party_integrator.stored(tax)) == 7

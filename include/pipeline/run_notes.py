"""Runs name their month: every backup DAG run gets the note "Nisan-2026" (the month it backs up).

An Airflow listener (registered by plugins/edefter_saklama.py) that runs where DAG runs change
state with a metadata-DB session: the scheduler when a run starts, and ``dag.test`` / the
scheduler when it finishes. It only fills an empty note (a user's own note is never replaced)
and never raises (a listener error must not disturb the scheduler). Backfills, scheduled runs and
triggered runs (conf {"month": "YYYY-MM"}) are named alike, whatever Airflow named the run_id
(``backfill__2026-04-30T21:00:00+00:00`` backs up Mayıs-2026: the data interval start, Istanbul).
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.listeners import hookimpl

__all__ = ["DAG_ID_PREFIX", "RunNotes", "month_note", "run_notes"]

log = logging.getLogger(__name__)

DAG_ID_PREFIX = "edefter_yedekleme_"


def month_note(dag_run: Any) -> str | None:
    """The note of a backup run ("Nisan-2026"), or None when it is not a backup run or has no month."""
    if not str(getattr(dag_run, "dag_id", "")).startswith(DAG_ID_PREFIX):
        return None
    from include.pipeline.status import month_of_run

    month = month_of_run(getattr(dag_run, "conf", None), getattr(dag_run, "data_interval_start", None))
    return None if month is None else month.label_tr


def _name(dag_run: Any) -> None:
    """Add the month note in the session that holds the run (committed with the caller's state change).

    The scheduler passes a run bound to its session; ``dag.test`` may pass a detached one, whose
    note then goes into the thread's scoped session, which ``dag.test`` commits right after. Never
    a session of our own: it would wait on the caller's row locks (SQLite's single writer)."""
    try:
        note = month_note(dag_run)
        run_pk = getattr(dag_run, "id", None)
        if not note or run_pk is None:
            return
        from airflow import settings
        from airflow.models.dagrun import DagRunNote
        from sqlalchemy.orm import object_session

        session = object_session(dag_run) or settings.Session()
        if session.get(DagRunNote, run_pk) is not None:
            return  # a note already exists (perhaps a user's): keep it
        row = DagRunNote(content=note)
        row.dag_run_id = run_pk
        session.add(row)
    except Exception:
        log.warning("could not set the month note of %s", getattr(dag_run, "run_id", "?"), exc_info=True)


class RunNotes:
    @hookimpl
    def on_dag_run_running(self, dag_run: Any, msg: str) -> None:
        _name(dag_run)

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        _name(dag_run)

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: str) -> None:
        _name(dag_run)


run_notes = RunNotes()

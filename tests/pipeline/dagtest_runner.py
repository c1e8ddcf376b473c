"""Run one DAG of the current EDEFTER_COMPANIES_FILE with dag.test() in a fresh process.

Used where Airflow's configuration must differ from the pytest process (Airflow reads its
config at import), e.g. the metadata DB on PostgreSQL. Prints one JSON line with the states.
"""

from __future__ import annotations

import json
import sys

import pendulum


def main() -> None:
    dag_id, logical = sys.argv[1], sys.argv[2]
    from include.pipeline.config import load_config
    from include.pipeline.dag_factory import build_dag

    dag = build_dag(load_config().unit(dag_id))
    dr = dag.test(logical_date=pendulum.parse(logical))
    from airflow.settings import engine

    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    print("RESULT " + json.dumps({"state": str(dr.state), "states": states, "db": engine.url.get_backend_name()}))


if __name__ == "__main__":
    main()

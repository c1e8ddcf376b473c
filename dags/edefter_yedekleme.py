"""e-Defter Yedekleme: one Airflow backup DAG per company or branch of include/config/companies.yaml.

Wiring only. The config file is env EDEFTER_COMPANIES_FILE (default include/config/companies.yaml);
a config mistake surfaces as this file's import error naming the company and the field.
The building blocks live in include/pipeline (factory, sensors, triggers, tasks, notifiers).
"""

from __future__ import annotations

from include.pipeline.dag_factory import build_dags

for _dag in build_dags():
    globals()[_dag.dag_id] = _dag

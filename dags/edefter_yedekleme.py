"""e-Defter Yedekleme: one Airflow backup DAG per company or branch of include/config/companies.yaml,
plus the manual restore DAG edefter_geri_yukleme and the monthly restore drill edefter_geri_yukleme_tatbikati.

Wiring only. The config file is env EDEFTER_COMPANIES_FILE (default include/config/companies.yaml);
a config mistake surfaces as this file's import error naming the company and the field.
The building blocks live in include/pipeline (factory, sensors, triggers, tasks, notifiers).
"""

from __future__ import annotations

from include.pipeline.dag_factory import build_dags
from include.pipeline.drill_dag import build_drill_dag
from include.pipeline.restore_dag import build_restore_dag

for _dag in build_dags():
    globals()[_dag.dag_id] = _dag
# The manually triggered restore / ibraz DAG (one for all companies; reads nothing at parse time), last.
_restore = build_restore_dag()
globals()[_restore.dag_id] = _restore
# The monthly restore drill over every unit (reads nothing at parse time).
_drill = build_drill_dag()
globals()[_drill.dag_id] = _drill

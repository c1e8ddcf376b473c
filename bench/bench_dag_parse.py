"""B4: parse dags/edefter_yedekleme.py for 1,000 companies (goal ≤ 2 s).

What is measured: a fresh Python process (isolated AIRFLOW_HOME, EDEFTER_COMPANIES_FILE pointing at a
generated YAML of N companies, ~20 % of them şube bazında with 2–3 branches each) imports Airflow, then
times ``DagBag(dag_folder=<the DAG file>)`` — the same call the dag-processor makes per file. The figure
reported against the goal is DagBag's own per-file duration (``dagbag_stats``), which includes importing
include.pipeline (config, factory, sensors, notifiers) since a fresh processor pays that too; the wall
time of the DagBag call is reported beside it.

Baseline in the same run: the same procedure over a trivial file holding one DAG with one task, so
"Airflow + DagBag overhead" and "our file" can be told apart on a busy machine. Each side runs
``--repeat`` times (alternating) and the median is reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from bench import PROJECT_ROOT, BenchResult, project_env

BENCH_ID = "B4"
DAG_FILE = PROJECT_ROOT / "dags" / "edefter_yedekleme.py"
GOAL_SECONDS = 2.0

# Runs in the child: import Airflow first (not part of the figure), then time the DagBag.
_CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    t0 = time.perf_counter()
    from airflow.dag_processing.dagbag import DagBag
    t1 = time.perf_counter()
    out = []
    for path in sys.argv[1:]:
        t2 = time.perf_counter()
        bag = DagBag(dag_folder=path)
        t3 = time.perf_counter()
        out.append({
            "import_airflow_s": t1 - t0,
            "dagbag_wall_s": t3 - t2,
            "dagbag_file_s": sum(s.duration.total_seconds() for s in bag.dagbag_stats),
            # backup DAGs only: the restore and drill DAGs (edefter_geri_yukleme*) are not per company
            "dags": len([d for d in bag.dag_ids if not d.startswith("edefter_geri_yukleme")]),
            "tasks": sum(len(d.tasks) for d in bag.dags.values() if not d.dag_id.startswith("edefter_geri_yukleme")),
            "import_errors": {str(k): str(v)[-800:] for k, v in bag.import_errors.items()},
        })
    if os.environ.get("BENCH_B4_ATTRIBUTE") == "1":
        # Attribution for the last (our) file, modules already imported: YAML+validation vs DAG building.
        from include.pipeline.config import load_config
        from include.pipeline.dag_factory import build_dags
        t4 = time.perf_counter()
        cfg = load_config()
        t5 = time.perf_counter()
        n = sum(1 for _ in build_dags(cfg))
        t6 = time.perf_counter()
        out[-1].update(load_config_s=t5 - t4, build_dags_s=t6 - t5, built=n)
    print("BENCH_JSON " + json.dumps(out))
    """
)

_TRIVIAL_DAG = textwrap.dedent(
    """
    import pendulum
    from airflow.sdk import DAG, task

    with DAG(dag_id="bench_trivial", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):
        @task
        def noop() -> None:
            return None

        noop()
    """
)


def companies_yaml(n: int, branch_every: int = 5) -> tuple[str, int]:
    """YAML text for n companies (every branch_every-th one şube bazında) and the number of DAGs it yields."""
    lines = [
        "defaults:",
        "  poll_interval_seconds: 3600",
        "  status_poll_interval_seconds: 60",
        "  alerts:",
        '    email: ["muhasebe@example.com.tr"]',
        "companies:",
    ]
    dags = 0
    for i in range(n):
        tid = f"{1_000_000_000 + i:010d}"
        lines += [
            f"  - id: firma-{i:05d}",
            f'    taxpayer_id: "{tid}"',
            f'    name: "Bench Firma {i} A.Ş."',
            f"    folder: /srv/edefter/firma-{i:05d}",
            f"    automatic: {'true' if i % 7 else 'false'}",
            f'    start_month: "20{20 + i % 6}-{1 + i % 12:02d}"',
        ]
        if branch_every and i % branch_every == 0:
            nb = 2 + i % 2
            lines.append("    branches:")
            for b in range(1, nb + 1):
                lines += [
                    f'      - branch: "{b:04d}"',
                    f'        name: "Şube {b}"',
                    f"        integrator_conn_id: edefter_integrator_{tid}_{b:04d}",
                ]
            dags += nb
        else:
            lines.append(f"    integrator_conn_id: edefter_integrator_{tid}")
            dags += 1
    return "\n".join(lines) + "\n", dags


def _parse_in_child(
    dag_files: list[Path], companies_file: Path, airflow_home: Path, attribute: bool
) -> list[dict[str, Any]]:
    """Parse each file with its own DagBag in one fresh process; one result per file."""
    env = project_env(
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(dag_files[-1].parent),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{airflow_home}/airflow.db",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        # A 1,000-company parse must not be cut short by the default import timeout (30 s) on a busy box.
        AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="300",
        EDEFTER_COMPANIES_FILE=str(companies_file),
        # After the last file: time load_config and build_dags alone (warm) to attribute the cost.
        BENCH_B4_ATTRIBUTE="1" if attribute else "0",
    )
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *map(str, dag_files)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line.removeprefix("BENCH_JSON "))
    raise RuntimeError(f"DagBag child failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> BenchResult:
    ap = argparse.ArgumentParser(prog="python -m bench dag_parse", description="B4: DAG file parse time")
    ap.add_argument("--companies", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--quick", action="store_true", help="20 companies, 1 repeat, one process for both files (smoke test)"
    )
    a = ap.parse_args(argv or [])
    if a.quick:
        a.companies, a.repeat = 20, 1

    result = BenchResult(
        BENCH_ID,
        f"parse dags/edefter_yedekleme.py for {a.companies:,} companies",
        "the same DagBag call over a trivial 1-DAG/1-task file"
        + (" (same process, parsed first)" if a.quick else ", fresh process each, alternating"),
        params={"companies": a.companies, "repeat": a.repeat},
    )
    with tempfile.TemporaryDirectory(prefix="bench-b4-") as tmp:
        root = Path(tmp)
        text, expected_dags = companies_yaml(a.companies)
        cfg = root / "companies.yaml"
        cfg.write_text(text, encoding="utf-8")
        trivial_dir = root / "trivial_dags"
        trivial_dir.mkdir()
        trivial = trivial_dir / "bench_trivial.py"
        trivial.write_text(_TRIVIAL_DAG, encoding="utf-8")
        ours: list[dict[str, Any]] = []
        base: list[dict[str, Any]] = []
        for i in range(a.repeat):
            if a.quick:  # one process for both (Airflow is imported once): cheaper, baseline parsed first
                b, o = _parse_in_child([trivial, DAG_FILE], cfg, root / f"home-{i}", True)
                base.append(b)
                ours.append(o)
            else:
                base += _parse_in_child([trivial], cfg, root / f"home-base-{i}", False)
                ours += _parse_in_child([DAG_FILE], cfg, root / f"home-ours-{i}", True)

    errors = {k: v for r in ours + base for k, v in r["import_errors"].items()}
    if errors:
        raise RuntimeError(f"DagBag import errors: {json.dumps(errors, ensure_ascii=False)[:3000]}")
    dags = ours[0]["dags"]
    if dags != expected_dags or base[0]["dags"] != 1:
        raise RuntimeError(f"expected {expected_dags} DAGs (+1 baseline), DagBag found {dags} (+{base[0]['dags']})")

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    file_s = med(ours, "dagbag_file_s")
    # The goal is for 1,000 companies; a smaller run (smoke) reports the figure without a verdict.
    full = a.companies >= 1000
    result.add("DagBag file parse (median, DagBag stats)", file_s, "s", f"≤ {GOAL_SECONDS:g} s" if full else None,
               (file_s <= GOAL_SECONDS) if full else None)
    result.add("DagBag() wall (median)", med(ours, "dagbag_wall_s"), "s")
    result.add("baseline: trivial 1-DAG file parse (median)", med(base, "dagbag_file_s"), "s")
    result.add("baseline: DagBag() wall, trivial file (median)", med(base, "dagbag_wall_s"), "s")
    result.add("our parse minus baseline, per DAG", (file_s - med(base, "dagbag_file_s")) / dags * 1000, "ms")
    result.add("DAGs in the bag", dags, "")
    result.add("tasks in the bag", ours[0]["tasks"], "")
    result.add("of which load_config (YAML + validation, warm)", med(ours, "load_config_s"), "s")
    result.add("of which build_dags (DAG objects, warm)", med(ours, "build_dags_s"), "s")
    result.add("import airflow (not in the figure, median)", med(ours, "import_airflow_s"), "s")
    per_run = ", ".join(f"{r['dagbag_file_s']:.2f}" for r in ours)
    result.notes.append(
        f"{a.companies} companies → {dags} DAGs ({dags - a.companies} extra from şube bazında companies); "
        f"per-run file parse: {per_run} s"
    )
    return result


if __name__ == "__main__":
    print(main(sys.argv[1:]).render())

"""The benchmarks run at a tiny size and report the figures they promise, so they don't rot.

Structure only: which figures exist, that the checks that are verdicts (nothing lost, DAG count, audit)
hold. Never wall-clock: timing belongs to `make bench`, measured against a baseline in the same run.
"""

from __future__ import annotations

import json

import pytest

from bench import BenchResult, Metric, percentile
from bench.__main__ import _Outcome, discover, resolve, summary  # noqa: PLC2701


def _names(result: BenchResult) -> set[str]:
    return {m.name for m in result.metrics}


def _value(result: BenchResult, prefix: str) -> float:
    return next(m.value for m in result.metrics if m.name.startswith(prefix))


def test_harness_discovers_and_resolves_my_benches() -> None:
    mods = discover()
    assert {"bench_dag_parse", "bench_ingest", "bench_month"} <= set(mods)
    assert resolve(["dag_parse"]) == ["bench_dag_parse"]
    assert resolve(["B5"]) == ["bench_ingest"]
    with pytest.raises(SystemExit):
        resolve(["no_such_bench"])


def test_percentile_is_nearest_rank() -> None:
    xs = [float(i) for i in range(1, 101)]
    assert percentile(xs, 99) == 99.0
    assert percentile(xs, 50) == 50.0
    assert percentile([7.0], 99) == 7.0


def test_summary_renders_results_errors_and_foreign_returns() -> None:
    r = BenchResult("BX", "t", "b", [Metric("m", 1.5, "s", "≤ 2 s", True)])
    text = summary([_Outcome("bench_x", 0.1, r, None), _Outcome("bench_y", 0.1, None, "Traceback\nValueError: boom"),
                    _Outcome("bench_z", 0.1, 0, None)])  # fmt: skip
    assert "OK" in text and "ValueError: boom" in text and "bench_z" in text
    assert json.loads(json.dumps(r.to_dict()))["goals_met"] is True


def test_b4_dag_parse_quick() -> None:
    from bench.bench_dag_parse import companies_yaml, main

    text, dags = companies_yaml(10)
    assert dags == 10 + 2 + 1  # companies 0 and 5 are şube bazında with 2 and 3 branches
    assert text.count("- id: firma-") == 10
    result = main(["--quick"])
    assert result.bench_id == "B4"
    assert {"DagBag file parse (median, DagBag stats)", "baseline: trivial 1-DAG file parse (median)"} <= _names(result)
    assert _value(result, "DAGs in the bag") == companies_yaml(20)[1]
    assert _value(result, "tasks in the bag") == 5 * _value(result, "DAGs in the bag")
    assert all(m.value > 0 for m in result.metrics)
    assert result.goals_met is None  # no verdict at a non-goal size


def test_b5_ingest_quick() -> None:
    from bench.bench_ingest import main

    result = main(["--quick"])
    assert result.bench_id == "B5"
    names = _names(result)
    assert {"service ingest, aggregate", "baseline: bare HTTP sink, aggregate (mean of before/after)", "status p99 at 10 concurrent"} <= names
    # The verdicts that are not about speed must hold even at the tiny size.
    assert _value(result, "files lost / changed / unexpected") == 0
    assert _value(result, "months not Yedeklendi") == 0
    assert _value(result, "fixity audit exit code") == 0
    assert _value(result, "files uploaded per side") == 8 * 7
    assert _value(result, "status queries per side") == 10 * 5
    assert result.goals_met is True  # only the non-speed verdicts carry a goal in --quick


def test_b3_month_quick() -> None:
    from bench.bench_month import main

    result = main(["--quick"])
    assert result.bench_id == "B3"
    names = _names(result)
    assert {"ours: berats present → Yedeklendi", "baseline: zip -6 + sha256sum + curl -T", "ours / baseline wall time"} <= names
    assert {"ours: verify", "ours: package + upload + submit", "ours: wait for Yedeklendi", "ours: record"} <= names
    assert _value(result, "month reached Yedeklendi") == 1
    assert _value(result, "files in the month") == 7  # Y, K, YB, KB, GIB-YB, GIB-KB, DR
    assert result.goals_met is True

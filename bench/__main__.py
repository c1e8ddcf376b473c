"""Run the benchmarks: ``python -m bench`` (all) or ``python -m bench NAME [NAME…] [-- bench args]``.

NAME is the module suffix (``dag_parse`` for bench/bench_dag_parse.py) or the bench id (``B4``).
Arguments after ``--`` go to every chosen bench's ``main(argv)`` (e.g. ``-- --quick``).
Results go to bench/out/<module>.json; a summary table is printed at the end.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

from bench import BENCH_DIR, BenchResult, machine_info, write_result


@dataclass
class _Outcome:
    module: str
    seconds: float
    result: Any
    error: str | None


def discover() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))


def _bench_id(module: str) -> str | None:
    try:
        mod = importlib.import_module(f"bench.{module}")
    except Exception:
        return None
    return getattr(mod, "BENCH_ID", None)


def resolve(names: list[str]) -> list[str]:
    available = discover()
    chosen: list[str] = []
    for raw in names:
        n = raw.removesuffix(".py").removeprefix("bench/")
        candidates = [m for m in available if m in (n, f"bench_{n}")]
        if not candidates:
            candidates = [m for m in available if (_bench_id(m) or "").lower() == n.lower()]
        if not candidates:
            raise SystemExit(f"unknown bench {raw!r}; available: {', '.join(available) or '(none)'}")
        chosen.extend(c for c in candidates if c not in chosen)
    return chosen


def run_one(module: str, argv: list[str]) -> _Outcome:
    start = time.perf_counter()
    try:
        mod = importlib.import_module(f"bench.{module}")
        fn = mod.main
        # Tolerate benches whose main() takes no arguments (other helpers' modules).
        takes_args = bool(inspect.signature(fn).parameters)
        result = fn(list(argv)) if takes_args else fn()
        error = None
        if isinstance(result, int) and not isinstance(result, bool) and result != 0:
            error = f"main() returned exit code {result}"
    except SystemExit as exc:
        result, error = None, (None if exc.code in (0, None) else f"exited with {exc.code}")
    except Exception:
        result, error = None, traceback.format_exc()
    outcome = _Outcome(module, time.perf_counter() - start, result, error)
    if isinstance(result, BenchResult):
        write_result(result, module)
    return outcome


def _rows(outcome: _Outcome) -> list[tuple[str, str, str, str, str]]:
    r = outcome.result
    if outcome.error:
        first = outcome.error.strip().splitlines()[-1][:70]
        return [(outcome.module, "ERROR", first, "", "")]
    if isinstance(r, BenchResult):
        rows = []
        for m in r.metrics:
            verdict = "" if m.met is None else ("OK" if m.met else "MISSED")
            rows.append((f"{r.bench_id} {outcome.module}", m.name, f"{m.render_value()} {m.unit}", m.goal or "", verdict))
        return rows or [(outcome.module, "(no metrics)", "", "", "")]
    if isinstance(r, dict) and isinstance(r.get("metrics"), list):
        rows = []
        for m in r["metrics"]:
            if isinstance(m, dict):
                met = m.get("met")
                verdict = "" if met is None else ("OK" if met else "MISSED")
                rows.append((outcome.module, str(m.get("name")), f"{m.get('value')} {m.get('unit', '')}",
                             str(m.get("goal") or ""), verdict))
        return rows or [(outcome.module, "(see output above)", "", "", "")]
    return [(outcome.module, "(see output above)", "", "", "")]


def summary(outcomes: list[_Outcome]) -> str:
    header = ("bench", "figure", "value", "goal", "verdict")
    rows = [header] + [row for o in outcomes for row in _rows(o)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows[1:]]
    info = machine_info()
    lines.append(f"machine: {info['cpus']} CPUs, Python {info['python']}, load {info['load_avg_1m']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    bench_args: list[str] = []
    if "--" in args:
        i = args.index("--")
        args, bench_args = args[:i], args[i + 1 :]
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="benches to run (default: all bench/bench_*.py)")
    ap.add_argument("--list", action="store_true", help="list the benches and exit")
    a = ap.parse_args(args)
    if a.list:
        for m in discover():
            print(f"{_bench_id(m) or '-':<4} {m}")
        return 0
    modules = resolve(a.names) if a.names else discover()
    if not modules:
        print("no bench/bench_*.py modules found")
        return 1
    outcomes: list[_Outcome] = []
    for module in modules:
        print(f"=== {module} ===", flush=True)
        o = run_one(module, bench_args)
        if isinstance(o.result, BenchResult):
            print(o.result.render())
        if o.error:
            print(f"{module} FAILED:\n{o.error}", file=sys.stderr)
        print(f"({module}: {o.seconds:.1f} s)\n", flush=True)
        outcomes.append(o)
    print(summary(outcomes))
    return 1 if any(o.error for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())

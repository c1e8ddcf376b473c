"""Benchmarks with side-by-side baselines (architecture §5). Not tests: nothing here asserts on time.

Every ``bench/bench_*.py`` module exposes ``main(argv: list[str] | None = None)`` and returns a
:class:`BenchResult` (or a plain dict of the same shape); ``python -m bench`` runs them all and prints
one summary table. Figures are measured against a baseline in the same run, so a slow or busy
machine shifts both sides instead of producing a false verdict.

Shared helpers live here so each bench stays about its own measurement.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import socket
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BENCH_DIR",
    "OUT_DIR",
    "PROJECT_ROOT",
    "BenchResult",
    "Metric",
    "free_port",
    "machine_info",
    "out_dir",
    "peak_rss_mb",
    "percentile",
    "project_env",
    "write_result",
]

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"  # gitignored


@dataclass(frozen=True)
class Metric:
    """One figure. ``met`` is None when the figure has no goal (context, baseline numbers)."""

    name: str
    value: float
    unit: str
    goal: str | None = None
    met: bool | None = None

    def render_value(self) -> str:
        v = self.value
        if isinstance(v, int) or float(v).is_integer() and abs(v) >= 100:
            return f"{int(v):,}"
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.3g}"


@dataclass
class BenchResult:
    bench_id: str  # "B4"
    title: str
    baseline: str  # what the same run measured side by side
    metrics: list[Metric] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, value: float, unit: str, goal: str | None = None, met: bool | None = None) -> Metric:
        m = Metric(name, float(value), unit, goal, met)
        self.metrics.append(m)
        return m

    @property
    def goals_met(self) -> bool | None:
        """True/False over the metrics that have a goal; None if none has one."""
        verdicts = [m.met for m in self.metrics if m.met is not None]
        return all(verdicts) if verdicts else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["goals_met"] = self.goals_met
        d["machine"] = machine_info()
        d["date"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        return d

    def render(self) -> str:
        lines = [f"{self.bench_id} — {self.title}", f"  baseline: {self.baseline}"]
        for m in self.metrics:
            verdict = "" if m.met is None else ("  OK" if m.met else "  MISSED")
            goal = f"  (goal {m.goal})" if m.goal else ""
            lines.append(f"  {m.name:<58} {m.render_value():>10} {m.unit:<6}{goal}{verdict}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def out_dir(*parts: str) -> Path:
    d = OUT_DIR.joinpath(*parts)
    d.mkdir(parents=True, exist_ok=True)
    return d


def write_result(result: BenchResult, name: str) -> Path:
    path = out_dir() / f"{name}.json"
    path.write_text(json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(children: bool = False) -> float:
    """Peak RSS of this process (or of its waited-for children) in MiB (Linux reports KiB)."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) — no interpolation, so p99 is an observed sample."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(-(-q * len(ordered) // 100)) - 1))
    return ordered[k]


def machine_info() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def project_env(**extra: str) -> dict[str, str]:
    """Environment for subprocesses: project root on PYTHONPATH, the venv's interpreter first on PATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def timed_command(
    cmd: list[str], *, tail: int = 600, keep_line: Callable[[str], bool] | None = None
) -> tuple[float, float, int, str, float]:
    """(wall s, peak RSS MiB, exit code, stdout+stderr tail, CPU s) of cmd under /usr/bin/time -v.

    ``keep_line`` filters the output lines kept for the tail (e.g. drop a tool's repeated warnings).
    """
    import re
    import subprocess
    import time

    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=project_env())
    wall = time.perf_counter() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    rss = int(m.group(1)) / 1024 if m else float("nan")
    inner_rc = re.search(r"Exit status: (\d+)", proc.stderr)
    rc = int(inner_rc.group(1)) if inner_rc else proc.returncode
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", proc.stderr))
    out = proc.stdout + proc.stderr
    if keep_line is not None:
        out = "\n".join(line for line in out.splitlines() if keep_line(line))
    return wall, rss, rc, out[-tail:], cpu

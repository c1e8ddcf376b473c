"""BX: XSD validation of one large generated journal vs ``xmllint --stream --schema`` (same file, same run).

What is measured (each side in its own process under ``/usr/bin/time -v``: wall time, CPU time and
peak RSS; GNU time's peak RSS is the largest single process of the tree, so for ours the Python
process and its xmllint child are also reported separately from inside the child):

* ours, ``auto`` — ``include.edefter.xsd.load_validator().validate`` as ``validate_month`` runs it:
  a file above ``TREE_MAX_BYTES`` is streamed from its opener into ``xmllint --stream --nonet
  --schema edefter.xsd -`` and the errors (with lines) are read back, bounded;
* ours, ``lxml`` — the in-process fallback used when xmllint is not installed:
  ``etree.iterparse(schema=...)`` with every element freed once ended (no line numbers);
* baseline — ``xmllint --noout --stream --nonet --schema edefter.xsd FILE``.

Goal: bounded memory (peak RSS ≤ 100 MiB for a 200 MB part, every process). The speed ratio is
xmllint's wall time / ours (1.0 = as fast). Default size is small (``--size-mb 20``); the issue's
figure is ``--size-mb 200``. ``--invalid`` makes every contextRef of the journal an invalid IDREF
(the 200 MB schema-invalid part: bounded memory, first errors reported, no crash).
The sample is cached under bench/out/bx-samples-*/.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

from bench import PROJECT_ROOT, BenchResult, out_dir, timed_command

BENCH_ID = "BX"
GOAL_RSS_MIB = 100.0
_MB = 1_000_000


def _xsd_timed(cmd: list[str]) -> tuple[float, float, int, str, float]:
    """timed_command without xmllint's per-line parser warnings in the tail."""
    return timed_command(
        cmd, tail=800, keep_line=lambda line: "parser warning" not in line and not line.startswith("\t")
    )


def schema_dir() -> Path:
    value = os.environ.get("EDEFTER_SCHEMA_DIR") or str(PROJECT_ROOT.parent / "shared" / "schemas" / "edefter")
    return Path(value)


def make_sample(directory: Path, size_mb: float | None, invalid: bool) -> Path:
    from include.edefter.naming import Period
    from include.edefter.sample import Stage, TestPKI, generate_month

    done = directory / "DONE"
    if not done.exists():
        directory.mkdir(parents=True, exist_ok=True)
        pki = TestPKI.create(directory / "pki")
        generate_month(directory / "month", taxpayer_id="5300000002", company_name="Bench Şema A.Ş.",
                       period=Period(2025, 4), pki=pki, with_dr=False,
                       stage=Stage.LEDGERS,
                       part_size_bytes=int(size_mb * _MB) if size_mb else None)
        done.write_text("ok\n")
    journal = next(p for p in (directory / "month").rglob("*-Y-*.xml"))
    if not invalid:
        return journal
    bad = directory / ("invalid-" + journal.name)
    if not bad.exists():
        with journal.open("rb") as src, bad.open("wb") as dst:
            for line in src:
                dst.write(line.replace(b'contextRef="journal_context"', b'contextRef="1bad"'))
    return bad


def child(path: str, schemas: str, mode: str) -> int:
    """Run by the bench in a fresh process: validate one file, print the verdict and both RSS figures."""
    from include.edefter.xsd import load_validator

    t0 = time.perf_counter()
    v = load_validator(Path(schemas), use_xmllint=(mode == "auto"))
    t1 = time.perf_counter()
    p = Path(path)
    r = v.validate(lambda: p.open("rb"), name=p.name)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kid = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    first = r.errors[0].render()[:160] if r.errors else "-"
    print(f"ours[{mode}]: valid={r.valid} method={r.method} errors={r.error_count}"
          f"{'+' if r.count_is_lower_bound else ''} first={first} schema_load={t1 - t0:.2f}s "
          f"validate={time.perf_counter() - t1:.2f}s python_rss={own:.1f}MiB xmllint_child_rss={kid:.1f}MiB")
    return 0 if r.valid else 3


MODES = {"auto": "xmllint --stream subprocess fed by our opener (default when xmllint is installed)",
         "lxml": "in-process lxml iterparse(schema=) with freed elements (fallback, no line numbers)"}


def main(argv: list[str] | None = None) -> BenchResult:
    ap = argparse.ArgumentParser(prog="python -m bench xsd", description="BX: XSD validation vs xmllint --stream")
    ap.add_argument("--size-mb", type=float, default=20.0, help="journal part size (the issue's figure: 200)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per side; the best time is reported")
    ap.add_argument("--quick", action="store_true", help="a tiny journal (smoke test)")
    ap.add_argument("--invalid", action="store_true", help="make every contextRef an invalid IDREF")
    ap.add_argument("--modes", default="auto,lxml", help=f"comma-separated ways to run ours ({', '.join(MODES)})")
    ap.add_argument("--child", nargs=3, metavar=("FILE", "SCHEMAS", "MODE"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv or [])
    if a.child:
        raise SystemExit(child(*a.child))
    size = None if a.quick else a.size_mb
    tag = "quick" if a.quick else f"{a.size_mb:g}mb"
    journal = make_sample(out_dir() / f"bx-samples-{tag}", size, a.invalid)
    schemas = schema_dir()
    mb = journal.stat().st_size / _MB
    result = BenchResult(
        BENCH_ID,
        f"XSD validation of one {mb:,.1f} MB journal ({'schema-invalid' if a.invalid else 'valid'}) "
        "against GİB's edefter.xsd",
        "xmllint --noout --stream --nonet --schema edefter.xsd FILE on the same file, same run",
        params={"size_mb": a.size_mb, "quick": a.quick, "repeat": a.repeat, "file_mb": round(mb, 1),
                "invalid": a.invalid},
    )
    modes = [m for m in a.modes.split(",") if m]
    if not modes or any(m not in MODES for m in modes):
        ap.error(f"--modes: choose from {', '.join(MODES)}")
    base_cmd = ["xmllint", "--noout", "--stream", "--nonet", "--schema", str(schemas / "edefter.xsd"), str(journal)]
    xs: list[tuple[float, float, int, str, float]] = []
    runs: dict[str, list[tuple[float, float, int, str, float]]] = {m: [] for m in modes}
    for _ in range(a.repeat):  # interleaved, so load drift hits every side alike
        xs.append(_xsd_timed(base_cmd))
        for m in modes:
            runs[m].append(_xsd_timed([sys.executable, "-m", "bench.bench_xsd", "--child", str(journal), str(schemas), m]))
    x_wall, x_rss, x_cpu = min(r[0] for r in xs), max(r[1] for r in xs), min(r[4] for r in xs)
    result.add("xmllint --stream wall time", x_wall, "s")
    result.add("xmllint --stream CPU time", x_cpu, "s")
    result.add("xmllint --stream peak RSS", x_rss, "MiB")
    all_bounded = x_rss <= GOAL_RSS_MIB
    for m in modes:
        rs = runs[m]
        w, r, c = min(x[0] for x in rs), max(x[1] for x in rs), min(x[4] for x in rs)
        result.add(f"ours[{m}] wall time (process incl. imports + schema load)", w, "s")
        result.add(f"ours[{m}] CPU time (user+sys, incl. children)", c, "s")
        result.add(f"ours[{m}] peak RSS (largest process)", r, "MiB", f"≤ {GOAL_RSS_MIB:g} MiB", r <= GOAL_RSS_MIB)
        result.add(f"ours[{m}] speed ratio xmllint/ours (wall)", x_wall / w, "×")
        result.add(f"ours[{m}] throughput", mb / w, "MB/s")
        all_bounded = all_bounded and r <= GOAL_RSS_MIB
        result.notes.extend(line for line in rs[0][3].splitlines() if line.startswith("ours["))
    expected_rc = 3 if a.invalid else 0
    agree = all(r[2] == expected_rc for r in xs) and all(r[2] == expected_rc for v in runs.values() for r in v)
    result.add("every side gives the expected verdict", 1.0 if agree else 0.0, "bool", "1", agree)
    if not agree:
        result.notes.append("xmllint: " + xs[0][3].strip()[-300:])
    result.notes.append("modes: " + "; ".join(f"{m} = {MODES[m]}" for m in modes))
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(PROJECT_ROOT))
    r = main(sys.argv[1:])
    print(r.render())

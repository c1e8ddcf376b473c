"""B1: package a month (deterministic per-file zips + SHA-256 manifest) vs ``zip -6`` + ``sha256sum``.

Input: one generated, signed month (include.edefter.sample) whose journal parts are filled to
``--part-mb`` (default 200 MB) each, cached under bench/out/b1-data between runs.

Ours: ``include.edefter.packaging.package_files`` over the month in upload order, in a fresh
child process (so its peak RSS is its own), writing one deterministic zip per file and the
manifest (SHA-256 of every XML and every zip).
Baseline in the same run: per file ``zip -6 -X -j -q`` then ``sha256sum`` over the XML and the zip
(the same two hashes ours records). Sides alternate ``--repeat`` times; medians are reported.
Goals (issue 8): ≥ 3× faster, zips ≤ 1.02× ``zip -6``'s size, peak RSS ≤ 100 MB.
A second run of ours must give byte-identical zips (determinism), reported as a metric.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from bench import BenchResult, out_dir, project_env

BENCH_ID = "B1"
_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from pathlib import Path
    from include.edefter.packaging import package_files, DEFLATE_LIB, PACKER_VERSION, DEFAULT_WORKERS
    srcs = [Path(p) for p in json.loads(sys.argv[1])]
    dest = Path(sys.argv[2])
    t0 = time.perf_counter()
    m = package_files(srcs, dest)
    m.write(dest / "manifest.json")
    t1 = time.perf_counter()
    print("BENCH_JSON " + json.dumps({
        "seconds": t1 - t0,
        "zip_bytes": sum(f.zip_size for f in m.files),
        "xml_bytes": sum(f.xml_size for f in m.files),
        "zip_sha256": [f.zip_sha256 for f in m.files],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "lib": DEFLATE_LIB, "level": PACKER_VERSION, "workers": DEFAULT_WORKERS,
    }))
    """
)


def month_files(part_mb: int, parts: int) -> list[Path]:
    """A signed month with ``parts`` journal parts of about ``part_mb`` MB (cached)."""
    from include.edefter.naming import Period
    from include.edefter.sample import TestPKI, generate_month

    root = out_dir("b1-data", f"{part_mb}mb-x{parts}")
    done = root / "DONE.json"
    if done.exists():
        return [Path(p) for p in json.loads(done.read_text())]
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    pki = TestPKI.create(root / "pki")
    mf = generate_month(
        root / "month",
        taxpayer_id="1234567801",
        company_name="Bench A.Ş.",
        period=Period(2025, 1),
        pki=pki,
        parts=parts,
        part_size_bytes=part_mb * 1024 * 1024,
    )
    from include.edefter.discovery import discover

    disc = discover(mf.directory)
    (ledger_set,) = disc.sets
    files = [str(disc.found(n).path) for n in ledger_set.ordered_files()]
    done.write_text(json.dumps(files))
    return [Path(p) for p in files]


def run_ours(files: list[Path], dest: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps([str(f) for f in files]), str(dest)],
        env=project_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in proc.stdout.splitlines() if x.startswith("BENCH_JSON "))
    return json.loads(line[len("BENCH_JSON ") :])


def run_baseline(files: list[Path], dest: Path) -> dict[str, Any]:
    dest.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    zips = []
    for f in files:
        z = dest / (f.stem + ".zip")
        z.unlink(missing_ok=True)
        subprocess.run(["zip", "-6", "-X", "-j", "-q", str(z), str(f)], check=True)
        zips.append(z)
    subprocess.run(["sha256sum", *map(str, files), *map(str, zips)], check=True, capture_output=True)
    t1 = time.perf_counter()
    return {"seconds": t1 - t0, "zip_bytes": sum(z.stat().st_size for z in zips)}


def main(argv: list[str] | None = None) -> BenchResult:
    ap = argparse.ArgumentParser(prog="python -m bench package", description=__doc__)
    ap.add_argument("--part-mb", type=int, default=200)
    ap.add_argument("--parts", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="20 MB parts, 1 repeat")
    a = ap.parse_args(argv or [])
    if a.quick:
        a.part_mb, a.repeat = 20, 1
    files = month_files(a.part_mb, a.parts)
    total_mb = sum(f.stat().st_size for f in files) / 1024 / 1024
    result = BenchResult(
        BENCH_ID,
        f"package a month: {len(files)} files, {total_mb:,.0f} MB ({a.parts} parts of ~{a.part_mb} MB)",
        "zip -6 -X -j per file + sha256sum of every XML and zip, same files, same run, alternating",
        params={"part_mb": a.part_mb, "parts": a.parts, "repeat": a.repeat, "files": len(files)},
    )
    ours: list[dict[str, Any]] = []
    base: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-b1-") as tmp:
        for i in range(a.repeat):
            base.append(run_baseline(files, Path(tmp) / f"base-{i}"))
            ours.append(run_ours(files, Path(tmp) / f"ours-{i}"))
            shutil.rmtree(Path(tmp) / f"base-{i}", ignore_errors=True)
        again = run_ours(files, Path(tmp) / "ours-again")
    t_ours = statistics.median(o["seconds"] for o in ours)
    t_base = statistics.median(b["seconds"] for b in base)
    speed = t_base / t_ours
    size_ratio = ours[0]["zip_bytes"] / base[0]["zip_bytes"]
    rss = max(o["peak_rss_mb"] for o in ours)
    result.add("ours (median)", t_ours, "s")
    result.add("zip -6 + sha256sum (median)", t_base, "s")
    result.add("throughput ours", total_mb / t_ours, "MB/s")
    result.add("speed-up vs baseline", speed, "x", "≥ 3", speed >= 3)
    result.add("zip size vs zip -6", size_ratio, "ratio", "≤ 1.02", size_ratio <= 1.02)
    result.add("peak RSS ours", rss, "MB", "≤ 100", rss <= 100)
    identical = again["zip_sha256"] == ours[0]["zip_sha256"]
    result.add("second run byte-identical", 1.0 if identical else 0.0, "bool", "= 1", identical)
    result.notes.append(f"deflate: {ours[0]['level']}, {ours[0]['workers']} threads")
    return result


if __name__ == "__main__":
    print(main(sys.argv[1:]).render())

"""B3: one whole month from "berats present" to "Yedeklendi" (~1.6 GB of ledgers) vs zip -6 + sha256sum + curl -T.

What is measured:

* ours — the pipeline's own task functions (include.pipeline.tasks), called directly, not through Airflow
  (no scheduler, no triggerer, no task start-up): ``verify_month`` (completeness, name ↔ content, signature-
  value chain and the full cryptographic check against the sample PKI's test CA and test GİB seal) →
  ``upload_month`` (deterministic zips re-hashed against verify's pins, upload in order, submit) →
  poll the status query until final (what the deferrable sensor does, 0.2 s poll) → ``record_month``
  (evidence). Against the real integrator service on loopback (fs + SQLite). Runs in a child process, whose
  peak RSS is reported.
* baseline — for every file of the same month, sequentially: ``zip -6 -j -X``, ``sha256sum`` over the zips,
  ``curl -T`` each zip to a bare Python HTTP sink (http.server in its own process). The baseline does
  strictly less work: no verification at all, no server-side checks, no validation wait, no evidence.

Goals (issue 8): ours ≤ 2.0× the baseline's wall time; ``verify`` at ≥ 1.0× the throughput of
``xmllint --stream --noout`` over the same files in the same run (a plain streaming parse). The sample month (one taxpayer, ``--parts`` parts of
``--part-mb`` MB journal XML, kebir ≈ ⅔ of it, GİB folder layout) is cached under bench/out/b3-samples-*/.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import PROJECT_ROOT, BenchResult, free_port, out_dir, project_env
from bench.bench_ingest import _SINK, _process, _service_env, create_account

BENCH_ID = "B3"
GOAL_RATIO = 2.0
VERIFY_GOAL = 1.0
TAXPAYER = "5200000001"
PERIOD = (2025, 3)
_MB = 1_000_000


def make_month(root: Path, parts: int, part_bytes: int | None) -> dict[str, Any]:
    """Generate (or reuse) the month; returns folder, trust anchors and the file list."""
    from include.edefter.naming import Period
    from include.edefter.sample import TestPKI, generate_month

    done = root / "DONE.json"
    if done.is_file():
        return json.loads(done.read_text())  # type: ignore[no-any-return]
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    pki = TestPKI.create(root / "pki")
    folder = root / "edefter"
    month = generate_month(
        folder, taxpayer_id=TAXPAYER, company_name="Bench Aylık A.Ş.", period=Period(*PERIOD), pki=pki,
        parts=parts, part_size_bytes=part_bytes, layout="gib",
    )  # fmt: skip
    info = {
        "folder": str(folder),
        "trusted_roots": str(pki.ca_cert_path),
        "gib_certs": str(pki.gib_cert_path),
        "files": [str(p) for p in month.files],
        "bytes": sum(p.stat().st_size for p in month.files),
    }
    done.write_text(json.dumps(info))
    return info


def _unit(folder: str) -> Any:
    from include.pipeline.config import parse_config

    cfg = parse_config(
        {"companies": [{"id": "bench-aylik", "taxpayer_id": TAXPAYER, "name": "Bench Aylık A.Ş.", "folder": folder,
                        "automatic": False, "start_month": "2025-01", "integrator_conn_id": "bench_integrator"}]}
    )  # fmt: skip
    return cfg.units[0]


def run_ours(spec: dict[str, Any]) -> dict[str, Any]:
    """The child process: the task functions in DAG order; step times and this process's peak RSS."""
    from include.edefter.naming import Period
    from include.edefter.status import BackupStatus
    from include.integrator.client import IntegratorClient
    from include.pipeline import tasks

    unit = _unit(spec["folder"])
    period = Period(*PERIOD)
    steps: dict[str, float] = {}
    t = time.perf_counter()
    start = t

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        steps[name] = now - t
        t = now

    verify = tasks.verify_month(unit, period)
    lap("verify")
    with IntegratorClient(spec["url"], spec["user"], spec["password"], retries=2) as client:
        upload = tasks.upload_month(unit, period, verify, client)
        lap("package + upload + submit")
        final = client.wait_for_final(TAXPAYER, None, period, timeout=3600, poll=0.2)
        lap("wait for Yedeklendi")
        confirmation = {
            "backup_status": final.status.value,
            "message": final.message_tr,
            "message_en": final.message_en,
            "retention_until": final.retention_until.isoformat() if final.retention_until else None,
        }
        record = tasks.record_month(unit, period, dag_id=unit.dag_id, run_id="bench", berats=None, verify=verify,
                                    upload=upload, confirmation=confirmation, client=client)  # fmt: skip
        lap("record")
    return {
        "total_s": time.perf_counter() - start,
        "steps": steps,
        "status": final.status.value,
        "ok": final.status is BackupStatus.YEDEKLENDI,
        "message": final.message_tr,
        "files": record["files"],
        "zip_bytes": sum(f["zip_size"] for f in upload["files"]),
        "xml_bytes": sum(f["xml_size"] for f in upload["files"]),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_baseline(files: list[str], work: Path, sink_url: str) -> dict[str, Any]:
    work.mkdir(parents=True)
    steps = {"zip -6": 0.0, "sha256sum": 0.0, "curl -T": 0.0}
    zips: list[Path] = []
    start = time.perf_counter()
    t = start
    for f in files:
        z = work / (Path(f).stem + ".zip")
        subprocess.run(["zip", "-q", "-6", "-j", "-X", str(z), f], check=True)
        zips.append(z)
    steps["zip -6"] = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run(["sha256sum", *map(str, zips)], check=True, capture_output=True)
    steps["sha256sum"] = time.perf_counter() - t
    t = time.perf_counter()
    for z in zips:
        subprocess.run(["curl", "-sS", "-f", "-o", os.devnull, "-T", str(z), f"{sink_url}/v1/files/{z.name}"], check=True)
    steps["curl -T"] = time.perf_counter() - t
    return {"total_s": time.perf_counter() - start, "steps": steps, "zip_bytes": sum(z.stat().st_size for z in zips)}


def main(argv: list[str] | None = None) -> BenchResult:
    ap = argparse.ArgumentParser(prog="python -m bench month", description="B3: one month end to end")
    ap.add_argument("--parts", type=int, default=8)
    ap.add_argument("--part-mb", type=float, default=120.0, help="journal XML MB per part (kebir ≈ ⅔ of it)")
    ap.add_argument("--quick", action="store_true", help="one tiny part (smoke test)")
    a = ap.parse_args(argv or [])
    part_bytes: int | None = int(a.part_mb * _MB)
    if a.quick:
        a.parts, part_bytes = 1, None
    tag = "quick" if a.quick else f"{a.parts}p-{a.part_mb:g}mb"
    spec = make_month(out_dir() / f"b3-samples-{tag}", a.parts, part_bytes)

    result = BenchResult(
        BENCH_ID,
        f"one month berats present → Yedeklendi, {spec['bytes'] / _MB:,.1f} MB of e-Defter files (task functions, not Airflow)",
        "zip -6 + sha256sum + curl -T to a bare HTTP sink, sequential, same files (no verification at all)",
        params={"parts": a.parts, "part_mb": a.part_mb, "quick": a.quick},
    )
    env = _service_env()
    # The service verifies the set cryptographically too: trust the samples' test CA and GİB seal.
    env.update(EDEFTER_TRUSTED_ROOTS=spec["trusted_roots"], EDEFTER_GIB_CERTS=spec["gib_certs"])
    tmp = Path(tempfile.mkdtemp(prefix="bench-b3-"))
    try:
        data = tmp / "data"
        port, sink_port = free_port(), free_port()
        url, sink_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sink_port}"
        serve = [sys.executable, "-m", "include.integrator", "serve", "--host", "127.0.0.1", "--port", str(port),
                 "--data", str(data), "--log-level", "warning"]  # fmt: skip
        with _process([sys.executable, "-c", _SINK, str(sink_port)], sink_url + "/health", tmp / "sink.log", env):
            base = run_baseline(spec["files"], tmp / "baseline", sink_url)
        xmllint_s: float | None = None
        if shutil.which("xmllint"):
            t0 = time.perf_counter()
            for f in spec["files"]:
                subprocess.run(["xmllint", "--stream", "--noout", "--huge", str(f)], check=True, capture_output=True)
            xmllint_s = time.perf_counter() - t0
        with _process(serve, url + "/health", tmp / "service.log", env):
            create_account(data, env, "bench-aylik", "bench-aylik-pw", TAXPAYER)
            child_spec = {"folder": spec["folder"], "url": url, "user": "bench-aylik", "password": "bench-aylik-pw"}
            child_env = project_env(
                EDEFTER_WORK_DIR=str(tmp / "work"),
                EDEFTER_EVIDENCE_DIR=str(tmp / "evidence"),
                EDEFTER_TRUSTED_ROOTS=spec["trusted_roots"],
                EDEFTER_GIB_CERTS=spec["gib_certs"],
            )
            code = "import json,sys; from bench.bench_month import run_ours; print('BENCH_JSON '+json.dumps(run_ours(json.loads(sys.argv[1]))))"
            proc = subprocess.run([sys.executable, "-c", code, json.dumps(child_spec)], cwd=PROJECT_ROOT,
                                  env=child_env, capture_output=True, text=True, timeout=7200)  # fmt: skip
            line = next((x for x in proc.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
            if line is None:
                raise RuntimeError(f"B3 child failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}")
            ours = json.loads(line.removeprefix("BENCH_JSON "))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ratio = ours["total_s"] / base["total_s"]
    full = not a.quick
    result.add("ours: berats present → Yedeklendi", ours["total_s"], "s")
    result.add("baseline: zip -6 + sha256sum + curl -T", base["total_s"], "s")
    result.add("ours / baseline wall time", ratio, "×", f"≤ {GOAL_RATIO:g}×" if full else None,
               (ratio <= GOAL_RATIO) if full else None)  # fmt: skip
    result.add("month reached Yedeklendi", 1 if ours["ok"] else 0, "", "1", bool(ours["ok"]))
    for name, s in ours["steps"].items():
        result.add(f"ours: {name}", s, "s")
    for name, s in base["steps"].items():
        result.add(f"baseline: {name}", s, "s")
    if xmllint_s is not None and ours["steps"].get("verify"):
        vratio = xmllint_s / ours["steps"]["verify"]
        result.add("baseline: xmllint --stream --noout, all files", xmllint_s, "s")
        result.add("verify throughput / xmllint --stream throughput", vratio, "×",
                   f"≥ {VERIFY_GOAL:g}×" if full else None, (vratio >= VERIFY_GOAL) if full else None)  # fmt: skip
    result.add("ours: peak RSS (task functions process)", ours["peak_rss_mb"], "MB")
    result.add("e-Defter bytes in the month", ours["xml_bytes"] / _MB, "MB")
    result.add("ours: zip bytes / baseline zip bytes", ours["zip_bytes"] / base["zip_bytes"], "×")
    result.add("files in the month", ours["files"], "")
    result.notes.append(
        "bytes read per file by ours: verify 2× (facts + cryptographic pass), upload 1× (re-hash + zip); "
        "the integrator reads each stored file once more (set validation)"
    )
    result.notes.append(
        "ours runs the task functions directly (no Airflow scheduling overhead) and does far more than the "
        "baseline: full cryptographic verification, server-side zip/XML checks and set validation, evidence"
    )
    if not ours["ok"]:
        result.notes.append(f"final status: {ours['status']}: {ours['message']}")
    return result


if __name__ == "__main__":
    print(main(sys.argv[1:]).render())

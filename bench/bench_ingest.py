"""B5: integrator ingest on loopback — 8 concurrent uploaders, status p99 at 50 concurrent, nothing lost.

What is measured (all on 127.0.0.1, bounded counts, nothing leaves the machine):

1. Sample data: 8 taxpayers, one signed month each (Y, K, YB, KB, GIB-YB, GIB-KB, DR; ``--parts`` parts of
   about ``--part-mb`` MB of journal XML) from include.edefter.sample.generate_month, each XML packed into
   its one-member zip. Packing is ``stored`` by default: the synthetic ledgers compress ~35×, so deflated
   bodies would be a few hundred KB and the figure would measure request overhead, not ingest; with
   ``stored`` body MB == XML MB and the server still unzips, parses, hashes and stores every byte.
   ``--packing deflate`` uses the pipeline's own packer (include.edefter.packaging) instead.
   Samples are cached under bench/out/b5-samples-<params>/ (deterministic), so re-runs skip generation.
2. The real service: ``python -m include.integrator serve`` (fs storage + SQLite, the defaults) in its own
   process; one account per taxpayer (the CLI's ``account create`` function, in-process).
3. Ingest: 8 threads, one IntegratorClient each, upload their month in the pipeline's order; aggregate
   MB/s = all body bytes / (last finish − first start). Goal ≥ 150 MB/s.
4. Baseline in the same run: a bare Python HTTP sink (http.server.ThreadingHTTPServer in its own process,
   reads and SHA-256s each body, answers like the service) receiving the same bodies from the same client
   code, once before and once after the service run (the spread shows how much the machine's load moved);
   ratio service / mean sink is reported.
5. Each month is submitted; time until all 8 are final (Yedeklendi) is reported.
6. Status query: ``--status-concurrency`` (50) closed-loop clients spread over ``--status-procs`` processes
   (so the client's GIL does not inflate the server's latency), each doing ``--status-queries`` month-status
   calls after validation has finished; p50/p99 latency. Goal p99 ≤ 25 ms. Same load on the sink as baseline.
7. Nothing lost: list every account's files and compare names + SHA-256 with what was sent, download every
   object (the client checks the server's SHA-256) and re-hash it, then run the service's fixity audit.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import zipfile
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bench import PROJECT_ROOT, BenchResult, free_port, out_dir, percentile, project_env

BENCH_ID = "B5"
GOAL_MBPS = 150.0
GOAL_P99_MS = 25.0
UPLOAD_ORDER = ("Y", "K", "YB", "KB", "GIB-YB", "GIB-KB", "DR")
_MB = 1_000_000


@dataclass(frozen=True)
class Item:
    path: Path
    name: str  # the zip file name
    sha256: str
    size: int


@dataclass(frozen=True)
class Tenant:
    taxpayer_id: str
    period: str  # yyyymm
    username: str
    password: str
    items: tuple[Item, ...]

    @property
    def bytes(self) -> int:
        return sum(i.size for i in self.items)


# ------------------------------------------------------------------------------------------ samples


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _pack_stored(xml: Path, dest_dir: Path) -> Path:
    out = dest_dir / (xml.stem + ".zip")
    info = zipfile.ZipInfo(xml.name, date_time=(2025, 4, 20, 9, 15, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    with zipfile.ZipFile(out, "w") as zf, zf.open(info, "w", force_zip64=True) as dst, open(xml, "rb") as src:
        shutil.copyfileobj(src, dst, 1 << 20)
    return out


def make_samples(root: Path, uploaders: int, parts: int, part_bytes: int | None, packing: str) -> list[tuple[str, str, list[Item]]]:
    """(taxpayer_id, yyyymm, items in upload order) per uploader; reuses a complete cache."""
    from include.edefter.naming import Period
    from include.edefter.packaging import package_file
    from include.edefter.sample import TestPKI, generate_month

    done = root / "DONE.json"
    if done.is_file():
        data = json.loads(done.read_text())
        return [(t, p, [Item(root / i["path"], i["name"], i["sha256"], i["size"]) for i in items]) for t, p, items in data]
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    pki = TestPKI.create(root / "pki")
    period = Period(2025, 3)
    out: list[tuple[str, str, list[Item]]] = []
    for u in range(uploaders):
        tid = f"{5_100_000_000 + u:010d}"
        xml_dir, zip_dir = root / "xml" / tid, root / "zip" / tid
        zip_dir.mkdir(parents=True)
        month = generate_month(
            xml_dir, taxpayer_id=tid, company_name=f"Bench Yükleyici {u} A.Ş.", period=period, pki=pki,
            parts=parts, part_size_bytes=part_bytes, seed=u,
        )  # fmt: skip
        items: list[Item] = []
        order = {c: i for i, c in enumerate(UPLOAD_ORDER)}
        for _key, xml in sorted(month.paths.items(), key=lambda kv: (kv[0][1], order[kv[0][0]])):
            z = _pack_stored(xml, zip_dir) if packing == "stored" else Path(package_file(xml, zip_dir).zip_path)
            items.append(Item(z, z.name, _sha(z), z.stat().st_size))
        shutil.rmtree(xml_dir)  # the zips hold the same bytes; keep the cache half the size
        out.append((tid, period.yyyymm, items))
    done.write_text(
        json.dumps(
            [(t, p, [{"path": str(i.path.relative_to(root)), "name": i.name, "sha256": i.sha256, "size": i.size}
                     for i in items]) for t, p, items in out]
        )
    )  # fmt: skip
    return out


# ------------------------------------------------------------------------------------------ servers

# The bare sink: http.server, one thread per connection; reads + hashes each PUT body and answers
# with the fields IntegratorClient.upload_file / month_status parse, so the same client code drives both.
_SINK = textwrap.dedent(
    """
    import hashlib, json, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    STATUS = json.dumps({"taxpayer_id": "0", "branch": None, "period": "202503", "status": "Yedeklendi",
                         "message_tr": "", "message_en": "", "files": [], "problems": []}).encode()

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes: avoid the 40 ms delayed-ACK stall
        def log_message(self, *a):
            pass
        def _send(self, body, code=200):
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def do_PUT(self):
            n = int(self.headers["Content-Length"])
            h = hashlib.sha256()
            left = n
            while left:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                h.update(chunk)
                left -= len(chunk)
            name = self.path.rsplit("/", 1)[-1]
            self._send(json.dumps({"name": name, "sha256": h.hexdigest(), "size": n - left, "created": True,
                                   "uploaded_at": "2025-04-20T09:15:00Z", "retention_until": "2035-12-31",
                                   "storage": "sink"}).encode())
        def do_GET(self):
            self._send(STATUS if self.path.startswith("/v1/months/") else b'{"status": "ok"}')

    srv = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
    srv.daemon_threads = True
    srv.serve_forever()
    """
)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout} s")


@contextmanager
def _process(cmd: list[str], ready_url: str, log: Path, env: dict[str, str]) -> Generator[subprocess.Popen[bytes]]:
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        _wait_ready(ready_url, proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _service_env() -> dict[str, str]:
    env = project_env()
    for k in list(env):
        if k.startswith("INTEGRATOR_"):
            del env[k]
    return env


def _create_pg_database(server: str) -> str:
    import sqlalchemy

    name = f"bench_b5_{os.getpid()}_{int(time.time())}"
    eng = sqlalchemy.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    eng.dispose()
    return name


def _drop_pg_database(server: str, name: str) -> None:
    import sqlalchemy

    eng = sqlalchemy.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    eng.dispose()


def create_account(data: Path, env: dict[str, str], username: str, password: str, taxpayer_id: str) -> None:
    """The same call as ``python -m include.integrator account create`` makes, in-process: spawning the CLI
    8 times costs ~1 s each on a busy machine and is not what this bench measures."""
    from include.integrator.auth import create_account as _create
    from include.integrator.context import ServiceContext
    from include.integrator.settings import Settings

    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the service's env (no INTEGRATOR_* overrides), so both open the same DB
    try:
        ctx = ServiceContext(Settings.from_env(data))
    finally:
        os.environ.clear()
        os.environ.update(old)
    try:
        with ctx.session() as sess, sess.begin():
            _create(sess, username, password, taxpayer_id, None)
    finally:
        ctx.close()


# ------------------------------------------------------------------------------------------ load


def upload_all(url: str | list[str], tenants: list[Tenant]) -> tuple[float, list[dict[str, Any]]]:
    """One thread + client per tenant, started together; returns (seconds first start → last end, receipts).

    With several URLs (replicas), tenant i talks to URL i mod n (a round-robin load balancer)."""
    urls = [url] if isinstance(url, str) else list(url)
    from include.integrator.client import IntegratorClient

    barrier = threading.Barrier(len(tenants))
    spans: list[tuple[float, float]] = []
    receipts: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int, t: Tenant) -> None:
        try:
            with IntegratorClient(urls[i % len(urls)], t.username, t.password, retries=0, timeout=(10, 600)) as c:
                c.health()  # connection warm, outside the timed span
                barrier.wait()
                start = time.perf_counter()
                got = [c.upload_file(i.path, i.name, sha256=i.sha256) for i in t.items]
                end = time.perf_counter()
            with lock:
                spans.append((start, end))
                receipts.extend({"name": r.name, "sha256": r.sha256, "size": r.size, "created": r.created} for r in got)
        except BaseException as exc:  # noqa: BLE001 - re-raised below in the main thread
            with lock:
                errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i, t), daemon=True) for i, t in enumerate(tenants)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise RuntimeError(f"upload failed: {errors[0]!r}") from errors[0]
    return max(e for _, e in spans) - min(s for s, _ in spans), receipts


def _status_worker(args: tuple[str | list[str], list[tuple[str, str, str, str]], int, int, float]) -> list[float]:
    """One process: `threads` closed-loop clients, each `queries` month-status calls; latencies in ms."""
    from include.integrator.client import IntegratorClient

    url, creds, threads, queries, start_at = args
    urls = [url] if isinstance(url, str) else list(url)
    lat: list[float] = []
    lock = threading.Lock()

    def run(k: int) -> None:
        user, pw, tid, period = creds[k % len(creds)]
        mine: list[float] = []
        with IntegratorClient(urls[k % len(urls)], user, pw, retries=0, timeout=(10, 60)) as c:
            c.month_status(tid, None, period)  # warm the connection
            while time.time() < start_at:  # all processes start together
                time.sleep(0.001)
            for _ in range(queries):
                t0 = time.perf_counter()
                c.month_status(tid, None, period)
                mine.append((time.perf_counter() - t0) * 1000)
        with lock:
            lat.extend(mine)

    ths = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    return lat


def status_load(url: str | list[str], tenants: list[Tenant], concurrency: int, procs: int, queries: int) -> tuple[list[float], float]:
    """Latencies (ms) of concurrency × queries status calls, and the achieved rate (req/s)."""
    creds = [(t.username, t.password, t.taxpayer_id, t.period) for t in tenants]
    procs = max(1, min(procs, concurrency))
    if procs == 1:  # in-process (smoke runs): no worker start-up cost
        t0 = time.time() + 0.2
        lat = _status_worker((url, creds, concurrency, queries, t0))
        return lat, len(lat) / max(time.time() - t0, 1e-9)
    per = [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]
    start_at = time.time() + 1.5 + 0.3 * procs  # time for the workers to import and warm up
    ctx = mp.get_context("spawn")  # no fork of a threaded process
    with ctx.Pool(procs) as pool:
        t0 = time.time()
        chunks = pool.map(_status_worker, [(url, creds, n, queries, start_at) for n in per])
        elapsed = time.time() - max(t0, start_at)
    lat = [x for c in chunks for x in c]
    return lat, len(lat) / max(elapsed, 1e-9)


# ------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> BenchResult:
    ap = argparse.ArgumentParser(prog="python -m bench ingest", description="B5: integrator ingest on loopback")
    ap.add_argument("--uploaders", type=int, default=8)
    ap.add_argument("--parts", type=int, default=2, help="parts per month (each: Y, K, YB, KB, GIB-YB, GIB-KB)")
    ap.add_argument("--part-mb", type=float, default=24.0, help="journal XML MB per part (kebir is ~2/3 of it)")
    ap.add_argument("--packing", choices=["stored", "deflate"], default="stored")
    ap.add_argument("--status-concurrency", type=int, default=50)
    ap.add_argument("--status-procs", type=int, default=5)
    ap.add_argument("--status-queries", type=int, default=40, help="queries per concurrent client")
    ap.add_argument("--keep", action="store_true", help="keep the service's data dir (printed)")
    ap.add_argument("--quick", action="store_true", help="tiny months, 10×5 status queries (smoke test)")
    ap.add_argument("--replicas", type=int, default=1,
                    help="serve processes on one PostgreSQL database and one data directory (>1 needs PostgreSQL)")
    ap.add_argument("--pg", default="postgresql+psycopg2://postgres@127.0.0.1:5432",
                    help="PostgreSQL server for --replicas > 1 (a fresh database is created and dropped)")
    a = ap.parse_args(argv or [])
    part_bytes: int | None = int(a.part_mb * _MB)
    if a.quick:
        part_bytes, a.parts, a.status_concurrency, a.status_procs, a.status_queries = None, 1, 10, 1, 5

    result = BenchResult(
        BENCH_ID,
        f"integrator ingest on loopback, {a.uploaders} concurrent uploaders",
        "bare Python HTTP sink (ThreadingHTTPServer, own process, reads + SHA-256s the body), same client, same bodies",
        params={k: v for k, v in vars(a).items() if k != "keep"},
    )
    tag = "quick" if a.quick else f"{a.uploaders}u-{a.parts}p-{a.part_mb:g}mb-{a.packing}"
    samples = make_samples(out_dir() / f"b5-samples-{tag}", a.uploaders, a.parts, part_bytes, a.packing)
    env = _service_env()
    # The service verifies every set cryptographically: trust the samples' test CA and GİB seal.
    certs = out_dir() / f"b5-samples-{tag}" / "pki" / "test-certificates"
    env.update(EDEFTER_TRUSTED_ROOTS=str(certs / "ca.pem"), EDEFTER_GIB_CERTS=str(certs / "gib-seal.pem"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-b5-"))
    pg_db: str | None = None
    try:
        data = tmp / "data"
        if a.replicas > 1:
            pg_db = _create_pg_database(a.pg)
            env["INTEGRATOR_DB_URL"] = f"{a.pg}/{pg_db}"
        ports = [free_port() for _ in range(max(1, a.replicas))]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        url = urls[0]
        stack = contextlib.ExitStack()
        for i, port in enumerate(ports):
            serve = [sys.executable, "-m", "include.integrator", "serve", "--host", "127.0.0.1", "--port", str(port),
                     "--data", str(data), "--log-level", "warning"]  # fmt: skip
            stack.enter_context(_process(serve, f"http://127.0.0.1:{port}/health", tmp / f"service{i}.log", env))
        with stack:
            tenants: list[Tenant] = []
            for i, (tid, period, items) in enumerate(samples):
                user, pw = f"bench{i}", hashlib.sha256(os.urandom(16)).hexdigest()
                create_account(data, env, user, pw, tid)
                tenants.append(Tenant(tid, period, user, pw, tuple(items)))
            total = sum(t.bytes for t in tenants)

            # Baseline before and after the service, same bodies: on a shared machine the two sink runs
            # show how much the load moved while the service was measured.
            sink_port = free_port()
            sink_url = f"http://127.0.0.1:{sink_port}"
            with _process([sys.executable, "-c", _SINK, str(sink_port)], f"{sink_url}/health", tmp / "sink.log", env):
                sink_s1, sink_receipts = upload_all(sink_url, tenants)
                sink_lat, sink_rate = status_load(sink_url, tenants, a.status_concurrency, a.status_procs,
                                                  a.status_queries)  # fmt: skip
                svc_s, receipts = upload_all(urls, tenants)
                sink_s2, sink_receipts2 = upload_all(sink_url, tenants)
            sink_s = (sink_s1 + sink_s2) / 2
            sent = {i.name: i.sha256 for t in tenants for i in t.items}
            for got in (sink_receipts, sink_receipts2):
                if {r["name"]: r["sha256"] for r in got} != sent:
                    raise RuntimeError("the sink received different bytes than were sent")
            bad = [r for r in receipts if sent.get(r["name"]) != r["sha256"] or not r["created"]]
            if bad or len(receipts) != len(sent):
                raise RuntimeError(f"service receipts differ from what was sent: {bad[:3]}")

            # Submit every month and wait for the verdicts.
            from include.edefter.status import BackupStatus
            from include.integrator.client import IntegratorClient

            t0 = time.perf_counter()
            finals = []
            clients = {t.taxpayer_id: IntegratorClient(url, t.username, t.password, retries=2) for t in tenants}
            try:
                for t in tenants:
                    clients[t.taxpayer_id].submit_month(t.taxpayer_id, None, t.period, [(i.name, i.sha256) for i in t.items])
                for t in tenants:
                    finals.append(clients[t.taxpayer_id].wait_for_final(t.taxpayer_id, None, t.period, timeout=1800))
                validate_s = time.perf_counter() - t0
                not_ok = [(f.taxpayer_id, f.status.value, f.message_en) for f in finals if f.status is not BackupStatus.YEDEKLENDI]

                svc_lat, svc_rate = status_load(urls, tenants, a.status_concurrency, a.status_procs, a.status_queries)

                # Nothing lost: list, compare, download + re-hash every object.
                listed: dict[str, str] = {}
                dl_dir = tmp / "restore"
                dl_dir.mkdir()
                for t in tenants:
                    c = clients[t.taxpayer_id]
                    for f in c.list_files(t.taxpayer_id):
                        listed[f.name] = f.sha256
                        got = c.download(f.name, dl_dir / f.name)
                        if _sha(dl_dir / f.name) != got or got != sent.get(f.name):
                            raise RuntimeError(f"restored {f.name} differs from what was sent")
                        (dl_dir / f.name).unlink()
            finally:
                for c in clients.values():
                    c.close()
        audit = subprocess.run(
            [sys.executable, "-m", "include.integrator", "audit", "--data", str(data)],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
    finally:
        if pg_db is not None:
            _drop_pg_database(a.pg, pg_db)
        if a.keep:
            print(f"B5 data kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    # Attribution: the service's per-upload container + XML check alone, one thread, on the largest body.
    from include.edefter.naming import parse_name
    from include.integrator.ingest import check_zip

    biggest = max((i for t in tenants for i in t.items), key=lambda i: i.size)
    t0 = time.perf_counter()
    check_zip(biggest.path, parse_name(biggest.name), max_uncompressed=1 << 40, max_ratio=1 << 20)
    check_mbps = biggest.size / _MB / (time.perf_counter() - t0)

    lost = sorted(set(sent) - set(listed))
    changed = sorted(n for n in sent if n in listed and listed[n] != sent[n])
    extra = sorted(set(listed) - set(sent))
    full = not a.quick
    mbps = total / _MB / svc_s
    sink_mbps = total / _MB / sink_s
    p99 = percentile(svc_lat, 99)
    result.add("service ingest, aggregate", mbps, "MB/s", f"≥ {GOAL_MBPS:g} MB/s" if full else None,
               (mbps >= GOAL_MBPS) if full else None)  # fmt: skip
    result.add("baseline: bare HTTP sink, aggregate (mean of before/after)", sink_mbps, "MB/s")
    result.add("baseline: sink before the service", total / _MB / sink_s1, "MB/s")
    result.add("baseline: sink after the service", total / _MB / sink_s2, "MB/s")
    ratio = mbps / sink_mbps
    result.add("service / sink throughput", ratio, "×", "≥ 0.6×" if full else None, (ratio >= 0.6) if full else None)
    result.add(f"status p99 at {a.status_concurrency} concurrent", p99, "ms",
               f"≤ {GOAL_P99_MS:g} ms" if full else None, (p99 <= GOAL_P99_MS) if full else None)  # fmt: skip
    result.add("service-side check_zip alone, 1 thread (largest body)", check_mbps, "MB/s")
    result.add("status p50", percentile(svc_lat, 50), "ms")
    result.add("status throughput", svc_rate, "req/s")
    result.add("baseline: sink status p99", percentile(sink_lat, 99), "ms")
    result.add("baseline: sink status p50", percentile(sink_lat, 50), "ms")
    p99_ratio = p99 / max(percentile(sink_lat, 99), 1e-9)
    rate_ratio = svc_rate / max(sink_rate, 1e-9)
    result.add("status p99 / sink p99", p99_ratio, "×", "≤ 1.5×" if full else None, (p99_ratio <= 1.5) if full else None)
    result.add("status throughput / sink's", rate_ratio, "×", "≥ 0.5×" if full else None,
               (rate_ratio >= 0.5) if full else None)  # fmt: skip
    result.add("baseline: sink status throughput", sink_rate, "req/s")
    result.add("submit → all months final", validate_s, "s")
    result.add("files lost / changed / unexpected", len(lost) + len(changed) + len(extra), "",
               "0", not (lost or changed or extra))  # fmt: skip
    result.add("months not Yedeklendi", len(not_ok), "", "0", not not_ok)
    result.add("fixity audit exit code", audit.returncode, "", "0", audit.returncode == 0)
    result.add("bytes uploaded per side", total / _MB, "MB")
    result.add("files uploaded per side", len(sent), "")
    result.add("status queries per side", len(svc_lat), "")
    result.notes.append(
        f"packing={a.packing}; {a.uploaders} taxpayers × {a.parts} part(s) × "
        + ("40 entries (quick)" if a.quick else f"~{a.part_mb:g} MB journal XML")
        + "; "
        + (f"service = {a.replicas} uvicorn processes, fs storage in one data directory, PostgreSQL metadata "
           "(clients round-robin over the replicas)" if a.replicas > 1 else
           "service = fs storage + SQLite metadata, one uvicorn process")
        + "; client and server share the machine"
    )
    if not_ok:
        result.notes.append(f"months not Yedeklendi: {not_ok[:3]}")
    if lost or changed or extra:
        result.notes.append(f"lost={lost[:5]} changed={changed[:5]} unexpected={extra[:5]}")
    if audit.returncode != 0:
        result.notes.append(f"audit: {(audit.stdout + audit.stderr)[-600:]}")
    return result


if __name__ == "__main__":
    print(main(sys.argv[1:]).render())

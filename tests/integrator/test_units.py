"""Retention rule, password hashing, client retry policy (against a real local HTTP server), CLI, TLS."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from include.edefter.naming import Period
from include.edefter.retention import MIN_RETENTION_YEARS, conservative_fiscal_year_end, retention_end
from include.integrator.auth import hash_password, verify_password
from include.integrator.client import (
    AuthError,
    ConflictError,
    IntegratorClient,
    RejectedError,
    ServerError,
    TransportError,
)
from tests.conftest import PROJECT_ROOT
from tests.integrator.conftest import ServiceProc, _base_env, free_port, zip_month

# ------------------------------------------------------------------------------------------ retention


def test_retention_end_examples() -> None:
    assert retention_end(dt.date(2019, 12, 31)) == dt.date(2029, 12, 31)
    assert retention_end(dt.date(2020, 6, 30)) == dt.date(2030, 12, 31)  # special fiscal year
    assert retention_end(dt.date(2019, 12, 31), 15) == dt.date(2034, 12, 31)
    with pytest.raises(ValueError):
        retention_end(dt.date(2019, 12, 31), 9)


@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2900, 12, 31)), st.integers(MIN_RETENTION_YEARS, 60))
def test_retention_never_shorter_than_ten_years(fye: dt.date, years: int) -> None:
    end = retention_end(fye, years)
    assert end.month == 12 and end.day == 31
    assert end.year == fye.year + years
    assert end >= dt.date(fye.year + MIN_RETENTION_YEARS, 12, 31)


@given(st.integers(2000, 2900), st.integers(1, 12))
def test_conservative_fiscal_year_end_covers_any_fiscal_year(year: int, month: int) -> None:
    p = Period(year, month)
    fye = conservative_fiscal_year_end(p)
    # Never earlier than a calendar fiscal year would end.
    assert fye >= dt.date(year, 12, 31) or (month == 1 and fye == dt.date(year, 12, 31))
    assert fye < dt.date(year + 1, month, 1) + dt.timedelta(days=31)


# ------------------------------------------------------------------------------------------ passwords


def test_password_hash_salted_and_verifiable() -> None:
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b and a.startswith("scrypt$")
    assert "correct horse" not in a
    assert verify_password("correct horse", a) and not verify_password("wrong", a)
    assert not verify_password("x", "garbage") and not verify_password("x", "md5$1$2$3$4$5")


# ------------------------------------------------------------------------------------------ client policy


class _Scripted(http.server.BaseHTTPRequestHandler):
    script: list[tuple[int, dict]] = []
    calls: list[str] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        type(self).calls.append(self.command)
        status, body = type(self).script.pop(0) if type(self).script else (200, {"status": "ok"})
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = _answer

    def log_message(self, *a: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[tuple[str, type[_Scripted]]]:
    handler = type("H", (_Scripted,), {"script": [], "calls": []})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", handler
    srv.shutdown()
    srv.server_close()


def _err(code: str) -> dict:
    return {"error": {"code": code, "message_tr": "türkçe ileti", "message_en": "english message", "file": "f.zip"}}


def test_client_retries_5xx_for_idempotent_calls(scripted) -> None:  # type: ignore[no-untyped-def]
    url, h = scripted
    h.script = [(503, _err("metadata.unavailable")), (502, {}), (200, {"status": "ok"})]
    sleeps: list[float] = []
    c = IntegratorClient(url, "u", "p", retries=3, backoff=0.5, sleep=sleeps.append)
    assert c.health() == {"status": "ok"}
    assert h.calls == ["GET", "GET", "GET"]
    assert sleeps == [0.5, 1.0]


def test_client_gives_up_with_server_error(scripted) -> None:  # type: ignore[no-untyped-def]
    url, h = scripted
    h.script = [(500, _err("x"))] * 3
    c = IntegratorClient(url, "u", "p", retries=2, backoff=0, sleep=lambda s: None)
    with pytest.raises(ServerError) as ei:
        c.health()
    assert len(h.calls) == 3 and ei.value.status == 500


@pytest.mark.parametrize(
    ("status", "exc"), [(401, AuthError), (403, AuthError), (409, ConflictError), (400, RejectedError), (413, RejectedError)]
)
def test_client_never_retries_4xx(scripted, status: int, exc: type) -> None:  # type: ignore[no-untyped-def]
    url, h = scripted
    h.script = [(status, _err("some.rule"))]
    c = IntegratorClient(url, "u", "p", retries=5, backoff=0, sleep=lambda s: None)
    with pytest.raises(exc) as ei:
        c.month_status("1234567801", None, "201909")
    assert h.calls == ["GET"]
    assert ei.value.message_tr == "türkçe ileti" and ei.value.message_en == "english message"
    assert ei.value.code == "some.rule" and ei.value.file == "f.zip"


def test_client_connection_errors_become_transport_error() -> None:
    port = free_port()
    sleeps: list[float] = []
    c = IntegratorClient(f"http://127.0.0.1:{port}", "u", "p", retries=2, backoff=0.1, sleep=sleeps.append)
    with pytest.raises(TransportError):
        c.health()
    assert sleeps == [0.1, 0.2]
    assert "p" not in repr(c).replace("http", "")  # the password never shows in repr


# ------------------------------------------------------------------------------------------ CLI + TLS


def _cli(args: list[str], stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "include.integrator", *args],
        cwd=PROJECT_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        env=env or _base_env(),
        timeout=120,
    )


def test_account_create_reads_password_from_stdin_or_env(tmp_path: Path) -> None:
    data = tmp_path / "data"
    secret = "S3cret-pass-from-stdin"
    p = _cli(["account", "create", "--data", str(data), "--username", "acme", "--taxpayer-id", "1234567801"], secret + "\n")
    assert p.returncode == 0, p.stderr
    assert secret not in p.stdout + p.stderr
    assert json.loads(p.stdout)["created"] == "acme"
    env = _base_env() | {"ACME_BRANCH_PW": "another-secret-1"}
    p = _cli(
        ["account", "create", "--data", str(data), "--username", "acme-0001", "--taxpayer-id", "1234567801",
         "--branch", "0001", "--password-env", "ACME_BRANCH_PW"],
        env=env,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "another-secret-1" not in p.stdout + p.stderr
    dup = _cli(["account", "create", "--data", str(data), "--username", "acme", "--taxpayer-id", "1234567801"], "x" * 10)
    assert dup.returncode == 2 and "already exists" in dup.stderr


def test_create_account_rules(tmp_path: Path) -> None:
    from include.integrator.auth import create_account
    from include.integrator.context import ServiceContext
    from include.integrator.settings import Settings

    ctx = ServiceContext(Settings(data_dir=tmp_path / "d"))
    try:
        with ctx.session() as s:
            for user, pw, tid, branch in [
                ("ok-user", "short", "1234567801", None),  # password too short
                ("x", "long-enough-1", "1234567801", None),  # username too short
                ("ok-user", "long-enough-1", "12345", None),  # not a VKN/TCKN
                ("ok-user", "long-enough-1", "1234567801", "0000"),  # branch 0000 does not exist
            ]:
                with pytest.raises(ValueError):
                    create_account(s, user, pw, tid, branch)
    finally:
        ctx.close()


def test_retention_years_below_ten_refused(tmp_path: Path) -> None:
    p = _cli(["audit", "--data", str(tmp_path / "d"), "--retention-years", "9"])
    out = p.stderr + p.stdout
    assert p.returncode != 0 and ">= 10" in out


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    import ipaddress

    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_p, key_p = tmp / "cert.pem", tmp / "key.pem"
    cert_p.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_p.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_p, key_p


def test_tls_service_and_client_verification(tmp_path: Path, make_month) -> None:  # type: ignore[no-untyped-def]
    cert, key = _self_signed(tmp_path)
    data = tmp_path / "data"
    from include.integrator.auth import create_account
    from include.integrator.context import ServiceContext
    from include.integrator.settings import Settings

    ctx = ServiceContext(Settings(data_dir=data))
    with ctx.session() as sess, sess.begin():
        create_account(sess, "tls-user", "tls-password-1", "1234567801", None)
    ctx.close()
    svc = ServiceProc(data, ["--tls-cert", str(cert), "--tls-key", str(key)], _base_env(), scheme="https").start()
    try:
        # Verification is on by default: an unknown certificate is refused.
        strict = IntegratorClient(svc.url, "tls-user", "tls-password-1", retries=0)
        with pytest.raises(TransportError):
            strict.health()
        trusting = IntegratorClient(svc.url, "tls-user", "tls-password-1", verify=str(cert), retries=0)
        assert trusting.health()["status"] == "ok"
        zips = zip_month(make_month(), tmp_path / "z")
        assert trusting.upload_file(zips["YB"], zips["YB"].name).created
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(svc.url + "/health", timeout=10, verify=True)
        strict.close()
        trusting.close()
    finally:
        svc.stop()


# ------------------------------------------------------------------------------------------ parsers


@given(st.text(max_size=40), st.text(max_size=40))
def test_basic_credentials_roundtrip(user: str, pw: str) -> None:
    import base64

    from include.integrator.auth import basic_credentials

    header = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
    if ":" in user:
        assert basic_credentials(header) == (user.split(":", 1)[0], user.split(":", 1)[1] + ":" + pw)
    else:
        assert basic_credentials(header) == (user, pw)


@given(st.text(max_size=60))
def test_basic_credentials_never_raises(header: str) -> None:
    from include.integrator.auth import basic_credentials

    basic_credentials(header)
    basic_credentials("Basic " + header)


@given(st.binary(max_size=2048))
def test_check_zip_rejects_arbitrary_bytes_with_api_error(tmp_path_factory, data: bytes) -> None:  # type: ignore[no-untyped-def]
    from include.edefter.naming import parse_name
    from include.integrator.errors import ApiError
    from include.integrator.ingest import check_zip

    p = tmp_path_factory.mktemp("cz") / "x.zip"
    p.write_bytes(data)
    with pytest.raises(ApiError) as ei:
        check_zip(p, parse_name("1234567801-201909-Y-000000.zip"), max_uncompressed=1 << 20, max_ratio=50)
    assert 400 <= ei.value.status < 500


# ------------------------------------------------------------------------------------------ header-mode upload check


@pytest.mark.parametrize("header_only_over", [0, 1 << 30])
def test_check_zip_both_modes_accept_valid_and_hash_the_xml(approved_month, tmp_path: Path, header_only_over: int) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    from include.edefter.naming import parse_name
    from include.integrator.ingest import check_zip
    from tests.integrator.conftest import zip_one

    for code in ("Y", "K", "YB", "GIB-KB", "DR"):
        xml = approved_month.path(code)
        z = zip_one(xml, tmp_path / code)
        res = check_zip(z, parse_name(z.name), max_uncompressed=1 << 26, max_ratio=200, header_only_over=header_only_over)
        assert res.xml_sha256 == hashlib.sha256(xml.read_bytes()).hexdigest()
        assert res.xml_size == xml.stat().st_size
        assert res.fiscal_year_end == dt.date(2019, 12, 31) and res.fiscal_year_end_from_xml


@pytest.mark.parametrize("header_only_over", [0, 1 << 30])
def test_check_zip_both_modes_catch_wrong_taxpayer(make_month, tmp_path: Path, header_only_over: int) -> None:  # type: ignore[no-untyped-def]
    from include.edefter.naming import parse_name
    from include.edefter.sample.breakage import wrong_taxpayer_inside
    from include.integrator.errors import ApiError
    from include.integrator.ingest import check_zip
    from tests.integrator.conftest import zip_one

    month = make_month()
    wrong_taxpayer_inside(month.path("K"))
    z = zip_one(month.path("K"), tmp_path)
    with pytest.raises(ApiError) as ei:
        check_zip(z, parse_name(z.name), max_uncompressed=1 << 26, max_ratio=200, header_only_over=header_only_over)
    assert ei.value.status == 422 and ei.value.code == "content.name_mismatch"


def test_check_zip_truncated_ledger(make_month, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Full mode rejects a truncated ledger at upload; header mode leaves it to the set validation."""
    from include.edefter.naming import parse_name
    from include.edefter.sample.breakage import truncate_xml
    from include.integrator.errors import ApiError
    from include.integrator.ingest import check_zip
    from tests.integrator.conftest import zip_one

    month = make_month()
    truncate_xml(month.path("Y"))
    z = zip_one(month.path("Y"), tmp_path)
    with pytest.raises(ApiError) as ei:
        check_zip(z, parse_name(z.name), max_uncompressed=1 << 26, max_ratio=200, header_only_over=1 << 30)
    assert ei.value.code.startswith("content.xml.")
    res = check_zip(z, parse_name(z.name), max_uncompressed=1 << 26, max_ratio=200, header_only_over=0)
    assert res.xml_size == month.path("Y").stat().st_size


def test_download_with_wrong_checksum_leaves_nothing(tmp_path: Path) -> None:
    """A body that does not match the server's X-Content-SHA256 raises IntegrityError; no file appears."""
    from include.integrator.client import IntegrityError

    class Lying(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b"PK not the archived bytes"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-SHA256", "0" * 64)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Lying)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        c = IntegratorClient(f"http://127.0.0.1:{srv.server_address[1]}", "u", "p", retries=0)
        dest = tmp_path / "f.zip"
        with pytest.raises(IntegrityError):
            c.download("1234567801-201909-Y-000000.zip", dest)
        assert list(tmp_path.iterdir()) == []
    finally:
        srv.shutdown()
        srv.server_close()


def test_concurrent_logins_verify_the_password_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Single flight: 12 concurrent first requests of one client pay for scrypt once; a wrong
    password is never answered from the cache; other credentials are not blocked by it."""
    from include.integrator import auth
    from include.integrator.auth import create_account
    from include.integrator.context import ServiceContext
    from include.integrator.deps import verify_credentials
    from include.integrator.errors import ApiError
    from include.integrator.settings import Settings

    ctx = ServiceContext(Settings(data_dir=tmp_path / "d"))
    calls: list[str] = []
    real = auth.verify_password

    def counting(password: str, stored: str) -> bool:
        calls.append(password)
        return real(password, stored)

    monkeypatch.setattr(auth, "verify_password", counting)
    try:
        with ctx.session() as s, s.begin():
            create_account(s, "acme", "right-password", "1234567801", None)
            create_account(s, "other", "other-password", "1234567802", None)
        barrier = threading.Barrier(12)
        got: list[object] = []

        def login(pw: str) -> None:
            barrier.wait()
            try:
                got.append(verify_credentials(ctx, "acme", pw).taxpayer_id)
            except ApiError as exc:
                got.append(exc.status)

        threads = [threading.Thread(target=login, args=("right-password",)) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert got == ["1234567801"] * 12
        assert calls.count("right-password") == 1
        # Wrong password: verified every time (never cached), the right one still cached.
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=login, args=("wrong-password",)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert got[12:] == [401, 401] and calls.count("wrong-password") == 2
        assert verify_credentials(ctx, "other", "other-password").taxpayer_id == "1234567802"
        assert calls.count("right-password") == 1 and ctx.auth_cache.get("acme", "right-password") is not None
    finally:
        ctx.close()

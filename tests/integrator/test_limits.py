"""Request limits against a real service process over HTTP on 127.0.0.1.

Each test talks from its own loopback source address (127.0.0.x) so the per-IP login
throttle of one test never affects another. Memory is the service's peak RSS (VmHWM in
/proc/<pid>/status) before and after; every load loop is bounded in count and time.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter

from tests.edefter.test_xmlread_start_tag import write_attribute_bomb
from tests.integrator.conftest import Integrator, make_backend, start_service

MIB = 1024 * 1024
WINDOW_S = 3
PER_ACCOUNT = 3
PER_IP = 6
HEADER_TIMEOUT_S = 2
BODY_IDLE_S = 2

LIMITED_ARGS = [
    "--auth-fail-window-s", str(WINDOW_S),
    "--auth-fail-per-account", str(PER_ACCOUNT),
    "--auth-fail-per-ip", str(PER_IP),
    "--header-timeout-s", str(HEADER_TIMEOUT_S),
    "--body-idle-timeout-s", str(BODY_IDLE_S),
    # room for the attribute-bomb zip (its XML is 17 MB and compresses ~100x)
    "--max-upload-mb", "64", "--max-uncompressed-mb", "64", "--max-ratio", "1000",
]  # fmt: skip

_next_ip = iter(range(20, 250))


def new_ip() -> str:
    return f"127.0.0.{next(_next_ip)}"


class _SourceAdapter(HTTPAdapter):
    def __init__(self, ip: str) -> None:
        self.ip = ip
        super().__init__()

    def init_poolmanager(self, *a, **kw):  # type: ignore[no-untyped-def]
        kw["source_address"] = (self.ip, 0)
        return super().init_poolmanager(*a, **kw)


def session_from(ip: str) -> requests.Session:
    s = requests.Session()
    s.mount("http://", _SourceAdapter(ip))
    return s


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def raw_connect(port: int, ip: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(ip, 0))
    return s


def read_answer(s: socket.socket, deadline: float) -> bytes:
    data = b""
    while time.monotonic() < deadline:
        try:
            got = s.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not got:
            break
        data += got
    return data


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Integrator]:
    backend = make_backend("fs-sqlite", request)
    svc = start_service(backend, tmp_path_factory.mktemp("svc-limits") / "data", LIMITED_ARGS)
    try:
        yield Integrator(backend, svc)
    finally:
        svc.stop()


def _pid(integ: Integrator) -> int:
    assert integ.service.proc is not None
    return integ.service.proc.pid


# ------------------------------------------------------------------- 1. auth before body, JSON cap


@pytest.mark.timeout(180)
def test_unauthenticated_big_body_is_refused_unread(limited: Integrator) -> None:
    """50 MB bodies without (or with wrong) credentials: 401, the service's peak RSS barely moves."""
    pid = _pid(limited)
    s = session_from(new_ip())
    s.get(limited.url + "/health", timeout=10)
    before = peak_rss_mb(pid)

    def body() -> Iterator[bytes]:  # chunked: no Content-Length to refuse it early
        chunk = b'{"files": [' + b'"x",' * (MIB // 4 - 4) + b'"x"]}'
        for _ in range(50):
            yield chunk[:MIB]

    t0 = time.monotonic()
    r = s.post(limited.url + "/v1/submissions", data=body(), timeout=60)
    assert r.status_code == 401 and r.json()["error"]["code"] == "auth.failed"
    big = b"{" + b" " * (50 * MIB) + b"}"
    r = s.post(limited.url + "/v1/submissions", data=big, auth=("nobody", "wrong-password"), timeout=60)
    assert r.status_code == 401, r.text
    del big
    grown = peak_rss_mb(pid) - before
    # Before the fix the body was read and parsed first (300 MB took the process +900 MB).
    assert grown < 30, f"peak RSS grew by {grown:.1f} MB"
    assert time.monotonic() - t0 < 60


@pytest.mark.timeout(120)
def test_authenticated_json_over_the_cap_is_413(limited: Integrator) -> None:
    tid, user, pw = limited.account()
    s = session_from(new_ip())
    s.auth = (user, pw)
    pid = _pid(limited)
    s.get(limited.url + "/v1/files", params={"taxpayer_id": tid}, timeout=10).raise_for_status()
    before = peak_rss_mb(pid)
    doc = json.dumps({"taxpayer_id": tid, "period": "202401", "source": "x" * (5 * MIB), "files": []}).encode()
    r = s.post(limited.url + "/v1/submissions", data=doc, headers={"Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request.too_large"
    # Without Content-Length the cap is counted as the body streams in.
    r = s.post(
        limited.url + "/v1/submissions",
        data=(doc[i : i + 64 * 1024] for i in range(0, len(doc), 64 * 1024)),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "request.too_large"
    assert peak_rss_mb(pid) - before < 30
    # A body under the cap still reaches the route (422: an invalid submission, not 413).
    r = s.post(limited.url + "/v1/submissions", json={"taxpayer_id": tid}, timeout=10)
    assert r.status_code == 422 and r.json()["error"]["code"] == "request.invalid"


# ------------------------------------------------------------------- 2. header caps and timeout


@pytest.mark.timeout(120)
def test_oversize_header_is_431(limited: Integrator) -> None:
    """A header that would grow to 100 MB: refused (431) after at most a few hundred KB."""
    s = raw_connect(limited.service.port, new_ip())
    sent = 0
    deadline = time.monotonic() + 30
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
        while sent < 100 * MIB and time.monotonic() < deadline:
            s.sendall(b"a" * 65536)
            sent += 65536
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = read_answer(s, time.monotonic() + 10)
    s.close()
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b"request.headers_too_large" in answer
    assert sent < 100 * MIB  # the server closed long before


@pytest.mark.timeout(120)
def test_many_headers_is_431(limited: Integrator) -> None:
    s = raw_connect(limited.service.port, new_ip())
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        for i in range(0, 200_000, 1000):
            s.sendall(b"".join(b"X-H%d: v\r\n" % j for j in range(i, i + 1000)))
        s.sendall(b"\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = read_answer(s, time.monotonic() + 10)
    s.close()
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b"more than 100 headers" in answer


@pytest.mark.timeout(60)
def test_slow_header_sender_is_disconnected(limited: Integrator) -> None:
    s = raw_connect(limited.service.port, new_ip())
    t0 = time.monotonic()
    closed_at: float | None = None
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    answer = b""
    s.settimeout(0.5)
    for i in range(40):  # one header line every 0.5 s: never complete within the timeout
        try:
            s.sendall(b"X-Slow-%d: v\r\n" % i)
        except (BrokenPipeError, ConnectionResetError):
            closed_at = time.monotonic()
            break
        try:
            got = s.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            closed_at = time.monotonic()
            break
        answer += got
        if not got:
            closed_at = time.monotonic()
            break
        # the 408 arrived; the close follows
    s.close()
    assert closed_at is not None, "slow sender never disconnected"
    assert closed_at - t0 < HEADER_TIMEOUT_S + 3
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408")
    # Meanwhile and afterwards, a normal request is served.
    assert requests.get(limited.url + "/health", timeout=10).status_code == 200


@pytest.mark.timeout(60)
def test_normal_request_succeeds_during_a_slowloris(limited: Integrator) -> None:
    socks = [raw_connect(limited.service.port, new_ip()) for _ in range(20)]
    try:
        for s in socks:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        r = requests.get(limited.url + "/health", timeout=10)
        assert r.status_code == 200 and time.monotonic() - t0 < 5
        # All 20 half-open connections are gone after the timeout.
        deadline = time.monotonic() + HEADER_TIMEOUT_S + 5
        for s in socks:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            data = read_answer(s, deadline)
            assert data == b"" or data.startswith(b"HTTP/1.1 408")
        assert time.monotonic() < deadline
    finally:
        for s in socks:
            s.close()


# ------------------------------------------------------------------- 3. password checks


@pytest.mark.timeout(120)
def test_wrong_password_burst_is_throttled_then_the_right_one_works(limited: Integrator) -> None:
    tid, user, pw = limited.account()
    url = limited.url + "/v1/files"
    params = {"taxpayer_id": tid}
    ip = new_ip()
    s = session_from(ip)
    codes = []
    t0 = time.monotonic()
    for i in range(10):
        r = s.get(url, params=params, auth=(user, f"wrong-{i}"), timeout=30)
        codes.append(r.status_code)
        if r.status_code == 429:
            break
    assert codes == [401] * PER_ACCOUNT + [429], codes
    assert r.json()["error"]["code"] == "auth.throttled"
    retry_after = int(r.headers["Retry-After"])
    assert 1 <= retry_after <= WINDOW_S
    # Throttled: not even the right password is checked from this address...
    assert s.get(url, params=params, auth=(user, pw), timeout=30).status_code == 429
    # ...but the owner on an address without failures is not locked out by the guesser.
    assert session_from(new_ip()).get(url, params=params, auth=(user, pw), timeout=30).status_code == 200
    # After the backoff, the right password works from the guessing address too.
    time.sleep(retry_after + 0.2)
    assert s.get(url, params=params, auth=(user, pw), timeout=30).status_code == 200
    assert time.monotonic() - t0 < 30


@pytest.mark.timeout(120)
def test_failures_per_ip_over_many_accounts_are_throttled(limited: Integrator) -> None:
    s = session_from(new_ip())
    codes = []
    for _ in range(PER_IP + 3):
        r = s.get(limited.url + "/v1/files", params={"taxpayer_id": "1234567801"},
                  auth=(f"u{uuid.uuid4().hex[:10]}", "wrong-password"), timeout=30)  # fmt: skip
        codes.append(r.status_code)
        if r.status_code == 429:
            break
    assert codes == [401] * PER_IP + [429], codes
    assert "Retry-After" in r.headers


@pytest.mark.timeout(120)
def test_client_retries_429_after_retry_after(limited: Integrator) -> None:
    tid, user, pw = limited.account()
    ip = new_ip()
    s = session_from(ip)
    for i in range(PER_ACCOUNT):
        s.get(limited.url + "/v1/files", params={"taxpayer_id": tid}, auth=(user, f"bad-{i}"), timeout=30)
    slept: list[float] = []
    c = limited.client(user, pw, retries=3, backoff=0.1, max_backoff=WINDOW_S + 1)
    c.session.mount("http://", _SourceAdapter(ip))
    c._sleep = lambda d: (slept.append(d), time.sleep(d))  # type: ignore[method-assign]
    with c:
        assert c.list_files(tid) == []
    assert slept and 1 <= slept[0] <= WINDOW_S + 1  # waited as told by Retry-After


@pytest.mark.timeout(240)
def test_concurrent_wrong_logins_keep_memory_bounded(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """64 concurrent wrong passwords (throttle out of the way): scrypt runs 2 at a time."""
    backend = make_backend("fs-sqlite", request)
    svc = start_service(backend, tmp_path / "data", ["--auth-fail-per-ip", "100000", "--auth-fail-per-account", "100000"])
    integ = Integrator(backend, svc)
    try:
        tid, user, _pw = integ.account()
        pid = _pid(integ)
        requests.get(integ.url + "/health", timeout=10)
        before = peak_rss_mb(pid)
        codes: list[int] = []
        barrier = threading.Barrier(64)

        def guess(i: int) -> None:
            barrier.wait(timeout=30)
            r = requests.get(integ.url + "/v1/files", params={"taxpayer_id": tid},
                             auth=(user, f"wrong-{i}"), timeout=120)  # fmt: skip
            codes.append(r.status_code)

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(64)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=180)
        assert codes == [401] * 64
        grown = peak_rss_mb(pid) - before
        # Unbounded, 64 scrypt runs (16 MiB each) at once took the process to ~918 MB.
        assert grown < 100, f"peak RSS grew by {grown:.1f} MB"
        assert time.monotonic() - t0 < 180
    finally:
        svc.stop()


# ------------------------------------------------------------------- 4. XML start-tag cap


@pytest.mark.timeout(180)
def test_attribute_bomb_upload_is_refused_with_bounded_memory(limited: Integrator, tmp_path: Path) -> None:
    tid, user, pw = limited.account()
    stem = f"{tid}-202401-Y-000000"
    xml = write_attribute_bomb(tmp_path / f"{stem}.xml")
    z = tmp_path / f"{stem}.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(xml, xml.name)
    data = z.read_bytes()
    pid = _pid(limited)
    before = peak_rss_mb(pid)
    s = session_from(new_ip())
    r = s.put(
        f"{limited.url}/v1/files/{stem}.zip",
        data=data,
        auth=(user, pw),
        headers={"X-Content-SHA256": hashlib.sha256(data).hexdigest()},
        timeout=120,
    )
    assert 400 <= r.status_code < 500, r.text
    err = r.json()["error"]
    assert err["code"] == "content.xml.start_tag_too_large", err
    assert err["file"]
    grown = peak_rss_mb(pid) - before
    assert grown < 100, f"peak RSS grew by {grown:.1f} MB"


# ------------------------------------------------------------------- units (no service)


def test_throttle_window_and_clean_ip_exemption() -> None:
    from include.integrator.limits import AuthThrottle

    t = AuthThrottle(window=10, per_account=2, per_ip=4)
    assert t.check("acme", "1.1.1.1", now=0) == 0
    t.failed("acme", "1.1.1.1", now=0)
    t.failed("acme", "1.1.1.1", now=1)
    assert t.check("acme", "1.1.1.1", now=2) == pytest.approx(8)  # account lock: oldest leaves at 10
    assert t.check("acme", "2.2.2.2", now=2) == 0  # an address without failures is not locked out
    assert t.check("other", "1.1.1.1", now=2) == 0  # the address itself is under its own limit
    t.failed("x", "1.1.1.1", now=3)
    t.failed("y", "1.1.1.1", now=4)
    assert t.check("z", "1.1.1.1", now=5) == pytest.approx(5)  # per IP: 4 failures, oldest at 0
    assert t.check("acme", "1.1.1.1", now=10.5) == 0  # the failure at 0 left the window
    assert t.check("z", "1.1.1.1", now=11) == 0  # window passed for the IP (3 failures left)


def test_throttle_state_is_bounded() -> None:
    from include.integrator.limits import AuthThrottle

    t = AuthThrottle(window=10, per_account=2, per_ip=4, max_keys=1000)
    for i in range(5000):
        t.failed(f"user{i}", f"10.0.{i % 250}.{i // 250}", now=1)
    assert len(t._fails) <= 1000 + 2


def test_limit_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from include.integrator.settings import Settings

    monkeypatch.setenv("INTEGRATOR_MAX_HEADERS", "50")
    monkeypatch.setenv("INTEGRATOR_HEADER_TIMEOUT_S", "2.5")
    s = Settings.from_env(tmp_path, auth_fail_per_ip=7)
    assert (s.max_headers, s.header_timeout_s, s.auth_fail_per_ip, s.max_json_bytes) == (50, 2.5, 7, MIB)
    with pytest.raises(ValueError):
        Settings.from_env(tmp_path, max_json_bytes=0)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("method", "path", "ctype"),
    [("PUT", "/v1/files/{tid}-201909-Y-000000.zip", "application/zip"), ("POST", "/v1/submissions", "application/json")],
)
def test_a_stalled_body_is_dropped_with_408(limited: Integrator, method: str, path: str, ctype: str) -> None:
    """Slowloris on the body: headers complete, a few bytes, then nothing. The request is answered
    408 within the idle timeout (upload or JSON alike) and nothing is left spooled."""
    import base64

    tid, user, pw = limited.account()
    auth = base64.b64encode(f"{user}:{pw}".encode()).decode()
    s = raw_connect(limited.service.port, new_ip())
    head = (
        f"{method} {path.format(tid=tid)} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n"
        f"Content-Type: {ctype}\r\nContent-Length: 100000\r\nX-Content-SHA256: {'a' * 64}\r\n\r\n"
    ).encode()
    t0 = time.monotonic()
    s.sendall(head + b"PK\x03\x04 partial")
    s.settimeout(BODY_IDLE_S + 6)  # one recv waits through the idle timeout
    answer = read_answer(s, time.monotonic() + BODY_IDLE_S + 8)
    s.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"request.body_timeout" in answer
    assert time.monotonic() - t0 < BODY_IDLE_S + 8
    assert requests.get(limited.url + "/health", timeout=10).status_code == 200
    deadline = time.monotonic() + 5
    while any((limited.service.data / "incoming").glob("*.upload")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any((limited.service.data / "incoming").glob("*.upload"))

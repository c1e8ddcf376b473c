"""Bad uploads get a clear 4xx (code, Turkish, English, the file) and nothing is stored."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest
import requests

from include.edefter.sample.breakage import wrong_taxpayer_inside
from tests.integrator.conftest import zip_one


def _put(integ, user: str, pw: str, name: str, body: bytes, sha: str | None = None) -> requests.Response:  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "application/zip"}
    headers["X-Content-SHA256"] = sha if sha is not None else hashlib.sha256(body).hexdigest()
    return requests.put(f"{integ.url}/v1/files/{name}", data=body, headers=headers, auth=(user, pw), timeout=30)


def _zip(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for n, data in members:
            zf.writestr(n, data)
    return buf.getvalue()


def _assert_error(r: requests.Response, status: int, code: str, file: str | None = None) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code, err
    assert err["message_tr"] and err["message_en"] and err["message_tr"] != err["message_en"]
    if file is not None:
        assert err["file"] == file
    return err


@pytest.fixture
def tenant(default_integrator):  # type: ignore[no-untyped-def]
    tid, user, pw = default_integrator.account()
    yield tid, user, pw
    r = requests.get(
        f"{default_integrator.url}/v1/files",
        params={"taxpayer_id": tid, "include_staged": "true"},
        auth=(user, pw),
        timeout=10,
    )
    assert r.json()["years"] == [], "a rejected upload left something archived"
    leftovers = list((default_integrator.service.data / "incoming").iterdir())
    assert leftovers == [], leftovers


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("notaname.zip", "structure"),
        ("12345-201909-Y-000000.zip", "taxpayer_id"),
        ("{tid}-201913-Y-000000.zip", "period"),
        ("{tid}-201909-X-000000.zip", "kind"),
        ("{tid}-201909-Y-0000.zip", "part"),
        ("{tid}-201909-Y-000000-0000.zip", "branch"),
        ("{tid}-201909-Y-000000.rar", "extension"),
        ("{tid}-201909-Y-000000.xml", "extension"),
    ],
)
def test_malformed_names(default_integrator, tenant, name: str, field: str) -> None:  # type: ignore[no-untyped-def]
    tid, user, pw = tenant
    name = name.format(tid=tid)
    r = _put(default_integrator, user, pw, name, b"PK\x05\x06" + b"\0" * 18)
    _assert_error(r, 400, f"name.{field}", name)


def test_body_not_a_zip(default_integrator, tenant) -> None:  # type: ignore[no-untyped-def]
    tid, user, pw = tenant
    name = f"{tid}-201909-Y-000000.zip"
    _assert_error(_put(default_integrator, user, pw, name, b"<xml>not a zip</xml>"), 400, "zip.invalid", name)


def test_zip_with_two_members(default_integrator, tenant) -> None:  # type: ignore[no-untyped-def]
    tid, user, pw = tenant
    stem = f"{tid}-201909-Y-000000"
    body = _zip([(stem + ".xml", b"<a/>"), ("extra.xml", b"<b/>")])
    err = _assert_error(_put(default_integrator, user, pw, stem + ".zip", body), 400, "zip.member_count")
    assert err["details"]["members"] == [stem + ".xml", "extra.xml"]


@pytest.mark.parametrize("member", ["../{stem}.xml", "/etc/{stem}.xml", "sub/{stem}.xml", "..\\{stem}.xml"])
def test_zip_member_with_path(default_integrator, tenant, member: str) -> None:  # type: ignore[no-untyped-def]
    tid, user, pw = tenant
    stem = f"{tid}-201909-Y-000000"
    body = _zip([(member.format(stem=stem), b"<a/>")])
    r = _put(default_integrator, user, pw, stem + ".zip", body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] in ("zip.path_traversal", "zip.member_name")


def test_zip_member_name_differs(default_integrator, tenant) -> None:  # type: ignore[no-untyped-def]
    tid, user, pw = tenant
    stem = f"{tid}-201909-Y-000000"
    body = _zip([(f"{tid}-201909-K-000000.xml", b"<a/>")])
    err = _assert_error(_put(default_integrator, user, pw, stem + ".zip", body), 400, "zip.member_name")
    assert err["details"]["expected"] == stem + ".xml"


def test_zip_bomb_ratio(default_integrator, tenant) -> None:  # type: ignore[no-untyped-def]
    tid, user, pw = tenant
    stem = f"{tid}-201909-Y-000000"
    body = _zip([(stem + ".xml", b"<a>" + b"0" * (1024 * 1024) + b"</a>")])  # ~1000:1
    _assert_error(_put(default_integrator, user, pw, stem + ".zip", body), 413, "zip.bomb")


def test_zip_uncompressed_size_over_cap(default_integrator, tenant) -> None:  # type: ignore[no-untyped-def]
    import os

    tid, user, pw = tenant
    stem = f"{tid}-201909-Y-000000"
    # Stored (ratio 1) but 3 MB > the 2 MB cap of the test server.
    body = _zip([(stem + ".xml", os.urandom(3 * 1024 * 1024))], method=zipfile.ZIP_STORED)
    _assert_error(_put(default_integrator, user, pw, stem + ".zip", body), 413, "zip.bomb")


def test_zip_lying_about_its_size_is_still_capped(default_integrator, tenant) -> None:  # type: ignore[no-untyped-def]
    tid, user, pw = tenant
    stem = f"{tid}-201909-Y-000000"
    body = bytearray(_zip([(stem + ".xml", b"<a>" + b"7" * (3 * 1024 * 1024) + b"</a>")]))
    # Forge the declared uncompressed size (local header offset 22, central directory +24) to 100 bytes.
    cd = body.rfind(b"PK\x01\x02")
    body[22:26] = (100).to_bytes(4, "little")
    body[cd + 24 : cd + 28] = (100).to_bytes(4, "little")
    r = _put(default_integrator, user, pw, stem + ".zip", bytes(body))
    assert r.status_code in (400, 413), r.text
    assert r.json()["error"]["code"] in ("zip.bomb", "zip.corrupt")


def test_xml_content_does_not_match_name(default_integrator, tenant, make_month, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tid, user, pw = tenant
    month = make_month(taxpayer_id=tid)
    wrong_taxpayer_inside(month.path("Y"), other_taxpayer_id="9876543210")
    z = zip_one(month.path("Y"), tmp_path)
    err = _assert_error(_put(default_integrator, user, pw, z.name, z.read_bytes()), 422, "content.name_mismatch", z.name)
    assert "9876543210" in err["message_en"]


def test_ledger_type_named_as_journal(default_integrator, tenant, make_month, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tid, user, pw = tenant
    month = make_month(taxpayer_id=tid)
    y_name = month.path("Y").name
    (tmp_path / "x").mkdir()
    fake = tmp_path / "x" / y_name
    fake.write_bytes(month.path("K").read_bytes())  # a Kebir under a Yevmiye name
    z = zip_one(fake, tmp_path / "z")
    _assert_error(_put(default_integrator, user, pw, z.name, z.read_bytes()), 422, "content.name_mismatch", z.name)


def test_not_xml_inside(default_integrator, tenant) -> None:  # type: ignore[no-untyped-def]
    tid, user, pw = tenant
    stem = f"{tid}-201909-Y-000000"
    r = _put(default_integrator, user, pw, stem + ".zip", _zip([(stem + ".xml", b"\x00\x01 binary junk")]))
    assert r.status_code == 400 and r.json()["error"]["code"].startswith("content.xml."), r.text


def test_sha256_header_not_matching_body(default_integrator, tenant, approved_month, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tid, user, pw = tenant
    z = zip_one(approved_month.path("Y"), tmp_path)
    name = f"{tid}-201909-Y-000000.zip"
    err = _assert_error(_put(default_integrator, user, pw, name, z.read_bytes(), sha="0" * 64), 400, "upload.sha256_mismatch")
    assert err["details"]["header"] == "0" * 64


def test_sha256_header_missing_or_malformed(default_integrator, tenant) -> None:  # type: ignore[no-untyped-def]
    tid, user, pw = tenant
    name = f"{tid}-201909-Y-000000.zip"
    r = requests.put(f"{default_integrator.url}/v1/files/{name}", data=b"PK", auth=(user, pw), timeout=10)
    _assert_error(r, 422, "request.invalid")
    _assert_error(_put(default_integrator, user, pw, name, b"PK", sha="xyz"), 400, "upload.sha256_header")


def test_oversized_upload(default_integrator, tenant) -> None:  # type: ignore[no-untyped-def]
    tid, user, pw = tenant
    name = f"{tid}-201909-Y-000000.zip"
    body = b"\0" * (5 * 1024 * 1024)  # the test server caps uploads at 4 MB
    _assert_error(_put(default_integrator, user, pw, name, body), 413, "upload.too_large", name)

    def chunks():  # type: ignore[no-untyped-def]  # no Content-Length: the streaming cap must hold
        for _ in range(5):
            yield b"\0" * (1024 * 1024)

    r = requests.put(
        f"{default_integrator.url}/v1/files/{name}",
        data=chunks(),
        headers={"X-Content-SHA256": "0" * 64},
        auth=(user, pw),
        timeout=30,
    )
    _assert_error(r, 413, "upload.too_large", name)


def test_unauthenticated_and_wrong_password(default_integrator, tenant) -> None:  # type: ignore[no-untyped-def]
    tid, user, pw = tenant
    url = f"{default_integrator.url}/v1/files"
    r = requests.get(url, params={"taxpayer_id": tid}, timeout=10)
    _assert_error(r, 401, "auth.failed")
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    _assert_error(requests.get(url, params={"taxpayer_id": tid}, auth=(user, pw + "x"), timeout=10), 401, "auth.failed")
    _assert_error(requests.get(url, params={"taxpayer_id": tid}, auth=("nobody", pw), timeout=10), 401, "auth.failed")


def test_submit_for_another_taxpayer_refused(default_integrator, tenant) -> None:  # type: ignore[no-untyped-def]
    tid, user, pw = tenant
    body = {"taxpayer_id": "1111111111", "period": "201909", "files": [{"name": "x.zip", "sha256": "0" * 64}]}
    r = requests.post(f"{default_integrator.url}/v1/submissions", json=body, auth=(user, pw), timeout=10)
    _assert_error(r, 403, "tenant.forbidden")


@pytest.mark.parametrize("shape", ["junk_before", "two_zips", "junk_after"])
def test_zip_polyglots_are_refused(default_integrator, tenant, make_month, tmp_path: Path, shape: str) -> None:  # type: ignore[no-untyped-def]
    """unzip and a streaming reader must never see different members: one strict entry only."""
    tid, user, pw = tenant
    month = make_month(taxpayer_id=tid)
    good = zip_one(month.path("YB"), tmp_path).read_bytes()
    other = _zip([(month.path("YB").name, b"<berat/>")])
    body = {
        "junk_before": b"JUNK" * 64 + good,
        "two_zips": other + good,
        "junk_after": good + b"trailing bytes that are not part of the zip",
    }[shape]
    name = month.path("YB").stem + ".zip"
    r = _put(default_integrator, user, pw, name, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "zip.polyglot", r.json()
    assert r.json()["error"]["file"] == name


def test_the_strict_zip_itself_is_accepted(default_integrator, make_month, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tid, user, pw = default_integrator.account()
    month = make_month(taxpayer_id=tid)
    good = zip_one(month.path("YB"), tmp_path).read_bytes()
    r = _put(default_integrator, user, pw, month.path("YB").stem + ".zip", good)
    assert r.status_code == 201, r.text

"""Pinned bytes on the archive side: staged uploads, XML hashes in the manifest, evidence with the month.

Every backend (fs+SQLite, fs+PostgreSQL, S3), over real HTTP.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from include.edefter.naming import Period
from include.edefter.status import BackupStatus
from include.integrator.client import AuthError, ConflictError, RejectedError, sha256_file
from tests.integrator.conftest import zip_month

SEP_2019 = Period(2019, 9)
ORDER = ["Y", "K", "YB", "KB", "GIB-YB", "GIB-KB", "DR"]


def _xml_sha(z: Path) -> str:
    with zipfile.ZipFile(z) as zf:
        return hashlib.sha256(zf.read(zf.infolist()[0])).hexdigest()


def _triples(client, zips: dict[str, Path]) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return [(zips[k].name, client.upload_file(zips[k], zips[k].name).sha256, _xml_sha(zips[k])) for k in ORDER]


def test_a_rejected_set_never_blocks_the_genuine_files(integrator, make_month, tmp_path: Path) -> None:
    """The tampered upload is kept for forensics (in its submission's results) but never takes the name."""
    from include.edefter.sample import breakage

    tid, user, pw = integrator.account()
    month = make_month(taxpayer_id=tid)
    genuine = zip_month(month, tmp_path / "genuine")
    tampered_dir = tmp_path / "t"
    tampered_dir.mkdir()
    ledger = tampered_dir / month.path("Y").name
    ledger.write_bytes(month.path("Y").read_bytes())
    breakage.flip_byte_in_ledger_body(ledger)
    bad_y = tampered_dir / genuine["Y"].name
    with zipfile.ZipFile(bad_y, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(ledger, ledger.name)
    with integrator.client(user, pw) as c:
        bad = {**genuine, "Y": bad_y}
        sent = _triples(c, bad)
        first = c.submit_month(tid, None, SEP_2019, sent)
        st = c.wait_for_final(tid, None, SEP_2019, timeout=90)
        assert st.status is BackupStatus.YEDEKLENEMEDI
        y = next(f for f in st.files if f.name == genuine["Y"].name)
        assert y.sha256 == sha256_file(bad_y)  # the rejected bytes stay visible in the history
        assert c.list_files(tid) == []  # nothing committed
        # The genuine ledger under the same name is accepted (not 409) and the set backs up.
        assert c.upload_file(genuine["Y"], genuine["Y"].name).created is True
        good = c.submit_month(tid, None, SEP_2019, _triples(c, genuine))
        assert good.submission_id != first.submission_id
        st = c.wait_for_final(tid, None, SEP_2019, timeout=90)
        assert st.status is BackupStatus.YEDEKLENDI, st.problems
        assert {f.xml_sha256 for f in st.files} == {_xml_sha(genuine[k]) for k in ORDER}
        assert c.download(genuine["Y"].name, tmp_path / "back.zip") == sha256_file(genuine["Y"])
        assert (tmp_path / "back.zip").read_bytes() == genuine["Y"].read_bytes()
        # Now the name is committed: the tampered bytes are refused for good.
        with pytest.raises(ConflictError) as ei:
            c.upload_file(bad_y, bad_y.name)
        assert ei.value.status == 409


def test_xml_hash_in_the_manifest_differing_from_the_stored_xml_is_yedeklenemedi(integrator, make_month, tmp_path: Path) -> None:
    tid, user, pw = integrator.account()
    zips = zip_month(make_month(taxpayer_id=tid), tmp_path / "z")
    with integrator.client(user, pw) as c:
        sent = _triples(c, zips)
        wrong = [(n, z, ("0" * 64 if n == zips["K"].name else x)) for n, z, x in sent]
        c.submit_month(tid, None, SEP_2019, wrong)
        st = c.wait_for_final(tid, None, SEP_2019, timeout=90)
        assert st.status is BackupStatus.YEDEKLENEMEDI
        k = next(f for f in st.files if f.name == zips["K"].name)
        mism = [p for p in k.problems if p["code"] == "manifest.xml_sha256_mismatch"]
        assert mism and "doğrulamadan sonra" in mism[0]["message_tr"], k.problems
        assert mism[0]["details"]["stored"] == _xml_sha(zips["K"])
        assert c.list_files(tid) == []
        # The right hashes: backed up, and the stored XML hashes are the ones sent.
        c.submit_month(tid, None, SEP_2019, sent)
        st = c.wait_for_final(tid, None, SEP_2019, timeout=90)
        assert st.status is BackupStatus.YEDEKLENDI, st.problems


def test_evidence_is_kept_with_the_month_write_once_and_per_tenant(integrator, tmp_path: Path) -> None:
    tid, user, pw = integrator.account()
    _, branch_user, branch_pw = integrator.account(tid, branch="0001")
    other_tid, other_user, other_pw = integrator.account()
    doc = json.dumps({"kind": "Kayıt Bilgisi", "month": "2019-09", "files": []}, ensure_ascii=False).encode()
    sha = hashlib.sha256(doc).hexdigest()
    with (
        integrator.client(user, pw) as c,
        integrator.client(branch_user, branch_pw) as b,
        integrator.client(other_user, other_pw) as o,
    ):
        first = c.put_evidence(tid, None, SEP_2019, doc)
        assert first.created and first.sha256 == sha and first.size == len(doc)
        again = c.put_evidence(tid, None, SEP_2019, doc)  # a retry after a lost answer
        assert not again.created and again.sha256 == sha
        assert [r.sha256 for r in c.list_evidence(tid, None, SEP_2019)] == [sha]
        assert c.get_evidence(tid, None, SEP_2019, sha) == doc
        # A second document does not replace the first.
        doc2 = doc.replace(b"[]", b'[{"name": "x"}]')
        c.put_evidence(tid, None, SEP_2019, doc2)
        assert [r.sha256 for r in c.list_evidence(tid, None, SEP_2019)] == [sha, hashlib.sha256(doc2).hexdigest()]
        # The branch sees its own month only; another taxpayer sees nothing.
        assert b.list_evidence(tid, "0001", SEP_2019) == []
        with pytest.raises(AuthError):
            b.get_evidence(tid, "0002", SEP_2019, sha)
        with pytest.raises(AuthError) as ei:
            o.list_evidence(tid, None, SEP_2019)
        assert ei.value.status == 403
        with pytest.raises(AuthError):
            o.put_evidence(tid, None, SEP_2019, doc)
        assert other_tid != tid
        url = f"{integrator.url}/v1/months/{tid}/201909/evidence"
        # Bad inputs: body not matching the URL's hash, not JSON, not an object, too large, branch 0000.
        r = c.session.put(f"{url}/{'a' * 64}", data=doc, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "evidence.sha256_mismatch"
        junk = b"\xff not json"
        r = c.session.put(f"{url}/{hashlib.sha256(junk).hexdigest()}", data=junk)
        assert r.status_code == 400 and r.json()["error"]["code"] == "evidence.not_json"
        arr = b"[1, 2]"
        r = c.session.put(f"{url}/{hashlib.sha256(arr).hexdigest()}", data=arr)
        assert r.status_code == 400 and r.json()["error"]["code"] == "evidence.not_object"
        big = b'{"x": "' + b"a" * (1 << 20) + b'"}'
        r = c.session.put(f"{url}/{hashlib.sha256(big).hexdigest()}", data=big)
        assert r.status_code == 413
        r = c.session.get(url, params={"branch": "0000"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "branch.invalid"
        r = c.session.get(f"{url}/{'b' * 64}")
        assert r.status_code == 404
        assert [r.sha256 for r in c.list_evidence(tid, None, SEP_2019)][0] == sha
        # No credentials: refused before the body matters.
        import requests

        r = requests.put(f"{url}/{sha}", data=doc, timeout=10)
        assert r.status_code == 401


def test_unknown_evidence_is_404(default_integrator) -> None:
    tid, user, pw = default_integrator.account()
    with default_integrator.client(user, pw) as c:
        c.put_evidence(tid, None, SEP_2019, b'{"a": 1}')
        with pytest.raises(RejectedError) as ei:
            c.get_evidence(tid, None, SEP_2019, "c" * 64)
        assert ei.value.status == 404 and ei.value.code == "evidence.not_found"

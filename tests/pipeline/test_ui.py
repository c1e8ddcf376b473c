"""The e-Defter Saklama page: rendering functions and the FastAPI sub-app (auth overridden here only)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient

from include.edefter.naming import Period
from include.edefter.status import BackupStatus, EDefterStatus
from include.pipeline.ui import (
    NOT_QUERIED,
    Access,
    PageRow,
    backup_class,
    create_app,
    page_access,
    redact,
    render_page,
    row_to_json,
)

SEP_2019 = Period(2019, 9)


def make_row(**kw: object) -> PageRow:
    base: dict[str, object] = dict(
        company_id="ornek-ticaret",
        company_name="Örnek Ticaret A.Ş.",
        taxpayer_id="1234567801",
        branch=None,
        branch_name=None,
        dag_id="edefter_yedekleme_1234567801",
        month=SEP_2019,
        edefter_status=EDefterStatus.ONAYLI_BERAT_INDIRILDI,
        backup_status=BackupStatus.YEDEKLENDI,
        message_tr="Eylül-2019 ayına ait Yevmiye ve Büyük Defter dosyaları yedeklendi.",
        message_en="September 2019 ledgers backed up.",
        retention_until=dt.date(2029, 12, 31),
        files=7,
    )
    base.update(kw)
    return PageRow(**base)  # type: ignore[arg-type]


def rows_of(html_text: str) -> list[str]:
    return re.findall(r"<tr class=\"[^\"]*\" data-dag-id=.*?</tr>", html_text, flags=re.S)


# -- rendering ---------------------------------------------------------------------------------------


def test_page_has_turkish_headers_and_one_row_per_unit_month() -> None:
    rows = [
        make_row(),
        make_row(
            month=Period(2019, 10),
            edefter_status=EDefterStatus.GIBE_GONDERILDI,
            backup_status=BackupStatus.GONDERILMEDI,
            message_tr="",
            message_en="",
            retention_until=None,
            missing=("1234567801-201910-GIB-YB-000000",),
        ),
        make_row(
            branch="0002",
            branch_name="Kadıköy Şube",
            dag_id="edefter_yedekleme_9876543210_0002",
            company_name="Yıldız Gıda Ltd. Şti.",
            edefter_status=EDefterStatus.DOSYA_OLUSTURULDU,
            backup_status=BackupStatus.YEDEKLENEMEDI,
            message_tr="İmza değeri zinciri bozuk",
            message_en="signature value chain broken",
        ),
        make_row(month=Period(2019, 11), edefter_status=None, backup_status=BackupStatus.ISLENDI, files=0),
    ]
    page = render_page(rows, user="admin", generated_at=dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    for header in ("Firma", "Şube", "Dönem", "e-Defter statüsü", "Yedekleme durumu", "Mesaj", "Saklama bitiş tarihi"):
        assert f">{header}<small>" in page
    body = rows_of(page)
    assert len(body) == 4
    first, second, third, fourth = body
    assert "Eylül-2019" in first and "Onaylı Berat İndirildi" in first and ">Yedeklendi<" in first
    assert 'class="st-ok"' in first and "31.12.2029" in first
    assert "Eylül-2019 ayına ait Yevmiye ve Büyük Defter dosyaları yedeklendi." in first
    assert "Ekim-2019" in second and "GİB&#x27;e Gönderildi" in second and "Entegratör&#x27;e Gönderilmedi" in second
    assert "missing: 1234567801-201910-GIB-YB-000000" in second and 'class="st-pending"' in second
    assert "0002 Kadıköy Şube" in third and ">Yedeklenemedi<" in third and 'class="row-failed"' in third
    assert "Dosya Oluşturuldu" in third and "İmza değeri zinciri bozuk" in third and 'class="st-failed"' in third
    assert "Kasım-2019" in fourth and "Dosya yok" in fourth and "Entegratör&#x27;e İşlendi" in fourth
    # English alongside (small text and tooltips).
    assert "backed up" in first and 'title="approved berats downloaded"' in first
    assert "02.01.2025 03:04:05 UTC" in page and "admin" in page


def test_unqueried_integrator_shows_sorgulanamadi_not_a_guess() -> None:
    page = render_page([make_row(backup_status=None, message_tr="Entegratör sorgulanamadı: bağlantı yok")])
    (row,) = rows_of(page)
    assert f">{NOT_QUERIED}<" in row and 'class="st-unknown"' in row
    assert "Yedeklendi<" not in row and "Gönderilmedi" not in row


def test_incomplete_set_is_not_called_no_files() -> None:
    (row,) = rows_of(render_page([make_row(edefter_status=None, files=1, missing=("1234567801-201909-K-000000",))]))
    assert "Eksik dosya" in row and "Dosya yok" not in row and "1234567801-201909-K-000000" in row


def test_every_text_is_escaped() -> None:
    evil = '<script>alert("x")</script>'
    page = render_page(
        [
            make_row(
                company_name=evil,
                branch="0001",
                branch_name=f'"><img src=x onerror=alert(1)>{evil}',
                message_tr=evil,
                message_en='" onmouseover="alert(1)',
                dag_id='x" onclick="alert(1)',
            )
        ],
        user=evil,
        error=evil,
    )
    assert "<script>" not in page and "<img" not in page
    assert 'onmouseover="alert' not in page and 'onclick="alert' not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_empty_page_says_nothing_to_show() -> None:
    page = render_page([])
    assert "Gösterilecek firma yok" in page and rows_of(page) == []


def test_colors_differ_per_backup_state() -> None:
    classes = {backup_class(s) for s in BackupStatus} | {backup_class(None)}
    assert len(classes) == len(BackupStatus) + 1


def test_row_json() -> None:
    data = row_to_json(make_row(branch="0001", branch_name="Merkez", backup_status=None, message_tr="x"))
    assert data["month"] == "2019-09" and data["month_label"] == "Eylül-2019"
    assert data["edefter_status"] == "Onaylı Berat İndirildi" and data["backup_status"] == NOT_QUERIED
    assert data["queried"] is False and data["retention_until"] == "2029-12-31" and data["branch"] == "0001"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("HTTPConnectionPool: http://u1234:s3cret-Entegrator!@127.0.0.1:9/v1 failed", "s3cret-Entegrator!"),
        ("connection refused password=hunter2 extra", "hunter2"),
        ("Authorization: Bearer-abc.def", "Bearer-abc.def"),
    ],
)
def test_redact_removes_secrets(text: str, secret: str) -> None:
    assert secret not in redact(text)


# -- the FastAPI app ---------------------------------------------------------------------------------


def client_with(rows: list[PageRow], readable: set[str] | None = None) -> tuple[TestClient, list[tuple[int, str | None]]]:
    calls: list[tuple[int, str | None]] = []

    def source(access: Access, months: int, company: str | None) -> list[PageRow]:
        calls.append((months, company))
        return [r for r in rows if access.can_read(r.dag_id)]

    app = create_app(row_source=source)
    allowed = readable if readable is not None else {r.dag_id for r in rows}
    # Only here is Airflow's auth replaced; the browser test goes through the real one.
    app.dependency_overrides[page_access] = lambda: Access(user="muhasebe", can_read=lambda d: d in allowed)
    return TestClient(app), calls


def test_app_serves_html_and_json() -> None:
    rows = [make_row(), make_row(dag_id="edefter_yedekleme_9876543210_0001", branch="0001", branch_name="Merkez")]
    client, calls = client_with(rows)
    page = client.get("/", headers={"accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert len(rows_of(page.text)) == 2 and "Eylül-2019" in page.text
    data = client.get("/api/rows", params={"months": 3, "company": "ornek-ticaret"}).json()
    assert [r["dag_id"] for r in data["rows"]] == [r.dag_id for r in rows]
    assert data["user"] == "muhasebe" and data["error"] is None
    assert calls == [(24, None), (3, "ornek-ticaret")]


def test_app_filters_rows_to_readable_dags() -> None:
    rows = [make_row(), make_row(dag_id="edefter_yedekleme_9876543210_0001", company_name="Gizli")]
    client, _ = client_with(rows, readable={"edefter_yedekleme_1234567801"})
    assert [r["company"] for r in client.get("/api/rows").json()["rows"]] == ["Örnek Ticaret A.Ş."]
    assert "Gizli" not in client.get("/").text


def test_app_validates_query() -> None:
    client, calls = client_with([make_row()])
    assert client.get("/api/rows", params={"months": 0}).status_code == 422
    assert client.get("/api/rows", params={"months": 1000}).status_code == 422
    assert calls == []


def test_app_shows_a_broken_source_without_secrets() -> None:
    def source(access: Access, months: int, company: str | None) -> list[PageRow]:
        raise ValueError("companies config: field 'x' broken; url http://user:topsecret@127.0.0.1:1/")

    app = create_app(row_source=source)
    app.dependency_overrides[page_access] = lambda: Access(user="u", can_read=lambda d: True)
    client = TestClient(app)
    page = client.get("/")
    assert page.status_code == 200 and "Durum tablosu oluşturulamadı" in page.text and "topsecret" not in page.text
    res = client.get("/api/rows")
    assert res.status_code == 500 and "topsecret" not in res.text and "field" in res.json()["error"]


def test_app_without_token_is_401() -> None:
    # No override: Airflow's own get_user runs and refuses a request without a bearer or _token cookie.
    client = TestClient(create_app(row_source=lambda a, m, c: pytest.fail("must not build rows")))
    res = client.get("/api/rows")
    assert res.status_code == 401
    page = client.get("/", headers={"accept": "text/html"})
    assert page.status_code == 401 and "giriş yapın" in page.text and "/auth/login" in page.text


def test_long_messages_are_cut_in_the_cell_but_kept_in_the_tooltip() -> None:
    long = "Entegratör sorgulanamadı: " + "x" * 600 + " SON"
    (row,) = rows_of(render_page([make_row(backup_status=None, message_tr=long, message_en="query failed")]))
    cell = re.search(r'<td class="msg" title="([^"]*)">(.*?)</td>', row, flags=re.S)
    assert cell is not None
    assert "SON" in cell.group(1) and "SON" not in cell.group(2) and "…" in cell.group(2)


def test_failed_run_and_archive_only_rows() -> None:
    failed = make_row(
        month=Period(2026, 4),
        backup_status=BackupStatus.YEDEKLENEMEDI,
        message_tr="Doğrulama: Yedeklenemedi: Nisan-2026 e-Defter dosyaları doğrulanamadı (1 sorun)",
        message_en="verification: Backup failed (1 problems)",
        retention_until=None,
        run_id="backfill__2026-04-30T21:00:00+00:00",
        failed_task="verify",
    )
    gone = make_row(edefter_status=None, files=0, archived_only=True)
    first, second = rows_of(render_page([failed, gone]))
    assert ">Yedeklenemedi<" in first and 'class="row-failed"' in first and "Doğrulama: Yedeklenemedi: Nisan-2026" in first
    assert "Arşivde — klasörde yok" in second and "Dosya yok" not in second
    data = row_to_json(failed)
    assert data["failed_task"] == "verify" and data["run_id"] == "backfill__2026-04-30T21:00:00+00:00"
    assert row_to_json(gone)["edefter_status_text"] == "Arşivde — klasörde yok" and row_to_json(gone)["run_id"] is None

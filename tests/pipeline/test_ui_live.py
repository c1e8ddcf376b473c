"""The e-Defter Saklama page against real components.

- collect_rows: a generated e-Defter folder + the real integrator on 127.0.0.1 (one month really
  uploaded and confirmed), Connections as AIRFLOW_CONN_* read through the hook.
- Browser: `airflow api-server` (isolated AIRFLOW_HOME, SQLite, this project's plugins folder) on a
  free 127.0.0.1 port, login with SimpleAuthManager's generated password (POST /auth/token), then
  Debian's Chromium headless driven over the DevTools protocol (the `websockets` package that
  uvicorn already brings): the JWT goes into the `_token` cookie exactly as the Airflow UI's login
  page stores it, the page is loaded directly and inside the Airflow UI (/plugin/edefter-saklama),
  DOM asserted, screenshots saved. The Chromium CLI alone (--dump-dom) cannot send a cookie, and a
  cookie-setting helper endpoint in the product would be a login-CSRF hole, hence CDP.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from include.edefter.naming import Period
from include.edefter.sample import Stage, TestPKI, generate_month
from include.edefter.status import BackupStatus, EDefterStatus
from include.pipeline.ui import NOT_QUERIED, collect_rows, render_page
from tests.conftest import PROJECT_ROOT, require_or_skip
from tests.pipeline.conftest import PASSWORD, Integrator, free_port

TAXPAYER = "1234567801"
BRANCH_TAXPAYER = "9876543210"
MISSING_TAXPAYER = "1111111114"
SEP, OCT, NOV = Period(2019, 9), Period(2019, 10), Period(2019, 11)
CHROMIUM = "/usr/bin/chromium"


@dataclass
class World:
    root: Path
    config_path: Path
    conn_env: dict[str, str]
    screenshots: Path


@pytest.fixture(scope="module")
def world(integrator: Integrator, sample_pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Two units: a company (Sep backed up, Oct berats sent to GİB, Nov only ledgers) and a branch
    whose Connection points at a closed port (integrator unreachable)."""
    root = tmp_path_factory.mktemp("ui-world")
    ornek = root / "edefter" / "ornek"
    yildiz = root / "edefter" / "yildiz"
    for period, stage in ((SEP, Stage.GIB_BERATS), (OCT, Stage.TAXPAYER_BERATS), (NOV, Stage.LEDGERS)):
        generate_month(ornek, taxpayer_id=TAXPAYER, company_name="Örnek Ticaret A.Ş.", period=period,
                       pki=sample_pki, stage=stage)
    generate_month(yildiz, taxpayer_id=BRANCH_TAXPAYER, company_name="Yıldız Gıda Ltd. Şti.", period=SEP,
                   pki=sample_pki, stage=Stage.GIB_BERATS, branch="0001", branch_name="Merkez")
    config = {
        "companies": [
            {"id": "ornek-ticaret", "taxpayer_id": TAXPAYER, "name": "Örnek Ticaret A.Ş.", "folder": str(ornek),
             "automatic": True, "start_month": "2019-09", "integrator_conn_id": "edefter_ui_ornek"},
            {"id": "yildiz-gida", "taxpayer_id": BRANCH_TAXPAYER, "name": "Yıldız Gıda Ltd. Şti.",
             "folder": str(yildiz), "automatic": False, "start_month": "2019-09",
             "branches": [{"branch": "0001", "name": "Merkez", "integrator_conn_id": "edefter_ui_yildiz_0001"}]},
            # A folder that does not exist (share not mounted): the unit must still show up.
            {"id": "kayip-klasor", "taxpayer_id": MISSING_TAXPAYER, "name": "Kayıp Klasör A.Ş.",
             "folder": str(root / "edefter" / "not-mounted"), "automatic": True, "start_month": "2019-09",
             "integrator_conn_id": "edefter_ui_kayip"},
        ]
    }
    config_path = root / "companies.yaml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    conn_env = {
        "AIRFLOW_CONN_EDEFTER_UI_ORNEK": integrator.conn_uri(TAXPAYER),
        "AIRFLOW_CONN_EDEFTER_UI_KAYIP": integrator.conn_uri(MISSING_TAXPAYER),
        # Nothing listens there: the page must say "Sorgulanamadı" and never show this password.
        "AIRFLOW_CONN_EDEFTER_UI_YILDIZ_0001": f"http://yildiz:{PASSWORD}@127.0.0.1:{free_port()}",
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in conn_env.items():
            mp.setenv(k, v)
        mp.setenv("EDEFTER_COMPANIES_FILE", str(config_path))
        mp.setenv("EDEFTER_WORK_DIR", str(root / "work"))
        _back_up(config_path, SEP)
        yield World(root, config_path, conn_env, Path(tempfile.mkdtemp(prefix="edefter-ui-shots-")))


def _back_up(config_path: Path, period: Period) -> None:
    """Verify, package and upload one month with the pipeline's own task functions; wait for the verdict."""
    from include.pipeline.config import load_config
    from include.pipeline.hook import EDefterIntegratorHook
    from include.pipeline.tasks import upload_month, verify_month

    unit = load_config(config_path).unit(f"edefter_yedekleme_{TAXPAYER}")
    verified = verify_month(unit, period)
    with EDefterIntegratorHook(unit.integrator_conn_id).get_conn() as client:
        upload_month(unit, period, verified, client)
        final = client.wait_for_final(TAXPAYER, None, period, timeout=60)
    assert final.status is BackupStatus.YEDEKLENDI, final


def test_collect_rows_from_folder_and_real_integrator(world: World) -> None:
    from include.pipeline.config import load_config

    rows = collect_rows(load_config(world.config_path), today=dt.date(2019, 12, 5))
    got = {(r.dag_id, str(r.month)): r for r in rows}
    ornek = f"edefter_yedekleme_{TAXPAYER}"
    branch = f"edefter_yedekleme_{BRANCH_TAXPAYER}_0001"
    # Newest month first, every month found in the folder (Nov has only ledgers).
    assert [str(r.month) for r in rows if r.dag_id == ornek] == ["2019-11", "2019-10", "2019-09"]
    sep = got[(ornek, "2019-09")]
    assert sep.edefter_status is EDefterStatus.ONAYLI_BERAT_INDIRILDI and sep.backup_status is BackupStatus.YEDEKLENDI
    assert "Eylül-2019" in sep.message_tr and sep.retention_until is not None and sep.retention_until.year >= 2029
    oct_ = got[(ornek, "2019-10")]
    assert oct_.edefter_status is EDefterStatus.GIBE_GONDERILDI and oct_.backup_status is BackupStatus.GONDERILMEDI
    assert got[(ornek, "2019-11")].edefter_status is EDefterStatus.DOSYA_OLUSTURULDU
    down = got[(branch, "2019-09")]
    assert down.edefter_status is EDefterStatus.ONAYLI_BERAT_INDIRILDI and down.backup_status is None
    assert "sorgulanamadı" in down.message_tr and "Connection" in down.message_en
    assert PASSWORD not in down.message_tr + down.message_en
    # Newest `months` per unit.
    newest = collect_rows(load_config(world.config_path), months=1, include_unit=lambda u: u.folder.exists())
    assert [str(r.month) for r in newest] == ["2019-11", "2019-09"]
    (lost,) = [r for r in rows if r.taxpayer_id == MISSING_TAXPAYER]
    assert lost.edefter_status is None and lost.files == 0 and lost.month == Period(2019, 11)
    assert "not-mounted bulunamadı" in lost.message_tr and lost.backup_status is BackupStatus.GONDERILMEDI
    page = render_page(rows)
    assert PASSWORD not in page and NOT_QUERIED in page and "Dosya yok" in page
    # include_unit filters whole units (the auth seam): nothing of the branch leaks.
    only = collect_rows(load_config(world.config_path), include_unit=lambda u: u.taxpayer_id == TAXPAYER)
    assert {r.dag_id for r in only} == {ornek}


def test_missing_connection_is_shown_not_raised(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from include.pipeline.config import load_config

    monkeypatch.delenv("AIRFLOW_CONN_EDEFTER_UI_YILDIZ_0001")
    rows = collect_rows(load_config(world.config_path), include_unit=lambda u: u.branch == "0001")
    assert rows and all(r.backup_status is None for r in rows)
    assert "edefter_ui_yildiz_0001" in rows[0].message_tr


# -- the real browser ---------------------------------------------------------------------------------


class Cdp:
    """Minimal Chrome DevTools Protocol client over one page target's websocket."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(ws_url, max_size=64 * 1024 * 1024, open_timeout=10))
        self.ids = itertools.count(1)

    def call(self, method: str, timeout: float = 20, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise AssertionError(f"CDP {method}: {msg['error']}")
                return dict(msg.get("result") or {})

    def eval(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return res.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {expression}")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self._stack.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group we started (api-server workers included), then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def api_server(world: World) -> Iterator[str]:
    home = world.root / "airflow-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    # The company's Connection lives in the metadata DB (as an operator adds it in the UI); the
    # branch's comes from the environment: the page must read both ways.
    db_conn = "AIRFLOW_CONN_EDEFTER_UI_ORNEK"
    env.update({k: v for k, v in world.conn_env.items() if k != db_conn})
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__CORE__DAGS_FOLDER=str(world.root / "no-dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(PROJECT_ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__API__WORKERS="1",
        PYTHONPATH=str(PROJECT_ROOT),
        EDEFTER_COMPANIES_FILE=str(world.config_path),
    )
    (world.root / "no-dags").mkdir()
    migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    added = subprocess.run(
        [sys.executable, "-m", "airflow", "connections", "add", "edefter_ui_ornek", "--conn-uri", world.conn_env[db_conn]],
        env=env, capture_output=True, text=True,
    )
    assert added.returncode == 0, added.stderr[-3000:]
    port = free_port()
    log_path = world.root / "api-server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=open(log_path, "ab"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log_path.read_text(errors="replace")[-4000:]
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "api-server did not become healthy: " + log_path.read_text()[-3000:]
            time.sleep(0.5)
        yield base
    finally:
        _stop(proc)


def _token(base: str, home: Path) -> str:
    passwords = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
    user, password = next(iter(passwords.items()))
    res = requests.post(f"{base}/auth/token", json={"username": user, "password": password}, timeout=30)
    assert res.status_code in (200, 201), res.text
    return str(res.json()["access_token"])


@contextlib.contextmanager
def chromium(profile: Path) -> Generator[Cdp, None, None]:
    proc = subprocess.Popen(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--remote-debugging-port=0",
            "--window-size=1400,900", "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None, "chromium exited"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(t for t in targets if t.get("type") == "page")
        cdp = Cdp(page["webSocketDebuggerUrl"])
        try:
            yield cdp
        finally:
            cdp.close()
    finally:
        _stop(proc)


def _navigate(cdp: Cdp, url: str) -> None:
    cdp.call("Page.navigate", url=url)
    cdp.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")


def test_page_in_real_browser(world: World, api_server: str) -> None:
    require_or_skip(Path(CHROMIUM).exists() and shutil.which(CHROMIUM) is not None, f"{CHROMIUM} not installed")
    base = api_server
    # The endpoints are not public.
    assert requests.get(f"{base}/edefter-saklama/api/rows", timeout=30).status_code == 401
    assert requests.get(f"{base}/edefter-saklama/", cookies={"_token": "forged"}, timeout=30).status_code in (401, 403)
    token = _token(base, world.root / "airflow-home")
    data = requests.get(f"{base}/edefter-saklama/api/rows", headers={"Authorization": f"Bearer {token}"},
                        timeout=60).json()
    by_month = {(r["dag_id"], r["month"]): r for r in data["rows"]}
    assert by_month[(f"edefter_yedekleme_{TAXPAYER}", "2019-09")]["backup_status"] == "Yedeklendi"
    # The nav entry the UI builds its menu from.
    plugins = requests.get(f"{base}/api/v2/plugins", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    views = [v for p in plugins["plugins"] for v in p["external_views"]]
    assert {"name": "e-Defter Saklama", "href": "/edefter-saklama/", "url_route": "edefter-saklama",
            "destination": "nav"}.items() <= next(v for v in views if v["name"] == "e-Defter Saklama").items()

    with chromium(world.root / "chromium-profile") as cdp:
        cdp.call("Page.enable")
        cdp.call("Network.enable")
        # What the Airflow login page does after POST /auth/token: the JWT in the `_token` cookie.
        ok = cdp.call("Network.setCookie", name="_token", value=token, url=f"{base}/", path="/")
        assert ok.get("success", True)

        _navigate(cdp, f"{base}/edefter-saklama/")
        dom = cdp.wait_for("document.querySelector('#edefter-saklama') && document.documentElement.outerHTML")
        direct = cdp.screenshot(world.screenshots / "edefter-saklama-page.png")
        for word in ("Eylül-2019", "Ekim-2019", "Kasım-2019", "Onaylı Berat İndirildi", "GİB'e Gönderildi",
                     "Dosya Oluşturuldu", "Yedeklendi", "Entegratör'e Gönderilmedi", NOT_QUERIED,
                     "Örnek Ticaret A.Ş.", "0001 Merkez", "Saklama bitiş tarihi"):
            assert word in dom or word.replace("'", "&#x27;") in dom, word
        assert PASSWORD not in dom
        cells = cdp.eval(
            "[...document.querySelectorAll('tr[data-month=\"2019-09\"]')]"
            ".map(tr => [tr.dataset.dagId, getComputedStyle(tr.cells[4]).backgroundColor, tr.cells[4].innerText])"
        )
        colors = {dag: (bg, text) for dag, bg, text in cells}
        ok_bg, ok_text = colors[f"edefter_yedekleme_{TAXPAYER}"]
        down_bg, down_text = colors[f"edefter_yedekleme_{BRANCH_TAXPAYER}_0001"]
        assert ok_text.startswith("Yedeklendi") and down_text.startswith(NOT_QUERIED)
        assert ok_bg != down_bg and ok_bg not in ("rgba(0, 0, 0, 0)", "transparent")

        # Inside the Airflow UI: the nav view frames the same page, same cookie.
        _navigate(cdp, f"{base}/plugin/edefter-saklama")
        framed = cdp.wait_for(
            "(() => { const f = document.querySelector('iframe');"
            " const d = f && f.contentDocument; return d && d.querySelector('#edefter-saklama') && d.body.innerText; })()",
            timeout=40,
        )
        assert "Onaylı Berat İndirildi" in framed and "Yedeklendi" in framed
        inside = cdp.screenshot(world.screenshots / "airflow-ui-edefter-saklama.png")
        nav = cdp.eval("document.body.innerText")
        assert "e-Defter Saklama" in nav or "e-Defter Saklama" in framed
    print(f"\nscreenshots: {direct} {inside}")
    assert direct.stat().st_size > 10_000 and inside.stat().st_size > 10_000

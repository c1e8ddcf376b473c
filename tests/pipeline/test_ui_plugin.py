"""The AirflowPlugin file: cheap to import, registered by Airflow, builds the page lazily."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

from tests.conftest import PROJECT_ROOT

PLUGIN_FILE = PROJECT_ROOT / "plugins" / "edefter_saklama.py"


def load_plugin_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("edefter_saklama_under_test", PLUGIN_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plugin_import_does_not_import_the_page_or_fastapi() -> None:
    # A fresh interpreter: what every scheduler/worker/dag.test process pays for this plugin.
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        "print(sorted(m for m in sys.modules if m.startswith(('include.pipeline.ui', 'fastapi'))))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(PLUGIN_FILE)], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_airflow_plugins_lists_the_page() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "plugins", "-o", "json"], capture_output=True, text=True, check=True
    )
    plugins = {p["name"]: p for p in json.loads(out.stdout[out.stdout.index("[") :])}
    plugin = plugins["edefter_saklama"]
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/edefter-saklama"
    view = plugin["external_views"][0]
    assert view["name"] == "e-Defter Saklama" and view["href"] == "/edefter-saklama/"
    assert view["destination"] == "nav" and view["url_route"] == "edefter-saklama"


def test_lazy_app_builds_the_real_page_on_first_request() -> None:
    module = load_plugin_module()
    app = module.EDefterSaklamaPlugin.fastapi_apps[0]["app"]
    client = TestClient(app)
    assert client.get("/api/rows").status_code == 401  # the real page, with Airflow's auth
    assert app._app is not None


def test_lazy_app_reports_an_import_problem_as_500(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_plugin_module()
    monkeypatch.setitem(sys.modules, "include.pipeline.ui", None)  # import now raises ImportError
    res = TestClient(module.LazyPageApp()).get("/")
    assert res.status_code == 500 and "PYTHONPATH" in res.text and "ModuleNotFoundError" in res.text

"""Test-wide setup.

Airflow reads its configuration when first imported, so the isolated test
environment (own AIRFLOW_HOME, SQLite DB, our dags/plugins folders, no examples)
is set here at import time, before any test module imports airflow.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = (PROJECT_ROOT.parent / "shared" / "schemas" / "edefter").resolve()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

_TEST_ROOT = Path(tempfile.mkdtemp(prefix="edefter-test-"))
_AIRFLOW_HOME = _TEST_ROOT / "airflow"
_AIRFLOW_HOME.mkdir()
# The generator's test PKI (made lazily by the sample_pki fixture) lives at a fixed path so every
# process started by the tests — integrator services, Airflow runs — trusts it from the start,
# exactly as production trusts Kamu SM roots and GİB's seal through the same settings.
TEST_PKI_DIR = _TEST_ROOT / "pki"
_TEST_CERTS = TEST_PKI_DIR / "test-certificates"
os.environ["EDEFTER_TEST_PKI_DIR"] = str(TEST_PKI_DIR)
os.environ["EDEFTER_TRUSTED_ROOTS"] = str(_TEST_CERTS / "ca.pem")
os.environ["EDEFTER_GIB_CERTS"] = str(_TEST_CERTS / "gib-seal.pem")
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(PROJECT_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PROJECT_ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO"
os.environ.setdefault("EDEFTER_SCHEMA_DIR", str(SCHEMA_DIR))
# Subprocesses (CLI tests, servers) import the project the same way.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p
)

pytest_plugins = ["tests.sample_fixtures"]


def require_or_skip(available: bool, reason: str) -> None:
    """Skip with a visible reason; under CI a missing server/tool is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def compose_bin() -> str:
    path = shutil.which("docker-compose") or ("/usr/bin/docker-compose" if Path("/usr/bin/docker-compose").exists() else None)
    require_or_skip(path is not None, "docker-compose not installed (Debian package docker-compose)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def schema_dir() -> Path:
    require_or_skip(SCHEMA_DIR.joinpath("edefter.xsd").is_file(), f"GİB XSD package not found at {SCHEMA_DIR}")
    return SCHEMA_DIR


@pytest.fixture(scope="session")
def xmlsec1() -> str:
    path = shutil.which("xmlsec1")
    require_or_skip(path is not None, "xmlsec1 not installed (Debian package xmlsec1)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A freshly migrated Airflow metadata DB, once per pytest run."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "reset", "--yes", "--skip-init"],
        check=False,
        capture_output=True,
    )
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return _AIRFLOW_HOME


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_TEST_ROOT, ignore_errors=True)

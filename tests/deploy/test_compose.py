"""docker-compose.yaml as a CeleryExecutor deployment: checked on `docker-compose config`'s output.

- `config` passes with a filled `.env` (and without S3 keys: they are only needed with S3 storage);
- the Celery result backend is `db+postgresql+psycopg2://…` everywhere;
- the companies file used under compose lists only folders inside the mounted e-Defter folder;
- every service that reads the folders (workers, triggerer, api-server) mounts them, read-only, from
  the same host directory;
- the integrator's data volume is made writable for the uid the integrator runs as.
"""

from __future__ import annotations

import subprocess
from pathlib import Path, PurePosixPath

import pytest
import yaml

from tests.conftest import PROJECT_ROOT
from tests.pipeline.test_compose import AIRFLOW_SERVICES, COMPOSE_FILE

FOLDERS_TARGET = PurePosixPath("/srv/edefter")
# Services that read the e-Defter folders: workers run verify/upload, the triggerer runs the deferred
# berat sensor, the api-server serves the "e-Defter Saklama" page.
FOLDER_READERS = ("airflow-worker", "airflow-triggerer", "airflow-apiserver")
FILLED_ENV = {
    "AIRFLOW__CORE__FERNET_KEY": "ZmVybmV0LWtleS1mb3ItdGVzdHMtb25seS0wMDAwMDA9",
    "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-secret-for-tests",
    "AIRFLOW_DB_PASSWORD": "airflow-db-password",
    "INTEGRATOR_DB_PASSWORD": "integrator-db-password",
    "INTEGRATOR_STORAGE": "fs",
    "S3_ACCESS_KEY": "s3-access",
    "S3_SECRET_KEY": "s3-secret",
    "AIRFLOW_UID": "50000",
}


def _compose(compose_bin: str, env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [compose_bin, "-f", str(COMPOSE_FILE), "--project-directory", str(PROJECT_ROOT), "--env-file",
         str(env_file), *args],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120,
    )


def _dotenv(tmp: Path, values: dict[str, str]) -> Path:
    path = tmp / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def config(compose_bin: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    env_file = _dotenv(tmp_path_factory.mktemp("compose-env"), FILLED_ENV)
    quiet = _compose(compose_bin, env_file, "config", "-q")
    assert quiet.returncode == 0, quiet.stderr
    full = _compose(compose_bin, env_file, "--profile", "s3", "config")
    assert full.returncode == 0, full.stderr
    return yaml.safe_load(full.stdout)


def _mounts(service: dict) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            out[volume["target"]] = {"source": volume.get("source"), "read_only": bool(volume.get("read_only"))}
        else:  # short syntax "src:dst[:mode]"
            parts = volume.split(":")
            out[parts[1]] = {"source": parts[0], "read_only": parts[2:] == ["ro"]}
    return out


def test_config_passes_with_a_filled_env(config: dict) -> None:
    assert {"redis", "postgres", *AIRFLOW_SERVICES, "integrator", "integrator-init"} <= set(config["services"])


def test_s3_keys_are_only_needed_for_s3(compose_bin: str, tmp_path: Path) -> None:
    values = {k: v for k, v in FILLED_ENV.items() if not k.startswith("S3_")}
    proc = _compose(compose_bin, _dotenv(tmp_path, values), "config", "-q")
    assert proc.returncode == 0, proc.stderr
    # …and the S3 server refuses to start without them instead of running with empty credentials.
    proc = _compose(compose_bin, _dotenv(tmp_path, values), "--profile", "s3", "config")
    assert proc.returncode == 0, proc.stderr
    # docker-compose 1.29 prints `$$` escaped, newer ones print `$`.
    script = yaml.safe_load(proc.stdout)["services"]["seaweedfs"]["command"][0].replace("$$", "$")
    assert '[ -z "$S3_ACCESS_KEY" ]' in script and "exit 1" in script


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_celery_result_backend_uses_psycopg2(config: dict, service: str) -> None:
    env = config["services"][service]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://"), env[
        "AIRFLOW__CELERY__RESULT_BACKEND"
    ]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")


def _companies_file_on_host(config: dict, service: str) -> Path:
    """The host file behind the service's EDEFTER_COMPANIES_FILE, through the service's mounts."""
    target = PurePosixPath(config["services"][service]["environment"]["EDEFTER_COMPANIES_FILE"])
    for mount_target, mount in _mounts(config["services"][service]).items():
        try:
            rel = target.relative_to(mount_target)
        except ValueError:
            continue
        return Path(mount["source"]) / rel
    raise AssertionError(f"{service}: {target} is not inside any mounted directory")


def test_compose_companies_file_folders_are_inside_the_mount(config: dict) -> None:
    from include.pipeline.config import load_config

    for service in AIRFLOW_SERVICES:
        host_file = _companies_file_on_host(config, service)
        assert host_file == PROJECT_ROOT / "config" / "companies.compose.yaml", (service, host_file)
    cfg = load_config(PROJECT_ROOT / "config" / "companies.compose.yaml")  # validates every field
    assert cfg.units
    for unit in cfg.units:
        folder = PurePosixPath(str(unit.folder))
        assert folder.is_absolute() and folder.is_relative_to(FOLDERS_TARGET), (unit.dag_id, folder)
        assert ".." not in folder.parts, (unit.dag_id, folder)


def test_every_service_that_reads_the_folders_mounts_them(config: dict) -> None:
    sources = set()
    for service in FOLDER_READERS:
        mounts = _mounts(config["services"][service])
        assert str(FOLDERS_TARGET) in mounts, f"{service} does not mount the e-Defter folders"
        assert mounts[str(FOLDERS_TARGET)]["read_only"] is True, service
        sources.add(mounts[str(FOLDERS_TARGET)]["source"])
        # They read the same companies file too.
        env = config["services"][service]["environment"]
        assert env["EDEFTER_COMPANIES_FILE"] == "/opt/airflow/config/companies.compose.yaml"
    assert len(sources) == 1, sources


def test_integrator_data_volume_is_writable_by_its_user(config: dict) -> None:
    services = config["services"]
    integrator, init = services["integrator"], services["integrator-init"]
    data_target = integrator["environment"]["INTEGRATOR_DATA"]
    assert _mounts(integrator)[data_target]["source"] == _mounts(init)[data_target]["source"]
    uid = str(integrator["user"]).split(":")[0]
    assert uid == FILLED_ENV["AIRFLOW_UID"]
    assert str(init["user"]).split(":")[0] == "0"
    script = " ".join(init["command"]) if isinstance(init["command"], list) else init["command"]
    assert f'chown -R "{uid}:0" {data_target}' in script, script
    assert integrator["depends_on"]["integrator-init"]["condition"] == "service_completed_successfully"


def test_gitignore_keeps_secrets_out() -> None:
    ignored = (PROJECT_ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored
    assert "simple_auth_manager_passwords.json.generated" in ignored

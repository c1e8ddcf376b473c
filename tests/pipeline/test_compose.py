"""docker-compose.yaml and Dockerfile: validated with Debian's docker-compose (no Docker engine needed).

`docker-compose config` interpolates and normalises the file exactly as `up` would, so the invariants
below are checked on its output, not on our own reading of the YAML.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yaml"
AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
)
SECRETS = {
    "AIRFLOW__CORE__FERNET_KEY": "test-fernet-key-value",
    "AIRFLOW__API_AUTH__JWT_SECRET": "test-jwt-secret-value",
    "AIRFLOW_DB_PASSWORD": "test-airflow-db-password",
    "INTEGRATOR_DB_PASSWORD": "test-integrator-db-password",
    "S3_ACCESS_KEY": "test-access",
    "S3_SECRET_KEY": "test-secret",
}


def _env_file(tmp_path: Path, values: dict[str, str]) -> Path:
    path = tmp_path / "compose.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    return path


def _compose(compose_bin: str, env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [compose_bin, "-f", str(COMPOSE_FILE), "--env-file", str(env_file), *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )


@pytest.fixture(scope="module")
def config(compose_bin: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    env_file = _env_file(tmp_path_factory.mktemp("compose"), SECRETS)
    quiet = _compose(compose_bin, env_file, "config", "-q")
    assert quiet.returncode == 0, quiet.stderr
    full = _compose(compose_bin, env_file, "--profile", "s3", "config")
    assert full.returncode == 0, full.stderr
    return yaml.safe_load(full.stdout)


def test_config_quiet_is_valid(config: dict) -> None:
    # The fixture already asserted `config -q` exits 0; also the official Airflow 3 structure is there.
    expected = {"postgres", "redis", *AIRFLOW_SERVICES, "integrator", "integrator-postgres", "seaweedfs"}
    assert expected <= set(config["services"])


def test_missing_secret_fails_loudly(compose_bin: str, tmp_path: Path) -> None:
    # No baked-in default secrets: leaving the Fernet key out must make compose refuse the file.
    values = {k: v for k, v in SECRETS.items() if k != "AIRFLOW__CORE__FERNET_KEY"}
    proc = _compose(compose_bin, _env_file(tmp_path, values), "config", "-q")
    assert proc.returncode != 0
    assert "AIRFLOW__CORE__FERNET_KEY" in proc.stderr


def test_env_example_lists_every_required_secret() -> None:
    example = (PROJECT_ROOT / ".env.example").read_text(encoding="utf-8")
    keys = {line.split("=", 1)[0] for line in example.splitlines() if "=" in line and not line.startswith("#")}
    assert set(SECRETS) <= keys
    # The example carries no real secret values.
    for line in example.splitlines():
        if line.split("=", 1)[0] in SECRETS:
            assert line.endswith("="), line


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_airflow_components_share_secrets_and_paths(config: dict, service: str) -> None:
    env = config["services"][service]["environment"]
    assert env["AIRFLOW__CORE__FERNET_KEY"] == SECRETS["AIRFLOW__CORE__FERNET_KEY"]
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == SECRETS["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["PYTHONPATH"] == "/opt/airflow/project"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    targets = {}
    for volume in config["services"][service]["volumes"]:
        if isinstance(volume, dict):
            targets[volume["target"]] = volume
        else:  # short syntax "src:dst[:mode]"
            parts = volume.split(":")
            targets[parts[1]] = {"source": parts[0], "read_only": parts[2:] == ["ro"]}
    for target, source_dir in (
        ("/opt/airflow/dags", "dags"),
        ("/opt/airflow/plugins", "plugins"),
        ("/opt/airflow/project/include", "include"),
        ("/opt/airflow/config", "config"),
    ):
        assert target in targets, f"{service} lacks the {source_dir} mount"
        assert Path(targets[target]["source"]) == PROJECT_ROOT / source_dir
    # The e-Defter folders are never written to: read-only inside every container.
    assert targets["/srv/edefter"]["read_only"] is True


def test_integrator_service_uses_own_postgres(config: dict) -> None:
    integrator = config["services"]["integrator"]
    command = integrator["command"]
    assert command[:1] == ["serve"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    # The DB URL carries a password: it comes from the environment, never a flag visible in `ps`.
    assert "--db-url" not in command
    db_url = integrator["environment"]["INTEGRATOR_DB_URL"]
    assert db_url.startswith("postgresql")
    assert "@integrator-postgres/" in db_url
    # The service verifies sets with the same trust anchors as the pipeline.
    assert integrator["environment"]["EDEFTER_TRUSTED_ROOTS"] == "/opt/airflow/trust/roots"
    assert integrator["environment"]["EDEFTER_GIB_CERTS"] == "/opt/airflow/trust/gib"
    assert "integrator-postgres" in integrator["depends_on"]
    assert integrator["entrypoint"] == ["python", "-m", "include.integrator"]
    assert integrator["environment"]["PYTHONPATH"] == "/opt/airflow/project"


def test_integrator_can_store_into_the_s3_profile(config: dict) -> None:
    env = config["services"]["integrator"]["environment"]
    assert env["INTEGRATOR_STORAGE"] == "fs"  # default; INTEGRATOR_STORAGE=s3 switches to SeaweedFS
    assert env["INTEGRATOR_S3_ENDPOINT"] == "http://seaweedfs:8333"
    assert env["INTEGRATOR_S3_ACCESS_KEY"] == SECRETS["S3_ACCESS_KEY"]
    assert env["INTEGRATOR_S3_SECRET_KEY"] == config["services"]["seaweedfs"]["environment"]["S3_SECRET_KEY"]


def test_s3_profile_exposes_only_the_s3_port(config: dict) -> None:
    weed = config["services"]["seaweedfs"]
    assert weed["profiles"] == ["s3"]
    # docker-compose 1.29 prints short syntax "127.0.0.1:8333:8333/tcp"; newer ones print mappings.
    published = set()
    for port in weed.get("ports", []):
        if isinstance(port, dict):
            published.add((port.get("host_ip"), int(port["target"])))
        else:
            host_ip, _host, container = port.split("/")[0].rsplit(":", 2)
            published.add((host_ip, int(container)))
    assert published == {("127.0.0.1", 8333)}
    script = weed["command"][0]
    for flag in ("-master.telemetry=false", "-admin.ui=false", "-webdav=false", "-s3.port=8333"):
        assert flag in script


def test_s3_profile_is_optional(compose_bin: str, config: dict, tmp_path: Path) -> None:
    proc = _compose(compose_bin, _env_file(tmp_path, SECRETS), "config", "--profiles")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["s3"]
    # Everything else starts with a plain `up`; only SeaweedFS waits for `--profile s3`.
    with_profiles = {name for name, svc in config["services"].items() if svc.get("profiles")}
    assert with_profiles == {"seaweedfs"}


def test_dockerfile_builds_on_airflow_332_with_constraints() -> None:
    text = (PROJECT_ROOT / "Dockerfile").read_text(encoding="utf-8")
    from_lines = [line for line in text.splitlines() if line.startswith("FROM")]
    assert from_lines == ["FROM apache/airflow:3.3.2"]
    assert "-r /opt/airflow/project/requirements.txt -c /opt/airflow/project/constraints.txt" in text
    assert "PYTHONPATH=/opt/airflow/project" in text
    ignored = (PROJECT_ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    # Local state and secrets never go into the build context.
    assert {".env", "var", ".venv"} <= set(ignored)

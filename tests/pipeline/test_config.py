"""Config validation: every mistake names the company and the field."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from include.edefter.deadlines import TaxpayerKind
from include.edefter.naming import Period
from include.pipeline.config import PROJECT_ROOT, ConfigError, load_config, parse_config

GOOD = {
    "defaults": {
        "poll_interval_seconds": 600,
        "alerts": {"email": ["muhasebe@example.com.tr"], "webhook_conn_id": "edefter_alert_webhook"},
    },
    "companies": [
        {
            "id": "yildiz-gida",
            "taxpayer_id": "9876543210",
            "name": "Yıldız Gıda Ltd. Şti.",
            "folder": "/srv/edefter/yildiz",
            "automatic": True,
            "start_month": "2025-01",
            "branches": [
                {"branch": "0002", "name": "Kadıköy Şube", "integrator_conn_id": "c_y2"},
                {"branch": "0001", "name": "Merkez", "integrator_conn_id": "c_y1"},
            ],
        },
        {
            "id": "ornek-ticaret",
            "taxpayer_id": "1234567801",
            "name": "Örnek Ticaret A.Ş.",
            "folder": "var/demo/ornek",
            "automatic": False,
            "start_month": "2025-03",
            "integrator_conn_id": "edefter_integrator_ornek",
            "poll_interval_seconds": 5,
        },
    ],
}


def test_good_config_gives_sorted_units_and_dag_ids() -> None:
    cfg = parse_config(copy.deepcopy(GOOD))
    assert [u.dag_id for u in cfg.units] == [
        "edefter_yedekleme_1234567801",
        "edefter_yedekleme_9876543210_0001",
        "edefter_yedekleme_9876543210_0002",
    ]
    ornek = cfg.unit("edefter_yedekleme_1234567801")
    assert ornek.automatic is False
    assert ornek.start_month == Period(2025, 3)
    assert ornek.folder == PROJECT_ROOT / "var/demo/ornek"  # relative folders resolve against the project
    assert ornek.tuning.poll_interval_seconds == 5  # company override
    assert ornek.alerts.email == ("muhasebe@example.com.tr",)  # defaults inherited
    branch = cfg.unit("edefter_yedekleme_9876543210_0002")
    assert (branch.branch, branch.branch_name, branch.integrator_conn_id) == ("0002", "Kadıköy Şube", "c_y2")
    assert branch.tuning.poll_interval_seconds == 600
    assert branch.taxpayer_type is TaxpayerKind.KURUMLAR


def test_queue_per_company_and_per_branch_reaches_every_task() -> None:
    from include.pipeline.dag_factory import build_dag

    data = copy.deepcopy(GOOD)
    data["companies"][1]["queue"] = "ofis-ornek"
    data["companies"][0]["queue"] = "yildiz"
    next(b for b in data["companies"][0]["branches"] if b["branch"] == "0002")["queue"] = "kadikoy"
    cfg = parse_config(data)
    queues = {u.dag_id: u.queue for u in cfg.units}
    assert queues == {
        "edefter_yedekleme_1234567801": "ofis-ornek",
        "edefter_yedekleme_9876543210_0001": "yildiz",  # the company's queue
        "edefter_yedekleme_9876543210_0002": "kadikoy",  # the branch's own
    }
    for unit in cfg.units:
        dag = build_dag(unit)
        assert {t.queue for t in dag.tasks} == {unit.queue}, unit.dag_id
    plain = build_dag(parse_config(copy.deepcopy(GOOD)).units[0])
    assert {t.queue for t in plain.tasks} == {"default"}


def _broken(mutate) -> ConfigError:
    data = copy.deepcopy(GOOD)
    mutate(data)
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value


def _set(path: list, value):
    def mutate(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "company", "field", "needle"),
    [
        (_set(["companies", 1, "taxpayer_id"], "12345"), "ornek-ticaret", "taxpayer_id", "10-digit VKN"),
        (_set(["companies", 1, "taxpayer_id"], 1234567801), "ornek-ticaret", "taxpayer_id", "quotes"),
        (_set(["companies", 1, "taxpayer_id"], "12345678a1"), "ornek-ticaret", "taxpayer_id", "VKN"),
        (_set(["companies", 1, "id"], "yildiz-gida"), "yildiz-gida", "id", "duplicate company id"),
        (_set(["companies", 1, "id"], "Ornek Ticaret"), "#2", "id", "slug"),
        (_set(["companies", 1, "taxpayer_id"], "9876543210"), "ornek-ticaret", "taxpayer_id", "duplicate taxpayer"),
        (_set(["companies", 1, "integrator_conn_id"], KeyError), "ornek-ticaret", "integrator_conn_id", "Connection id"),
        (_set(["companies", 1, "start_month"], "2025-13"), "ornek-ticaret", "start_month", "YYYY-MM"),
        (_set(["companies", 1, "start_month"], "03/2025"), "ornek-ticaret", "start_month", "YYYY-MM"),
        (_set(["companies", 1, "automatic"], "evet"), "ornek-ticaret", "automatic", "true or false"),
        (_set(["companies", 1, "folder"], ""), "ornek-ticaret", "folder", "folder"),
        (_set(["companies", 1, "password"], "x"), "ornek-ticaret", "password", "unknown field"),
        (_set(["companies", 1, "poll_interval_seconds"], 0), "ornek-ticaret", "poll_interval_seconds", ">= 1"),
        (_set(["companies", 1, "taxpayer_type"], "şahıs"), "ornek-ticaret", "taxpayer_type", "gelir"),
        (_set(["companies", 0, "branches", 1, "branch"], "0002"), "yildiz-gida", "branches[1].branch", "duplicate branch"),
        (_set(["companies", 0, "branches", 1, "branch"], "0000"), "yildiz-gida", "branches[1].branch", "0000"),
        (_set(["companies", 0, "branches", 1, "branch"], 1), "yildiz-gida", "branches[1].branch", "4 digits"),
        (
            _set(["companies", 0, "branches", 0, "integrator_conn_id"], KeyError),
            "yildiz-gida",
            "branches[0].integrator_conn_id",
            "Connection id",
        ),
        (_set(["companies", 0, "branches"], []), "yildiz-gida", "branches", "non-empty"),
        (_set(["companies", 0, "integrator_conn_id"], "x"), "yildiz-gida", "integrator_conn_id", "per branch"),
        (_set(["defaults", "alerts", "email"], ["not-an-address"]), None, "defaults.alerts.email", "e-mail"),
        (_set(["companies", 1, "queue"], "ofis kuyruk"), "ornek-ticaret", "queue", "Celery queue"),
        (_set(["companies", 1, "queue"], 7), "ornek-ticaret", "queue", "Celery queue"),
        (_set(["companies", 0, "branches", 1, "queue"], ""), "yildiz-gida", "branches[1].queue", "Celery queue"),
    ],
)
def test_each_config_error_names_company_and_field(mutate, company, field, needle) -> None:
    err = _broken(mutate)
    assert err.company == company
    assert err.field == field
    assert needle in str(err)
    assert err.message_tr  # Turkish alongside


def test_branch_company_and_whole_company_of_same_taxpayer_conflict() -> None:
    def mutate(data):
        data["companies"][1]["taxpayer_id"] = "9876543210"
        data["companies"][1]["id"] = "zz-whole"

    err = _broken(mutate)
    assert err.company == "zz-whole" and "duplicate taxpayer 9876543210" in str(err)


def test_load_config_reports_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("companies: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_repo_configs_are_valid() -> None:
    default = load_config(PROJECT_ROOT / "include/config/companies.yaml")
    example = load_config(PROJECT_ROOT / "include/config/companies.example.yaml")
    assert default.units and example.units


def test_require_schema_defaults_false_inherits_and_overrides() -> None:
    cfg = parse_config(copy.deepcopy(GOOD))
    assert all(u.tuning.require_schema is False for u in cfg.units)
    data = copy.deepcopy(GOOD)
    data["defaults"]["require_schema"] = True
    data["companies"][1]["require_schema"] = False
    cfg = parse_config(data)
    assert cfg.unit("edefter_yedekleme_9876543210_0001").tuning.require_schema is True  # from defaults
    assert cfg.unit("edefter_yedekleme_1234567801").tuning.require_schema is False  # company override


@pytest.mark.parametrize("value", ["evet", 1, None, "true"])
def test_require_schema_must_be_a_boolean(value: object) -> None:
    err = _broken(_set(["companies", 1, "require_schema"], value))
    assert err.company == "ornek-ticaret" and err.field == "require_schema"
    assert "true or false" in str(err) and "true veya false" in str(err)


def test_require_schema_makes_a_skipped_schema_block_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    """verify_month passes schema="require" only when the unit's require_schema is true."""
    import include.edefter.checks as checks
    from include.pipeline import tasks

    seen: list[object] = []

    class Stop(Exception):
        pass

    def fake_validate_month(*_a: object, **kw: object) -> None:
        seen.append(kw.get("schema"))
        raise Stop

    class FakeDisc:
        def month_inputs(self, _ls: object) -> list[object]:
            return []

    monkeypatch.setattr(checks, "validate_month", fake_validate_month)
    monkeypatch.setattr(tasks, "_scan", lambda unit, period: (None, FakeDisc(), type("LS", (), {"key": None})()))
    monkeypatch.setattr(tasks, "file_checks", lambda: ())
    for flag, want in ((True, "require"), (False, "auto")):
        data = copy.deepcopy(GOOD)
        data["companies"][1]["require_schema"] = flag
        unit = parse_config(data).unit("edefter_yedekleme_1234567801")
        with pytest.raises(Stop):
            tasks.verify_month(unit, Period(2025, 3))
        assert seen[-1] == want

"""The companies configuration: load, validate, and turn into backup units (one DAG each).

Parsed when the DAG file is parsed, so this module imports only the standard library,
PyYAML and the domain's naming module. Every error names the company and the field,
because whoever edits the YAML is usually an accountant or an operator, not the author.
Folder existence is deliberately NOT checked here: the folder may live on a share that is
mounted only on workers; the berat sensor reports a missing folder at run time.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.edefter.deadlines import TaxpayerKind
from include.edefter.naming import Period

__all__ = [
    "COMPANIES_FILE_ENV",
    "EVIDENCE_DIR_ENV",
    "PROJECT_ROOT",
    "WORK_DIR_ENV",
    "Alerts",
    "BackupUnit",
    "Branch",
    "Company",
    "ConfigError",
    "PipelineConfig",
    "TaxpayerKind",
    "Tuning",
    "companies_file",
    "evidence_dir",
    "load_config",
    "parse_config",
    "work_dir",
]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMPANIES_FILE_ENV = "EDEFTER_COMPANIES_FILE"
WORK_DIR_ENV = "EDEFTER_WORK_DIR"
EVIDENCE_DIR_ENV = "EDEFTER_EVIDENCE_DIR"

_SLUG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_TAXPAYER_RE = re.compile(r"[0-9]{10,11}")
_BRANCH_RE = re.compile(r"[0-9]{4}")
_CONN_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,200}")
_MONTH_RE = re.compile(r"([0-9]{4})-([0-9]{2})")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class ConfigError(ValueError):
    """A configuration mistake; ``company`` and ``field`` say where."""

    def __init__(self, company: str | None, field_name: str, message_en: str, message_tr: str) -> None:
        self.company = company
        self.field = field_name
        self.message_en = message_en
        self.message_tr = message_tr
        where = f"company {company!r}, field {field_name!r}" if company else f"field {field_name!r}"
        super().__init__(f"companies config: {where}: {message_en} / {message_tr}")


@dataclass(frozen=True)
class Alerts:
    email: tuple[str, ...] = ()
    webhook_conn_id: str | None = None
    smtp_conn_id: str = "smtp_default"
    from_email: str | None = None

    @property
    def any(self) -> bool:
        return bool(self.email or self.webhook_conn_id)


@dataclass(frozen=True)
class Tuning:
    """Knobs that tests shrink and production leaves at their defaults."""

    poll_interval_seconds: int = 3600
    status_poll_interval_seconds: int = 60
    # None: wait until the month's secondary-copy deadline (deadlines.py).
    berat_timeout_seconds: int | None = None
    status_timeout_seconds: int = 6 * 3600
    # Alert once when a month still waits for its berats this many days before the
    # secondary-copy deadline (0 disables the warning).
    deadline_warning_days: int = 7
    retries: int = 4
    retry_delay_seconds: int = 60
    max_retry_delay_seconds: int = 3600
    # Months wait on their berats for up to ~4.5 months, so a year of backfill must fit.
    max_active_runs: int = 12
    owner: str = "muhasebe"
    # true: a skipped XSD validation (no usable GİB schema package, ``schema.skipped``) blocks the
    # backup in verify; false (default): it is a warning and the backup goes on.
    require_schema: bool = False


@dataclass(frozen=True)
class Branch:
    branch: str
    name: str
    integrator_conn_id: str
    queue: str | None = None


@dataclass(frozen=True)
class Company:
    id: str
    taxpayer_id: str
    name: str
    folder: Path
    automatic: bool
    start_month: Period
    taxpayer_type: TaxpayerKind
    integrator_conn_id: str | None
    branches: tuple[Branch, ...]
    alerts: Alerts
    tuning: Tuning
    queue: str | None = None


@dataclass(frozen=True)
class BackupUnit:
    """What one DAG backs up: a whole company (firma bazında) or one branch (şube bazında)."""

    company_id: str
    company_name: str
    taxpayer_id: str
    branch: str | None
    branch_name: str | None
    folder: Path
    automatic: bool
    start_month: Period
    taxpayer_type: TaxpayerKind
    integrator_conn_id: str
    alerts: Alerts
    tuning: Tuning
    # Celery queue of every task of this unit (None: the default queue).
    queue: str | None = None

    @property
    def dag_id(self) -> str:
        suffix = f"_{self.branch}" if self.branch else ""
        return f"edefter_yedekleme_{self.taxpayer_id}{suffix}"

    @property
    def display_name(self) -> str:
        return f"{self.company_name} / {self.branch_name}" if self.branch else self.company_name

    @property
    def relative_dir(self) -> Path:
        """<taxpayer_id>[/<branch>], the layout under the work and evidence dirs."""
        return Path(self.taxpayer_id, self.branch) if self.branch else Path(self.taxpayer_id)


@dataclass(frozen=True)
class PipelineConfig:
    source: Path | None
    companies: tuple[Company, ...]
    units: tuple[BackupUnit, ...] = field(default=())

    def unit(self, dag_id: str) -> BackupUnit:
        for unit in self.units:
            if unit.dag_id == dag_id:
                return unit
        raise KeyError(dag_id)


def companies_file() -> Path:
    value = os.environ.get(COMPANIES_FILE_ENV, "").strip()
    return Path(value).expanduser() if value else PROJECT_ROOT / "include" / "config" / "companies.yaml"


def work_dir() -> Path:
    value = os.environ.get(WORK_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else PROJECT_ROOT / "var" / "work"


def evidence_dir() -> Path:
    value = os.environ.get(EVIDENCE_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else PROJECT_ROOT / "var" / "evidence"


def load_config(path: Path | str | None = None) -> PipelineConfig:
    """Read and validate the YAML file (default: env EDEFTER_COMPANIES_FILE or include/config/companies.yaml)."""
    import yaml

    source = Path(path) if path is not None else companies_file()
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            None, "file", f"cannot read {source}: {exc.strerror or exc}", f"{source} okunamıyor: {exc.strerror or exc}"
        ) from exc
    try:
        # libyaml's C loader when present: ~10x faster for a 1,000-company file parsed every few seconds.
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - safe loader
    except yaml.YAMLError as exc:
        raise ConfigError(None, "file", f"{source} is not valid YAML: {exc}", f"{source} geçerli YAML değil: {exc}") from exc
    return parse_config(data, source=source)


_TOP_KEYS = {"defaults", "companies"}
_QUEUE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_TUNING_KEYS = {
    "poll_interval_seconds",
    "status_poll_interval_seconds",
    "berat_timeout_seconds",
    "status_timeout_seconds",
    "deadline_warning_days",
    "retries",
    "retry_delay_seconds",
    "max_retry_delay_seconds",
    "max_active_runs",
    "owner",
    "require_schema",
}
_DEFAULT_KEYS = _TUNING_KEYS | {"alerts", "taxpayer_type"}
_COMPANY_KEYS = _DEFAULT_KEYS | {
    "id",
    "taxpayer_id",
    "name",
    "folder",
    "automatic",
    "start_month",
    "integrator_conn_id",
    "branches",
    "queue",
}
_BRANCH_KEYS = {"branch", "name", "integrator_conn_id", "queue"}
_ALERT_KEYS = {"email", "webhook_conn_id", "smtp_conn_id", "from_email"}


def parse_config(data: Any, source: Path | None = None) -> PipelineConfig:
    """Validate already-loaded YAML data. Raises ConfigError naming company and field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(None, "file", "the top level must be a mapping", "en üst düzey bir eşleme (mapping) olmalı")
    _no_unknown(None, "", data, _TOP_KEYS)
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(None, "defaults", "must be a mapping", "eşleme (mapping) olmalı")
    _no_unknown(None, "defaults.", defaults, _DEFAULT_KEYS)
    base_tuning = _tuning(None, "defaults.", defaults, Tuning())
    base_alerts = _alerts(None, "defaults.alerts", defaults.get("alerts"), Alerts())
    base_type = defaults.get("taxpayer_type")

    raw_companies = data.get("companies") or []
    if not isinstance(raw_companies, list):
        raise ConfigError(None, "companies", "must be a list", "liste olmalı")
    companies: list[Company] = []
    seen_ids: dict[str, int] = {}
    seen_keys: dict[tuple[str, str | None], str] = {}
    # First company that configured each taxpayer id (any branch): a dict lookup instead of a
    # scan of seen_keys per whole-company unit, which made validation quadratic in companies.
    first_of_taxpayer: dict[str, str] = {}
    for index, raw in enumerate(raw_companies):
        label = f"#{index + 1}"
        if not isinstance(raw, dict):
            raise ConfigError(label, "companies", "each company must be a mapping", "her firma bir eşleme olmalı")
        company = _company(raw, label, base_tuning, base_alerts, base_type, source)
        if company.id in seen_ids:
            raise ConfigError(
                company.id,
                "id",
                f"duplicate company id (also company #{seen_ids[company.id]})",
                f"firma kimliği tekrarlanmış (firma #{seen_ids[company.id]} ile aynı)",
            )
        seen_ids[company.id] = index + 1
        keys = [(company.taxpayer_id, b.branch) for b in company.branches] or [(company.taxpayer_id, None)]
        for key in keys:
            # A whole-company unit and a branch unit of the same taxpayer would back up
            # overlapping names under two credentials: refuse any reuse of the taxpayer id
            # except disjoint branches.
            clash = seen_keys.get(key)
            if clash is None and key[1] is None:
                clash = first_of_taxpayer.get(key[0])
            if clash is None and key[1] is not None:
                clash = seen_keys.get((key[0], None))
            if clash:
                what_en = f"taxpayer {key[0]}" + (f" branch {key[1]}" if key[1] else "")
                what_tr = f"{key[0]} vergi numarası" + (f" {key[1]} şubesi" if key[1] else "")
                raise ConfigError(
                    company.id,
                    "branches" if key[1] else "taxpayer_id",
                    f"duplicate {what_en} (already configured by company {clash!r})",
                    f"{what_tr} tekrarlanmış ({clash!r} firmasında zaten tanımlı)",
                )
            seen_keys[key] = company.id
            first_of_taxpayer.setdefault(key[0], company.id)
        companies.append(company)

    companies.sort(key=lambda c: c.id)
    units = tuple(sorted((u for c in companies for u in _units(c)), key=lambda u: u.dag_id))
    return PipelineConfig(source=source, companies=tuple(companies), units=units)


def _units(company: Company) -> list[BackupUnit]:
    common = dict(
        company_id=company.id,
        company_name=company.name,
        taxpayer_id=company.taxpayer_id,
        folder=company.folder,
        automatic=company.automatic,
        start_month=company.start_month,
        taxpayer_type=company.taxpayer_type,
        alerts=company.alerts,
        tuning=company.tuning,
    )
    if not company.branches:
        assert company.integrator_conn_id is not None
        return [
            BackupUnit(
                branch=None,
                branch_name=None,
                integrator_conn_id=company.integrator_conn_id,
                queue=company.queue,
                **common,
            )
        ]
    return [
        BackupUnit(
            branch=b.branch,
            branch_name=b.name,
            integrator_conn_id=b.integrator_conn_id,
            queue=b.queue or company.queue,
            **common,
        )
        for b in company.branches
    ]


def _no_unknown(company: str | None, prefix: str, raw: dict[str, Any], allowed: set[str]) -> None:
    for key in raw:
        if key not in allowed:
            raise ConfigError(
                company,
                f"{prefix}{key}",
                f"unknown field (allowed: {', '.join(sorted(allowed))})",
                f"bilinmeyen alan (izin verilenler: {', '.join(sorted(allowed))})",
            )


def _company(
    raw: dict[str, Any],
    label: str,
    base_tuning: Tuning,
    base_alerts: Alerts,
    base_type: Any,
    source: Path | None,
) -> Company:
    cid = raw.get("id")
    if not isinstance(cid, str) or not _SLUG_RE.fullmatch(cid):
        raise ConfigError(
            label,
            "id",
            f"id must be a slug of a-z, 0-9 and '-', got {cid!r}",
            f"id yalnızca a-z, 0-9 ve '-' içermeli, {cid!r} bulundu",
        )
    _no_unknown(cid, "", raw, _COMPANY_KEYS)
    tid = raw.get("taxpayer_id")
    if isinstance(tid, int):
        raise ConfigError(
            cid,
            "taxpayer_id",
            "write the taxpayer id in quotes: as a number its leading zeros are lost",
            "vergi numarasını tırnak içinde yazın: sayı olarak baştaki sıfırlar kaybolur",
        )
    if not isinstance(tid, str) or not _TAXPAYER_RE.fullmatch(tid):
        raise ConfigError(
            cid,
            "taxpayer_id",
            f"must be a 10-digit VKN or an 11-digit TCKN, got {tid!r}",
            f"10 haneli VKN veya 11 haneli TCKN olmalı, {tid!r} bulundu",
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(cid, "name", "a non-empty company name is required", "firma adı boş olamaz")
    folder_raw = raw.get("folder")
    if not isinstance(folder_raw, str) or not folder_raw.strip():
        raise ConfigError(cid, "folder", "the e-Defter folder path is required", "e-Defter klasörü belirtilmeli")
    folder = Path(folder_raw).expanduser()
    if not folder.is_absolute():
        # Relative to the project root, so one companies.yaml works from any working directory.
        folder = PROJECT_ROOT / folder
    automatic = raw.get("automatic", True)
    if not isinstance(automatic, bool):
        raise ConfigError(
            cid, "automatic", f"must be true or false, got {automatic!r}", f"true veya false olmalı, {automatic!r} bulundu"
        )
    start_raw = raw.get("start_month")
    start = _month(cid, "start_month", start_raw)
    ttype_raw = raw.get("taxpayer_type", base_type)
    if ttype_raw is None:
        # A TCKN (11 digits) is always a person, so an income-tax payer; a VKN is usually a company.
        ttype = TaxpayerKind.GELIR if len(tid) == 11 else TaxpayerKind.KURUMLAR
    else:
        try:
            ttype = TaxpayerKind(ttype_raw)
        except ValueError:
            raise ConfigError(
                cid,
                "taxpayer_type",
                f"must be 'gelir' or 'kurumlar', got {ttype_raw!r}",
                f"'gelir' veya 'kurumlar' olmalı, {ttype_raw!r} bulundu",
            ) from None
    conn = raw.get("integrator_conn_id")
    branches_raw = raw.get("branches")
    branches: list[Branch] = []
    if branches_raw is not None:
        if conn is not None:
            raise ConfigError(
                cid,
                "integrator_conn_id",
                "a branch-based company sets integrator_conn_id per branch, not for the company",
                "şube bazında firmada integrator_conn_id şube başına verilir, firma için değil",
            )
        if not isinstance(branches_raw, list) or not branches_raw:
            raise ConfigError(cid, "branches", "must be a non-empty list", "boş olmayan bir liste olmalı")
        seen: set[str] = set()
        for i, braw in enumerate(branches_raw):
            fname = f"branches[{i}]"
            if not isinstance(braw, dict):
                raise ConfigError(cid, fname, "each branch must be a mapping", "her şube bir eşleme olmalı")
            _no_unknown(cid, f"{fname}.", braw, _BRANCH_KEYS)
            code = braw.get("branch")
            if isinstance(code, int) or not isinstance(code, str) or not _BRANCH_RE.fullmatch(code) or code == "0000":
                raise ConfigError(
                    cid,
                    f"{fname}.branch",
                    f"branch must be 4 digits in quotes, not 0000, got {code!r}",
                    f"şube numarası tırnak içinde 4 hane olmalı (0000 olamaz), {code!r} bulundu",
                )
            if code in seen:
                raise ConfigError(cid, f"{fname}.branch", f"duplicate branch {code}", f"{code} şubesi tekrarlanmış")
            seen.add(code)
            bname = braw.get("name", code)
            if not isinstance(bname, str) or not bname.strip():
                raise ConfigError(cid, f"{fname}.name", "branch name must be text", "şube adı metin olmalı")
            bconn = _conn_id(cid, f"{fname}.integrator_conn_id", braw.get("integrator_conn_id"))
            branches.append(Branch(code, bname.strip(), bconn, _queue(cid, f"{fname}.queue", braw.get("queue"))))
        branches.sort(key=lambda b: b.branch)
        conn_id = None
    else:
        conn_id = _conn_id(cid, "integrator_conn_id", conn)
    return Company(
        id=cid,
        taxpayer_id=tid,
        name=name.strip(),
        folder=folder,
        automatic=automatic,
        start_month=start,
        taxpayer_type=ttype,
        integrator_conn_id=conn_id,
        branches=tuple(branches),
        alerts=_alerts(cid, "alerts", raw.get("alerts"), base_alerts),
        tuning=_tuning(cid, "", raw, base_tuning),
        queue=_queue(cid, "queue", raw.get("queue")),
    )


def _queue(cid: str, field_name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _QUEUE_RE.fullmatch(value):
        raise ConfigError(
            cid,
            field_name,
            f"a Celery queue name of letters, digits, '.', '_' and '-' (at most 64), got {value!r}",
            f"Celery kuyruk adı harf, rakam, '.', '_' ve '-' içermeli (en çok 64), {value!r} bulundu",
        )
    return value


def _month(cid: str, field_name: str, value: Any) -> Period:
    if not isinstance(value, str):
        raise ConfigError(
            cid, field_name, f"must be a quoted month 'YYYY-MM', got {value!r}", f"tırnak içinde 'YYYY-AA' olmalı, {value!r} bulundu"
        )
    m = _MONTH_RE.fullmatch(value.strip())
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 2000:
        raise ConfigError(
            cid, field_name, f"must be a month 'YYYY-MM' from 2000 on, got {value!r}", f"2000 ve sonrası 'YYYY-AA' olmalı, {value!r} bulundu"
        )
    return Period(int(m.group(1)), int(m.group(2)))


def _conn_id(cid: str, field_name: str, value: Any) -> str:
    if value is None or value == "":
        raise ConfigError(
            cid,
            field_name,
            "an Airflow Connection id for the integrator is required (credentials never go in this file)",
            "entegratör için bir Airflow Connection kimliği gerekli (parolalar bu dosyaya yazılmaz)",
        )
    if not isinstance(value, str) or not _CONN_ID_RE.fullmatch(value):
        raise ConfigError(
            cid, field_name, f"not a valid Connection id: {value!r}", f"geçerli bir Connection kimliği değil: {value!r}"
        )
    return value


def _alerts(cid: str | None, field_name: str, raw: Any, base: Alerts) -> Alerts:
    if raw is None:
        return base
    if not isinstance(raw, dict):
        raise ConfigError(cid, field_name, "must be a mapping", "eşleme (mapping) olmalı")
    _no_unknown(cid, f"{field_name}.", raw, _ALERT_KEYS)
    email_raw = raw.get("email", list(base.email))
    if isinstance(email_raw, str):
        email_raw = [email_raw]
    if not isinstance(email_raw, list) or not all(isinstance(e, str) and _EMAIL_RE.fullmatch(e) for e in email_raw):
        raise ConfigError(
            cid, f"{field_name}.email", f"must be a list of e-mail addresses, got {email_raw!r}", f"e-posta adresleri listesi olmalı, {email_raw!r} bulundu"
        )
    hook_conn = raw.get("webhook_conn_id", base.webhook_conn_id)
    if hook_conn is not None:
        hook_conn = _conn_id(cid or "defaults", f"{field_name}.webhook_conn_id", hook_conn)
    smtp_conn = _conn_id(cid or "defaults", f"{field_name}.smtp_conn_id", raw.get("smtp_conn_id", base.smtp_conn_id))
    from_email = raw.get("from_email", base.from_email)
    if from_email is not None and (not isinstance(from_email, str) or not _EMAIL_RE.fullmatch(from_email)):
        raise ConfigError(cid, f"{field_name}.from_email", f"not an e-mail address: {from_email!r}", f"e-posta adresi değil: {from_email!r}")
    return Alerts(tuple(email_raw), hook_conn, smtp_conn, from_email)


def _tuning(cid: str | None, prefix: str, raw: dict[str, Any], base: Tuning) -> Tuning:
    values: dict[str, Any] = {}
    for key in _TUNING_KEYS:
        if key not in raw:
            continue
        value = raw[key]
        if key == "owner":
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(cid, f"{prefix}{key}", "must be non-empty text", "boş olmayan metin olmalı")
            values[key] = value.strip()
            continue
        if key == "require_schema":
            if not isinstance(value, bool):
                raise ConfigError(
                    cid,
                    f"{prefix}{key}",
                    f"must be true or false, got {value!r}",
                    f"true veya false olmalı, {value!r} bulundu",
                )
            values[key] = value
            continue
        if key == "berat_timeout_seconds" and value is None:
            values[key] = None
            continue
        minimum = 0 if key in ("retries", "deadline_warning_days") else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(
                cid,
                f"{prefix}{key}",
                f"must be an integer >= {minimum}, got {value!r}",
                f"{minimum} veya daha büyük bir tamsayı olmalı, {value!r} bulundu",
            )
        values[key] = value
    if not values:
        return base
    from dataclasses import replace

    return replace(base, **values)

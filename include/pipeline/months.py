"""Which month a DAG run backs up: conf/params "month" or the run's data interval."""

from __future__ import annotations

import re
from typing import Any

from include.edefter.naming import Period

__all__ = ["MONTH_PATTERN", "MonthNotGiven", "parse_month", "resolve_month"]

MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
_MONTH_RE = re.compile(r"([0-9]{4})-?([0-9]{2})")


class MonthNotGiven(ValueError):
    pass


def parse_month(value: str) -> Period:
    m = _MONTH_RE.fullmatch(str(value).strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(
            f"ay 'YYYY-AA' biçiminde olmalı, {value!r} bulundu / month must be 'YYYY-MM', got {value!r}"
        )
    return Period(int(m.group(1)), int(m.group(2)))


def resolve_month(context: Any, automatic: bool) -> Period:
    """conf {"month": "2025-03"} (or the "month" param) wins; otherwise the data interval's month.

    The data interval start is read in Europe/Istanbul: the run for [2025-09-01, 2025-10-01)
    Istanbul time backs up September, even though its UTC start is 31 August 21:00.
    """
    dag_run = context.get("dag_run")
    conf = (getattr(dag_run, "conf", None) or {}) if dag_run is not None else {}
    value = conf.get("month") or (context.get("params") or {}).get("month")
    if value:
        return parse_month(value)
    if not automatic:
        raise MonthNotGiven(
            "Bu firma elle yedekleniyor: ayı belirtin, örn. --conf '{\"month\": \"2025-03\"}' / "
            "manual company: give the month, e.g. --conf '{\"month\": \"2025-03\"}'"
        )
    start = context.get("data_interval_start")
    if start is None:
        raise MonthNotGiven("çalıştırmanın veri aralığı yok / the run has no data interval; give conf month")
    local = start.in_timezone("Europe/Istanbul") if hasattr(start, "in_timezone") else start
    return Period(local.year, local.month)

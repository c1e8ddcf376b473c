"""Fixtures that build real signed sample sets with the project's own generator.

Owned by the sample-generator work; loaded from tests/conftest.py.

- ``sample_pki`` (session): a TestPKI (test CA, test GİB seal, company test
  certificates) in a temp dir. Key generation happens once per session.
- ``make_month`` (function): factory ``make_month(**kwargs) -> MonthFiles``
  writing a fresh month into its own new temp dir; kwargs are those of
  ``generate_month`` (defaults: taxpayer 1234567801, "Örnek Ticaret A.Ş.",
  2019-09, GİB-approved, 1 part of 40 entries, with DR, flat).
- ``approved_month`` (function): a copy of a session-cached complete small
  GİB-approved flat set (Y, K, YB, KB, GIB-YB, GIB-KB, DR); tests may modify
  or delete the copy freely.
- ``edefter_schema`` (session): GİB's XSD loaded once (lxml XMLSchema).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from include.edefter.naming import Period
from include.edefter.sample import MonthFiles, TestPKI, generate_month

SAMPLE_TAXPAYER = "1234567801"
SAMPLE_COMPANY = "Örnek Ticaret A.Ş."
SAMPLE_PERIOD = Period(2019, 9)


def _defaults(kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs.setdefault("taxpayer_id", SAMPLE_TAXPAYER)
    kwargs.setdefault("company_name", SAMPLE_COMPANY)
    kwargs.setdefault("period", SAMPLE_PERIOD)
    return kwargs


def relocate(mf: MonthFiles, old_root: Path, new_root: Path) -> MonthFiles:
    """The same MonthFiles with every path moved from old_root to new_root."""

    def move(p: Path) -> Path:
        return new_root / p.relative_to(old_root)

    return replace(mf, directory=move(mf.directory), paths={k: move(p) for k, p in mf.paths.items()})


@pytest.fixture(scope="session")
def sample_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    # tests/conftest.py fixes this location and points EDEFTER_TRUSTED_ROOTS / EDEFTER_GIB_CERTS at it.
    fixed = os.environ.get("EDEFTER_TEST_PKI_DIR")
    return TestPKI.create(Path(fixed) if fixed else tmp_path_factory.mktemp("sample-pki"))


@pytest.fixture
def make_month(sample_pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., MonthFiles]:
    def factory(**kwargs: Any) -> MonthFiles:
        out = kwargs.pop("out_dir", None) or tmp_path_factory.mktemp("sample-month")
        return generate_month(Path(out), pki=sample_pki, **_defaults(kwargs))

    return factory


@pytest.fixture(scope="session")
def _approved_month_master(sample_pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, MonthFiles]:
    root = tmp_path_factory.mktemp("approved-master")
    return root, generate_month(root, pki=sample_pki, **_defaults({}))


@pytest.fixture
def approved_month(_approved_month_master: tuple[Path, MonthFiles], tmp_path: Path) -> MonthFiles:
    root, master = _approved_month_master
    target = tmp_path / "approved"
    shutil.copytree(root, target)
    return relocate(master, root, target)


@pytest.fixture(scope="session")
def edefter_schema(schema_dir: Path):  # type: ignore[no-untyped-def]
    from include.edefter.sample.schema import load_schema

    return load_schema(schema_dir)

"""Generate complete, signed e-Defter sample sets (one month or a month range)."""

from __future__ import annotations

import datetime as dt
import enum
import random
import shutil
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from include.edefter.naming import EDefterName, FileKind, Period

from .content import iter_entries
from .documents import (
    TZ_TR,
    AccountTotals,
    Header,
    LedgerResult,
    write_berat,
    write_journal,
    write_kebir,
    write_report,
)
from .pki import TestPKI
from .signing import add_counter_signature

__all__ = ["Stage", "MonthFiles", "SampleResult", "generate_month", "generate", "month_dir"]


class Stage(enum.Enum):
    """How far the month got: only ledgers, with taxpayer berats, or with GİB-approved berats.

    Maps to e-Defter statüsü Dosya Oluşturuldu / GİB'e Gönderildi / Onaylı Berat İndirildi.
    """

    LEDGERS = "ledgers"  # Y, K (+ DR)
    TAXPAYER_BERATS = "berats"  # + YB, KB
    GIB_BERATS = "gib"  # + GIB-YB, GIB-KB


@dataclass(frozen=True)
class PartStats:
    """Facts about one generated part, for tests that check content."""

    part: int
    journal_unique_id: str
    kebir_unique_id: str
    entry_count: int
    first_entry_number: int
    last_entry_number: int
    total_debit_kurus: int
    total_credit_kurus: int
    journal_signature_value: str
    kebir_signature_value: str


@dataclass
class MonthFiles:
    """Files of one generated month, keyed by (code, part) e.g. ("GIB-YB", 1)."""

    taxpayer_id: str
    period: Period
    branch: str | None
    directory: Path
    paths: dict[tuple[str, int], Path]
    next_unique_id: int
    next_entry_number: int
    parts: tuple[PartStats, ...]
    account_totals: dict[str, tuple[int, int]] = field(default_factory=dict)  # account -> (debit, credit) kuruş

    def path(self, code: str, part: int | None = None) -> Path:
        """Path of one file; part defaults to the only/first part (0 for DR)."""
        if part is None:
            part = 0 if code == "DR" else self.parts[0].part
        return self.paths[(code, part)]

    @property
    def files(self) -> list[Path]:
        return [self.paths[k] for k in sorted(self.paths)]


@dataclass
class SampleResult:
    months: list[MonthFiles]
    cert_dir: Path
    pki: TestPKI

    @property
    def files(self) -> list[Path]:
        return [p for m in self.months for p in m.files]


def month_dir(out_dir: Path, taxpayer_id: str, period: Period, layout: str) -> Path:
    """Where a month's files go: flat, or the GİB-style <VKN>/<dd.mm.yyyy-dd.mm.yyyy>/<MM>/ tree."""
    if layout == "flat":
        return Path(out_dir)
    if layout == "gib":
        fy = f"01.01.{period.year:04d}-31.12.{period.year:04d}"
        return Path(out_dir) / taxpayer_id / fy / f"{period.month:02d}"
    raise ValueError(f"layout must be 'flat' or 'gib', got {layout!r}")


def _times(period: Period) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """Fixed (deterministic) creation, taxpayer signing and GİB sealing times for a period."""
    nxt = period.next()
    created = dt.datetime(nxt.year, nxt.month, 5, 10, 0, 0, tzinfo=TZ_TR)
    berat_signed = dt.datetime(nxt.year, nxt.month, 10, 14, 30, 0, tzinfo=TZ_TR)
    gib_sealed = dt.datetime(nxt.year, nxt.month, 20, 9, 15, 0, tzinfo=TZ_TR)
    return created, berat_signed, gib_sealed


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _zip_one(path: Path, when: dt.datetime) -> Path:
    """Zip one file into <stem>.zip (deterministic timestamp), streaming, and remove the xml."""
    target = path.with_suffix(".zip")
    info = zipfile.ZipInfo(path.name, date_time=(when.year, when.month, when.day, when.hour, when.minute, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    with zipfile.ZipFile(target, "w") as zf, zf.open(info, "w", force_zip64=True) as dst, open(path, "rb") as src:
        shutil.copyfileobj(src, dst, 1 << 20)
    path.unlink()
    return target


def generate_month(
    out_dir: Path,
    *,
    taxpayer_id: str,
    company_name: str,
    period: Period,
    pki: TestPKI,
    branch: str | None = None,
    branch_name: str | None = None,
    parts: int = 1,
    entries_per_part: int = 40,
    part_size_bytes: int | None = None,
    seed: int = 0,
    stage: Stage = Stage.GIB_BERATS,
    with_dr: bool = True,
    layout: str = "flat",
    zipped: bool = False,
    unique_id_start: int = 1,
    entry_number_start: int = 1,
) -> MonthFiles:
    """Write one month's signed set; returns its paths and the next counters.

    parts == 1 -> part number 000000; parts > 1 -> 000001..n. With
    part_size_bytes each journal part is filled to about that size instead of
    entries_per_part entries (streaming; memory stays small).
    """
    if parts < 1:
        raise ValueError("parts must be >= 1")
    if entries_per_part < 1:
        raise ValueError("entries_per_part must be >= 1")
    if branch is not None and (len(branch) != 4 or not branch.isdigit() or branch == "0000"):
        raise ValueError(f"branch must be 4 digits other than 0000, got {branch!r}")
    signer = pki.company(taxpayer_id, company_name)
    pki.export_to(out_dir)
    directory = month_dir(out_dir, taxpayer_id, period, layout)
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"edefter-sample/{seed}/{taxpayer_id}/{branch}/{period.yyyymm}")
    created, berat_signed, gib_sealed = _times(period)
    entries = iter_entries(rng, period.year, period.month, first_number=entry_number_start)
    part_numbers = [0] if parts == 1 else list(range(1, parts + 1))
    paths: dict[tuple[str, int], Path] = {}
    stats: list[PartStats] = []
    month_accounts: dict[str, AccountTotals] = {}
    counter = unique_id_start
    next_entry = entry_number_start

    def name(kind: FileKind, part: int, gib: bool = False) -> Path:
        return directory / EDefterName(taxpayer_id, period, kind, part, branch, gib).filename

    def header(kind: str, unique_id: str | None, *, berat: bool = False) -> Header:
        context = {"journal": "journal_context", "ledger": "ledger_context", "trialbalance": "trialbalance_context"}
        comment = {
            "journal": "Yevmiye Defteri",
            "ledger": "Büyük Defter",
            "trialbalance": "Defter Raporu",
        }[kind] + (" Beratı" if berat else "") + " (TEST VERİSİ - GİB için geçerli değildir)"
        return Header(
            taxpayer_id=taxpayer_id, company_name=company_name, branch=branch, branch_name=branch_name,
            year=period.year, month=period.month, unique_id=unique_id, entries_type=kind,
            context_id=context[kind], creation=created, entries_comment=comment,
            segment_uuid=_uuid(rng) if berat else None,
        )

    for part in part_numbers:
        yev_id = f"YEV{period.yyyymm}{counter:06d}"
        keb_id = f"KEB{period.yyyymm}{counter:06d}"
        counter += 1
        y_path = name(FileKind.Y, part)
        journal: LedgerResult = write_journal(
            y_path, header("journal", yev_id), entries, signer=signer, signing_time=created,
            sig_id=f"Signature-{_uuid(rng)}",
            max_entries=None if part_size_bytes else entries_per_part, target_bytes=part_size_bytes,
        )
        next_entry = journal.last_entry_number + 1
        k_path = name(FileKind.K, part)
        kebir = write_kebir(k_path, header("ledger", keb_id), journal, signer=signer, signing_time=created,
                            sig_id=f"Signature-{_uuid(rng)}")
        paths[("Y", part)] = y_path
        paths[("K", part)] = k_path
        for acct, tot in journal.accounts.items():
            agg = month_accounts.setdefault(acct, AccountTotals())
            agg.debit += tot.debit
            agg.credit += tot.credit
            agg.lines += tot.lines
        if stage in (Stage.TAXPAYER_BERATS, Stage.GIB_BERATS):
            for code, kind, ledger, uid, ctx_kind in (
                ("YB", FileKind.YB, journal, yev_id, "journal"),
                ("KB", FileKind.KB, kebir, keb_id, "ledger"),
            ):
                b_path = name(kind, part)
                write_berat(b_path, header(ctx_kind, uid, berat=True), ledger, signer=signer,
                            signing_time=berat_signed, sig_id=f"Signature-{_uuid(rng)}")
                paths[(code, part)] = b_path
                if stage is Stage.GIB_BERATS:
                    g_path = name(kind, part, gib=True)
                    g_path.write_bytes(
                        add_counter_signature(b_path.read_bytes(), signer=pki.gib, signing_time=gib_sealed,
                                              sig_id=f"GIB-Signature-{_uuid(rng)}")
                    )
                    paths[(f"GIB-{code}", part)] = g_path
        stats.append(
            PartStats(part, yev_id, keb_id, journal.entry_count, journal.first_entry_number,
                      journal.last_entry_number, journal.total_debit, journal.total_credit,
                      journal.signature_value_b64, kebir.signature_value_b64)
        )
    if with_dr:
        dr_path = name(FileKind.DR, 0)
        write_report(dr_path, header("trialbalance", None), month_accounts, signer=signer, signing_time=created,
                     sig_id=f"Signature-{_uuid(rng)}")
        paths[("DR", 0)] = dr_path
    if zipped:
        paths = {k: _zip_one(p, gib_sealed) for k, p in paths.items()}
    return MonthFiles(
        taxpayer_id=taxpayer_id, period=period, branch=branch, directory=directory, paths=paths,
        next_unique_id=counter, next_entry_number=next_entry, parts=tuple(stats),
        account_totals={a: (t.debit, t.credit) for a, t in sorted(month_accounts.items())},
    )


def generate(
    out_dir: Path,
    *,
    taxpayer_id: str,
    company_name: str,
    first: Period,
    last: Period,
    pki: TestPKI,
    branch: str | None = None,
    branch_name: str | None = None,
    parts: int = 1,
    entries_per_part: int = 40,
    part_size_bytes: int | None = None,
    seed: int = 0,
    stage: Stage = Stage.GIB_BERATS,
    with_dr: bool = True,
    layout: str = "flat",
    zipped: bool = False,
) -> SampleResult:
    """Generate first..last (inclusive). uniqueID and entry-number counters run
    across the fiscal year (calendar year) and restart in January."""
    if last < first:
        raise ValueError(f"last period {last} is before first period {first}")
    months: list[MonthFiles] = []
    unique = 1
    entry_no = 1
    period = first
    while True:
        if period.month == 1:
            unique, entry_no = 1, 1
        mf = generate_month(
            out_dir, taxpayer_id=taxpayer_id, company_name=company_name, period=period, pki=pki, branch=branch,
            branch_name=branch_name, parts=parts, entries_per_part=entries_per_part, part_size_bytes=part_size_bytes,
            seed=seed, stage=stage, with_dr=with_dr, layout=layout, zipped=zipped, unique_id_start=unique,
            entry_number_start=entry_no,
        )
        months.append(mf)
        unique, entry_no = mf.next_unique_id, mf.next_entry_number
        if period == last:
            break
        period = period.next()
    return SampleResult(months=months, cert_dir=Path(out_dir) / "test-certificates", pki=pki)

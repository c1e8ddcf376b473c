"""Checks on one uploaded file: the zip container and the XML inside it.

Runs on the spooled upload (a temp file), never on a body held in memory. The
XML is decompressed once, streamed through the e-Defter reader while being
hashed and counted, with caps that do not trust the zip's own size fields.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.edefter.naming import EDefterName, FileKind
from include.edefter.retention import conservative_fiscal_year_end
from include.integrator.errors import ApiError

__all__ = ["HEADER_ONLY_OVER", "XmlCheck", "check_zip", "content_mismatches"]

HEADER_ONLY_OVER = 8 * 1024 * 1024


@dataclass(frozen=True)
class XmlCheck:
    xml_sha256: str
    xml_size: int
    fiscal_year_end: dt.date
    fiscal_year_end_from_xml: bool
    facts: dict[str, Any]


class _CappedHashingReader:
    """File-like wrapper: hashes and counts what passes, stops at the cap."""

    def __init__(self, raw: Any, cap: int, on_over: Any) -> None:
        self.raw = raw
        self.cap = cap
        self.on_over = on_over
        self.size = 0
        self.h = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 20
        data = self.raw.read(n)
        self.size += len(data)
        if self.size > self.cap:
            raise self.on_over()
        self.h.update(data)
        return data


def _drain(reader: _CappedHashingReader) -> None:
    """Read the rest: every byte is hashed, and zipfile checks the CRC at the end."""
    while reader.read(1 << 20):
        pass


def _ledger_header_facts(reader: _CappedHashingReader, member: str) -> Any:
    """Facts of a ledger's header, parsed up to its first journal entry; None → use read_facts.

    The domain reader's public header-only reader (same safe parser settings and limits);
    an XML error falls back to the full reader, which then produces the precise error.
    A document that is not a ledger, or has no entry, is read whole by it.
    """
    try:
        from include.edefter.xmlread import XmlReadError, read_header_facts
    except ImportError:
        return None
    try:
        return read_header_facts(reader, name=member)  # type: ignore[arg-type]
    except XmlReadError:
        return None


def _strict_layout(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, zname: str) -> None:
    """Exactly one local entry at offset 0, matching the central directory, nothing before,
    between or after: a polyglot (junk before the first header, two zips concatenated) reads
    differently in `unzip` and in a streaming reader, so the archive must not keep it."""

    def polyglot(where_tr: str, where_en: str, **details: Any) -> ApiError:
        return _reject(
            "zip.polyglot",
            f"zip yapısı katı değil: {where_tr}",
            f"the zip is not strictly one entry: {where_en}",
            zname,
            **details,
        )

    size = path.stat().st_size
    if info.header_offset != 0:
        raise polyglot(
            "ilk yerel başlıktan önce veri var (veya birden fazla zip art arda)",
            "data before the first local header (or several zips concatenated)",
            offset=info.header_offset,
        )
    with open(path, "rb") as fh:
        lh = fh.read(30)
        if len(lh) < 30 or lh[:4] != b"PK\x03\x04":
            raise polyglot("yerel başlık yok", "no local file header at offset 0")
        n, m = struct.unpack("<HH", lh[26:30])
        local_name = fh.read(n)
        if local_name.decode("utf-8" if info.flag_bits & 0x800 else "cp437", "replace") != info.filename:
            raise polyglot(
                "yerel başlıktaki ad merkez dizindekiyle aynı değil",
                "the local header's name differs from the central directory's",
            )
        data_end = 30 + n + m + info.compress_size
        if info.flag_bits & 0x08:  # a data descriptor follows the data (streaming writers)
            fh.seek(data_end)
            sig = fh.read(4)
            zip64 = info.compress_size >= 0xFFFFFFFF or info.file_size >= 0xFFFFFFFF
            data_end += (4 if sig == b"PK\x07\x08" else 0) + (20 if zip64 else 12)
        if data_end != zf.start_dir:
            raise polyglot(
                "veri ile merkez dizin arasında fazladan bayt var",
                "extra bytes between the entry's data and the central directory",
                data_end=data_end,
                central_directory=zf.start_dir,
            )
        tail = 22 + len(zf.comment)
        fh.seek(max(0, size - tail))
        if fh.read(4) != b"PK\x05\x06":
            raise polyglot("zip sonundan sonra fazladan bayt var", "extra bytes after the end of the zip")


def _reject(code: str, tr: str, en: str, name: str, **details: Any) -> ApiError:
    return ApiError(400, code, tr, en, file=name, details=details)


def check_zip(
    path: Path,
    name: EDefterName,
    *,
    max_uncompressed: int,
    max_ratio: int,
    header_only_over: int = HEADER_ONLY_OVER,
) -> XmlCheck:
    """Validate the container and the XML; raise ApiError (4xx) naming the rule.

    Ledgers (Y, K) larger than ``header_only_over`` are checked against their name from the
    header only (identity, period, branch, fiscal year all precede the entries), while every
    byte is still decompressed, CRC-checked and hashed. Their full XML reading happens once,
    in the asynchronous set validation; reading 200 MB twice would halve the ingest rate.
    """
    zname = name.filename
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _reject(
            "zip.invalid",
            "gönderilen içerik geçerli bir zip dosyası değil",
            f"the body is not a valid zip file ({exc})",
            zname,
        ) from exc
    with zf:
        infos = zf.infolist()
        if len(infos) != 1:
            raise _reject(
                "zip.member_count",
                f"zip tam olarak bir XML dosyası içermeli, {len(infos)} üye bulundu",
                f"the zip must hold exactly one XML file, found {len(infos)} members",
                zname,
                members=[i.filename for i in infos[:20]],
            )
        info = infos[0]
        member = info.filename
        _strict_layout(path, zf, info, zname)
        if (
            member.startswith(("/", "\\"))
            or ".." in member.replace("\\", "/").split("/")
            or "/" in member
            or "\\" in member
            or ":" in member
        ):
            raise _reject(
                "zip.path_traversal",
                f"zip üyesinin adı bir yol içeriyor: {member!r}",
                f"the zip member name contains a path: {member!r}",
                zname,
                member=member,
            )
        expected = name.with_ext("xml").filename
        if member != expected:
            raise _reject(
                "zip.member_name",
                f"zip içindeki dosyanın adı {expected!r} olmalı, {member!r} bulundu",
                f"the file inside the zip must be named {expected!r}, found {member!r}",
                zname,
                member=member,
                expected=expected,
            )
        if info.flag_bits & 0x1:
            raise _reject("zip.encrypted", "zip üyesi şifreli", "the zip member is encrypted", zname)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _reject(
                "zip.compression",
                "zip yalnızca stored veya deflate sıkıştırması kullanmalı",
                f"unsupported zip compression method {info.compress_type}",
                zname,
            )
        compressed = max(info.compress_size, 1)

        def bomb(size: int | None = None) -> ApiError:
            return ApiError(
                413,
                "zip.bomb",
                f"zip açıldığında sınırı aşıyor (en çok {max_uncompressed} bayt, oran {max_ratio})",
                f"the zip expands beyond the limit (max {max_uncompressed} bytes, ratio {max_ratio})",
                file=zname,
                details={"declared_size": info.file_size, "compressed_size": info.compress_size},
            )

        cap = min(max_uncompressed, compressed * max_ratio)
        if info.file_size > cap:
            raise bomb()
        from include.edefter.xmlread import XmlReadError, read_facts

        use_header = name.kind.is_ledger and info.file_size > header_only_over
        try:
            facts = None
            if use_header:
                with zf.open(info) as raw:
                    reader = _CappedHashingReader(raw, cap, bomb)
                    facts = _ledger_header_facts(reader, member)
                    if facts is not None:
                        _drain(reader)
            if facts is None:
                with zf.open(info) as raw:
                    reader = _CappedHashingReader(raw, cap, bomb)
                    try:
                        facts = read_facts(reader, name=member)  # type: ignore[arg-type]
                    except XmlReadError as exc:
                        raise _reject(
                            f"content.{exc.rule}", exc.message_tr, exc.message_en, zname, member=member
                        ) from exc
                    _drain(reader)
        except zipfile.BadZipFile as exc:
            raise _reject(
                "zip.corrupt",
                f"zip bozuk (CRC/veri hatası): {exc}",
                f"the zip is corrupt (CRC/data error): {exc}",
                zname,
            ) from exc
        except (EOFError, OSError, ValueError, zlib.error) as exc:
            raise _reject("zip.corrupt", f"zip okunamadı: {exc}", f"the zip cannot be read: {exc}", zname) from exc
    mism = name_content_problems(name, facts, header_only=use_header and facts.signature_value is None)
    if mism:
        raise ApiError(
            422,
            "content.name_mismatch",
            "XML içeriği dosya adıyla uyuşmuyor: " + "; ".join(m[0] for m in mism),
            "the XML content does not match the file name: " + "; ".join(m[1] for m in mism),
            file=zname,
            details={"mismatches": [m[1] for m in mism]},
        )
    fye = facts.fiscal_year_end
    return XmlCheck(
        xml_sha256=reader.h.hexdigest(),
        xml_size=reader.size,
        fiscal_year_end=fye or conservative_fiscal_year_end(name.period),
        fiscal_year_end_from_xml=fye is not None,
        facts=facts.to_dict(),
    )


# What only the end of a ledger can tell (its signature): checked by the set validation in header mode.
_TRAILER_CODES = frozenset({"content.signature_missing"})


def name_content_problems(name: EDefterName, facts: Any, *, header_only: bool = False) -> list[tuple[str, str]]:
    """Errors only, as (tr, en); the domain library's check when present, else ours."""
    try:
        from include.edefter.consistency import check_name_content
        from include.edefter.problems import Severity
    except ImportError:  # pragma: no cover - the domain library ships it
        return content_mismatches(name, facts)
    return [
        (p.message_tr, p.message_en)
        for p in check_name_content(name.with_ext("xml"), facts)
        if p.severity is Severity.ERROR and not (header_only and p.code in _TRAILER_CODES)
    ]


_ROOT_FOR = {
    FileKind.Y: "defter",
    FileKind.K: "defter",
    FileKind.YB: "berat",
    FileKind.KB: "berat",
    FileKind.DR: "defterraporu",
}
_ENTRIES_FOR = {FileKind.Y: "journal", FileKind.K: "ledger", FileKind.DR: "trialbalance"}


def content_mismatches(name: EDefterName, facts: Any) -> list[tuple[str, str]]:
    """(tr, en) per field where the XML says something other than the name."""
    out: list[tuple[str, str]] = []
    want_root = _ROOT_FOR[name.kind]
    if facts.root != want_root:
        out.append((f"kök eleman {facts.root}, beklenen {want_root}", f"root element {facts.root}, expected {want_root}"))
    et = (facts.entries_type or "").strip().lower()
    want_et = _ENTRIES_FOR.get(name.kind)
    if want_et and et and et != want_et:
        out.append((f"entriesType {et}, beklenen {want_et}", f"entriesType {et}, expected {want_et}"))
    if name.kind.is_berat and et and et not in ("journal", "ledger"):
        out.append((f"berat entriesType {et}", f"berat entriesType {et}"))
    if name.kind is FileKind.YB and et == "ledger" or name.kind is FileKind.KB and et == "journal":
        out.append((f"berat türü {et}, ad {name.kind.value}", f"berat type {et}, name says {name.kind.value}"))
    if facts.taxpayer_id is None or facts.taxpayer_id.strip() != name.taxpayer_id:
        out.append(
            (
                f"vergi kimlik no {facts.taxpayer_id!r}, adda {name.taxpayer_id}",
                f"taxpayer id {facts.taxpayer_id!r}, the name says {name.taxpayer_id}",
            )
        )
    if facts.period is None or facts.period != name.period:
        out.append(
            (f"dönem {facts.period}, adda {name.period}", f"period {facts.period}, the name says {name.period}")
        )
    if (facts.branch_no or None) != name.branch:
        out.append(
            (f"şube no {facts.branch_no!r}, adda {name.branch!r}", f"branch {facts.branch_no!r}, the name says {name.branch!r}")
        )
    if name.kind.is_berat and name.gib and not facts.has_counter_signature:
        out.append(("GIB- dosyasında GİB mührü (karşı imza) yok", "GIB- file has no GİB counter-signature"))
    if name.kind.is_berat and not name.gib and facts.has_counter_signature:
        out.append(("GİB onaylı berat GIB- öneki olmadan adlandırılmış", "GİB-approved berat named without GIB- prefix"))
    return out

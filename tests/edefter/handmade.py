"""Small hand-built e-Defter documents for tests (independent of the sample generator).

The documents carry the header elements the reader extracts and a ds:Signature
with a SignatureValue; the signatures are NOT cryptographically valid (this
layer does not check them).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from include.edefter.naming import EDefterName, FileKind, Period

NSDECL = (
    'xmlns:edefter="http://www.edefter.gov.tr" xmlns:xbrli="http://www.xbrl.org/2003/instance" '
    'xmlns:gl-cor="http://www.xbrl.org/int/gl/cor/2006-10-25" '
    'xmlns:gl-bus="http://www.xbrl.org/int/gl/bus/2006-10-25" '
    'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xades="http://uri.etsi.org/01903/v1.3.2#"'
)


SEPT_2019 = Period(2019, 9)


def fake_sig(seed: str) -> str:
    """A deterministic base64 'signature value' (256 bytes like RSA-2048)."""
    raw = b"".join(hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(8))
    return base64.b64encode(raw).decode()


def _wrap_b64(value: str) -> str:
    # Real files wrap base64 at 76 columns; the reader must strip the whitespace.
    return "\n".join(value[i : i + 76] for i in range(0, len(value), 76))


@dataclass(frozen=True)
class Doc:
    root: str = "defter"  # defter | berat | defterraporu | defterRaporu
    taxpayer_id: str = "1234567801"
    period: Period = Period(2019, 9)
    entries_type: str = "journal"
    unique_id: str = "YEV201909000010"
    branch: str | None = None
    company: str = "Örnek Ticaret A.Ş."
    signature_value: str = "SIG"
    copied_signature_value: str | None = None  # berats
    counter_signature: bool = False
    berat_uuid: str | None = None
    entries: int = 2  # journal entries (ledgers)
    number_of_entries: int | None = None  # berats
    filler_bytes: int = 0  # extra journal lines to reach a size

    def xml(self) -> bytes:
        return b"".join(self.iter_bytes())

    def iter_bytes(self) -> Iterable[bytes]:
        ctx = {"journal": "journal_context", "ledger": "ledger_context"}.get(self.entries_type, "trialbalance_context")
        y, m = self.period.year, self.period.month
        import calendar

        last = calendar.monthrange(y, m)[1]
        seg = (
            f"<xbrli:segment><gl-cor:uniqueID>{self.berat_uuid}</gl-cor:uniqueID></xbrli:segment>"
            if self.berat_uuid
            else ""
        )
        branch = (
            "<gl-bus:organizationIdentifiers>"
            f"<gl-bus:organizationIdentifier>{self.branch}</gl-bus:organizationIdentifier>"
            "<gl-bus:organizationDescription>Şube No</gl-bus:organizationDescription>"
            "</gl-bus:organizationIdentifiers>"
            "<gl-bus:organizationIdentifiers>"
            "<gl-bus:organizationIdentifier>Merkez Dışı Şube</gl-bus:organizationIdentifier>"
            "<gl-bus:organizationDescription>Şube Adı</gl-bus:organizationDescription>"
            "</gl-bus:organizationIdentifiers>"
            if self.branch
            else ""
        )
        yield (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<edefter:{self.root} {NSDECL}>\n'
            f"<xbrli:xbrl>\n"
            f'<xbrli:context id="{ctx}"><xbrli:entity>'
            f'<xbrli:identifier scheme="http://www.gib.gov.tr">{self.taxpayer_id}</xbrli:identifier>{seg}'
            f"</xbrli:entity><xbrli:period><xbrli:instant>{y:04d}-{m:02d}-{last:02d}</xbrli:instant>"
            f"</xbrli:period></xbrli:context>\n"
            f"<gl-cor:accountingEntries>\n<gl-cor:documentInfo>"
            f'<gl-cor:entriesType contextRef="{ctx}">{self.entries_type}</gl-cor:entriesType>'
            f'<gl-cor:uniqueID contextRef="{ctx}">{self.unique_id}</gl-cor:uniqueID>'
            f'<gl-cor:creationDate contextRef="{ctx}">{y:04d}-{m:02d}-{last:02d}</gl-cor:creationDate>'
            f'<gl-cor:periodCoveredStart contextRef="{ctx}">{y:04d}-{m:02d}-01</gl-cor:periodCoveredStart>'
            f'<gl-cor:periodCoveredEnd contextRef="{ctx}">{y:04d}-{m:02d}-{last:02d}</gl-cor:periodCoveredEnd>'
            f'<gl-bus:sourceApplication contextRef="{ctx}">Elle Yazılmış Test 1.0</gl-bus:sourceApplication>'
            f"</gl-cor:documentInfo>\n<gl-cor:entityInformation>"
            f"<gl-bus:organizationIdentifiers>"
            f"<gl-bus:organizationIdentifier>{self.company}</gl-bus:organizationIdentifier>"
            f"<gl-bus:organizationDescription>Kurum Unvanı</gl-bus:organizationDescription>"
            f"</gl-bus:organizationIdentifiers>{branch}"
            f"<gl-bus:fiscalYearStart>{y:04d}-01-01</gl-bus:fiscalYearStart>"
            f"<gl-bus:fiscalYearEnd>{y:04d}-12-31</gl-bus:fiscalYearEnd>"
            f"</gl-cor:entityInformation>\n"
        ).encode()
        if self.root == "berat":
            yield (
                "<gl-cor:entryHeader>"
                f"<gl-bus:numberOfEntries>{self.number_of_entries or self.entries}</gl-bus:numberOfEntries>"
                "</gl-cor:entryHeader>\n"
            ).encode()
        else:
            line = (
                "<gl-cor:entryHeader><gl-cor:entryNumberCounter>{n}</gl-cor:entryNumberCounter>"
                "<gl-cor:entryDetail><gl-cor:account><gl-cor:accountMainID>100</gl-cor:accountMainID>"
                "</gl-cor:account><gl-cor:amount>10.00</gl-cor:amount><gl-cor:debitCreditCode>D</gl-cor:debitCreditCode>"
                "<gl-cor:detailComment>Kasa tahsilatı çğıöşü</gl-cor:detailComment></gl-cor:entryDetail>"
                "<gl-cor:entryDetail><gl-cor:account><gl-cor:accountMainID>600</gl-cor:accountMainID>"
                "</gl-cor:account><gl-cor:amount>10.00</gl-cor:amount><gl-cor:debitCreditCode>C</gl-cor:debitCreditCode>"
                "</gl-cor:entryDetail></gl-cor:entryHeader>\n"
            )
            n = 0
            for n in range(1, self.entries + 1):
                yield line.format(n=n).encode()
            written = 0
            block = "".join(line.format(n=n + i + 1) for i in range(200)).encode()
            while written < self.filler_bytes:
                yield block
                written += len(block)
        yield b"</gl-cor:accountingEntries>\n</xbrli:xbrl>\n"
        if self.root == "berat":
            copied = self.copied_signature_value or fake_sig("ledger")
            yield f'<ds:SignatureValue Id="SignatureValue_ledger">{_wrap_b64(copied)}</ds:SignatureValue>\n'.encode()
        counter = ""
        if self.counter_signature:
            counter = (
                "<ds:Object><xades:QualifyingProperties><xades:UnsignedProperties><xades:UnsignedSignatureProperties>"
                "<xades:CounterSignature><ds:Signature><ds:SignedInfo/>"
                f"<ds:SignatureValue>{_wrap_b64(fake_sig('gib:' + self.signature_value))}</ds:SignatureValue>"
                "</ds:Signature></xades:CounterSignature>"
                "</xades:UnsignedSignatureProperties></xades:UnsignedProperties></xades:QualifyingProperties></ds:Object>"
            )
        yield (
            '<ds:Signature Id="Signature_1"><ds:SignedInfo><ds:Reference URI=""/></ds:SignedInfo>'
            f"<ds:SignatureValue>{_wrap_b64(fake_sig(self.signature_value))}</ds:SignatureValue>"
            "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>TUlJQ2VzdA==</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
            f"{counter}</ds:Signature>\n</edefter:{self.root}>\n"
        ).encode()


def month_docs(
    taxpayer_id: str = "1234567801",
    period: Period = SEPT_2019,
    *,
    parts: Iterable[int] = (0,),
    branch: str | None = None,
    stage: str = "gib",  # ledgers | berats | gib
    dr: bool = False,
) -> dict[EDefterName, Doc]:
    """A consistent month set as name -> Doc (signature chain intact)."""
    out: dict[EDefterName, Doc] = {}
    for part in parts:
        for kind, etype, prefix in ((FileKind.Y, "journal", "YEV"), (FileKind.K, "ledger", "KEB")):
            uid = f"{prefix}{period.yyyymm}{part + 10:06d}"
            ledger_sig = f"{taxpayer_id}-{period.yyyymm}-{kind.value}-{part}-{branch}"
            base = Doc(
                root="defter", taxpayer_id=taxpayer_id, period=period, entries_type=etype,
                unique_id=uid, branch=branch, signature_value=ledger_sig,
            )
            out[EDefterName(taxpayer_id, period, kind, part, branch)] = base
            if stage in ("berats", "gib"):
                berat = replace(
                    base, root="berat", signature_value=ledger_sig + "-berat",
                    copied_signature_value=fake_sig(ledger_sig), berat_uuid=f"uuid-{uid}",
                )
                bkind = FileKind.YB if kind is FileKind.Y else FileKind.KB
                out[EDefterName(taxpayer_id, period, bkind, part, branch)] = berat
                if stage == "gib":
                    out[EDefterName(taxpayer_id, period, bkind, part, branch, gib=True)] = replace(
                        berat, counter_signature=True
                    )
    if dr:
        out[EDefterName(taxpayer_id, period, FileKind.DR, 0, branch)] = Doc(
            root="defterraporu", taxpayer_id=taxpayer_id, period=period, entries_type="trialbalance",
            unique_id=f"DR{period.yyyymm}", branch=branch, signature_value="dr",
        )
    return out


def write_docs(folder: Path, docs: dict[EDefterName, Doc], *, zipped: bool = False) -> list[Path]:
    """Write docs as .xml (or one-per-file .zip) into folder."""
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, doc in docs.items():
        if zipped:
            p = folder / name.with_ext("zip").filename
            with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(name.with_ext("xml").filename, doc.xml())
        else:
            p = folder / name.with_ext("xml").filename
            p.write_bytes(doc.xml())
        paths.append(p)
    return paths


def tree_digest(root: Path) -> dict[str, tuple[str, int, float]]:
    """Hash of every entry under root (without following links): proves nothing was written."""
    out: dict[str, tuple[str, int, float]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = p.lstat()
            if p.is_symlink():
                digest = "link:" + os.readlink(p)
            elif p.is_file():
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                digest = f"mode:{st.st_mode:o}"
            out[str(p.relative_to(root))] = (digest, st.st_size, st.st_mtime)
    return out

"""Consistency checks between names and contents, and along the signature-value chain.

Each check returns Problems (never raises) naming the file(s), in Turkish and English.
The chain (edefter-domain.md): ledger ds:SignatureValue -> copied into its berat ->
the GİB berat is the same signed berat plus GİB's counter-signature. Cryptographic
validity is not checked here (see ``include.edefter.verify``).
"""

from __future__ import annotations

from include.edefter.naming import EDefterName, FileKind
from include.edefter.problems import Problem, Severity
from include.edefter.xmlread import FileFacts

__all__ = [
    "EXPECTED_ROOT",
    "EXPECTED_ENTRIES_TYPE",
    "check_name_content",
    "check_berat_ledger",
    "check_gib_berat",
]

EXPECTED_ROOT = {
    FileKind.Y: "defter",
    FileKind.K: "defter",
    FileKind.YB: "berat",
    FileKind.KB: "berat",
    FileKind.DR: "defterraporu",
}
EXPECTED_ENTRIES_TYPE = {
    FileKind.Y: "journal",
    FileKind.K: "ledger",
    FileKind.YB: "journal",
    FileKind.KB: "ledger",
    FileKind.DR: "trialbalance",
}
_UNIQUE_ID_PREFIX = {"journal": "YEV", "ledger": "KEB"}
_ROOT_TR = {"defter": "defter", "berat": "berat", "defterraporu": "defter raporu"}


def _p(code: str, files: tuple[str, ...], tr: str, en: str, sev: Severity = Severity.ERROR,
       **details: object) -> Problem:
    return Problem(code, files, tr, en, sev, tuple((k, str(v)) for k, v in details.items()))


def _norm_branch(value: str | None) -> str | None:
    if value is None:
        return None
    v = value.strip()
    if not v:
        return None
    if v.isdigit():
        return None if int(v) == 0 else f"{int(v):04d}"
    return v


def check_name_content(name: EDefterName, facts: FileFacts) -> list[Problem]:
    """Does the content say what the name says (type, taxpayer, period, branch, signatures)?"""
    f = (name.filename,)
    out: list[Problem] = []
    want_root = EXPECTED_ROOT[name.kind]
    if facts.root != want_root:
        out.append(
            _p(
                "content.type_mismatch",
                f,
                f"ad {name.code} ({name.kind.label_tr}) diyor ama içerik bir {_ROOT_TR.get(facts.root, facts.root)}",
                f"the name says {name.code} but the content is a {facts.root} (root element edefter:{facts.root})",
                expected=want_root,
                found=facts.root,
            )
        )
        return out  # further field comparisons would only repeat the same finding
    want_type = EXPECTED_ENTRIES_TYPE[name.kind]
    if facts.entries_type is None:
        if name.kind is not FileKind.DR:
            out.append(
                _p(
                    "content.entries_type_missing",
                    f,
                    "documentInfo/entriesType bulunamadı",
                    "documentInfo/entriesType is missing",
                )
            )
    elif facts.entries_type.strip().lower() != want_type:
        out.append(
            _p(
                "content.type_mismatch",
                f,
                f"ad {name.code} diyor ama entriesType '{facts.entries_type}' (beklenen '{want_type}')",
                f"the name says {name.code} but entriesType is '{facts.entries_type}' (expected '{want_type}')",
                Severity.WARNING if name.kind is FileKind.DR else Severity.ERROR,
                expected=want_type,
                found=facts.entries_type,
            )
        )
    if facts.taxpayer_id is None:
        out.append(
            _p("content.taxpayer_missing", f, "vergi kimlik numarası (identifier) bulunamadı",
               "the taxpayer id (xbrli:identifier) is missing")
        )
    elif facts.taxpayer_id != name.taxpayer_id:
        out.append(
            _p(
                "content.taxpayer_mismatch",
                f,
                f"addaki VKN/TCKN {name.taxpayer_id}, içerikteki {facts.taxpayer_id}",
                f"taxpayer id in the name is {name.taxpayer_id}, in the content {facts.taxpayer_id}",
                expected=name.taxpayer_id,
                found=facts.taxpayer_id,
            )
        )
    if facts.period is None:
        out.append(
            _p("content.period_missing", f, "dönem başlangıcı (periodCoveredStart) bulunamadı veya geçersiz",
               "the period start (periodCoveredStart) is missing or invalid")
        )
    elif facts.period != name.period:
        out.append(
            _p(
                "content.period_mismatch",
                f,
                f"addaki dönem {name.period.label_tr}, içerikteki {facts.period.label_tr}",
                f"period in the name is {name.period}, in the content {facts.period}",
                expected=name.period.yyyymm,
                found=facts.period.yyyymm,
            )
        )
    if (
        facts.period_start is not None
        and facts.period_end is not None
        and (facts.period_end.year, facts.period_end.month) != (facts.period_start.year, facts.period_start.month)
    ):
        out.append(
            _p(
                "content.period_span",
                f,
                f"dönem tek bir ay değil: {facts.period_start} - {facts.period_end}",
                f"the period is not one month: {facts.period_start} to {facts.period_end}",
            )
        )
    name_branch, content_branch = _norm_branch(name.branch), _norm_branch(facts.branch_no)
    if name_branch != content_branch:
        out.append(
            _p(
                "content.branch_mismatch",
                f,
                f"addaki şube {name.branch or 'yok'}, içerikteki Şube No {facts.branch_no or 'yok'}",
                f"branch in the name is {name.branch or 'none'}, Şube No in the content {facts.branch_no or 'none'}",
                expected=name.branch or "",
                found=facts.branch_no or "",
            )
        )
    if facts.unique_id and (name.kind.is_ledger or name.kind.is_berat):
        prefix = _UNIQUE_ID_PREFIX.get(want_type, "")
        uid = facts.unique_id or ""
        if prefix and not (uid.startswith(prefix) and uid[3:9] == name.period.yyyymm):
            out.append(
                _p(
                    "content.unique_id_format",
                    f,
                    f"uniqueID '{uid}' beklenen biçimde değil ({prefix}{name.period.yyyymm}NNNNNN)",
                    f"uniqueID '{uid}' is not of the expected form {prefix}{name.period.yyyymm}NNNNNN",
                    Severity.WARNING,
                )
            )
    if facts.signature_value is None:
        out.append(
            _p("content.signature_missing", f, "dosyada ds:Signature/ds:SignatureValue yok (imzasız)",
               "the file has no ds:Signature/ds:SignatureValue (unsigned)")
        )
    if name.kind.is_berat and facts.copied_signature_value is None:
        out.append(
            _p(
                "content.copied_signature_missing",
                f,
                "beratta defterin imza değeri (edefter:berat/ds:SignatureValue) yok",
                "the berat lacks the ledger's copied signature value (edefter:berat/ds:SignatureValue)",
            )
        )
    if name.gib and not facts.has_counter_signature:
        out.append(
            _p(
                "chain.gib_counter_signature_missing",
                f,
                "GİB beratında GİB mührü (XAdES CounterSignature) yok",
                "the GİB berat has no GİB seal (XAdES CounterSignature)",
            )
        )
    if not name.gib and name.kind.is_berat and facts.has_counter_signature:
        out.append(
            _p(
                "content.unexpected_counter_signature",
                f,
                "mükellef beratında karşı imza (GİB mührü) var: dosya GIB- önekli olmalı mı?",
                "a taxpayer berat carries a counter-signature (GİB seal): should it be named GIB-…?",
                Severity.WARNING,
            )
        )
    return out


def check_berat_ledger(
    ledger: EDefterName, ledger_facts: FileFacts, berat: EDefterName, berat_facts: FileFacts
) -> list[Problem]:
    """A berat (taxpayer or GİB) against its ledger: same document, same signature value."""
    files = (ledger.filename, berat.filename)
    out: list[Problem] = []
    if ledger_facts.unique_id != berat_facts.unique_id:
        out.append(
            _p(
                "chain.unique_id_mismatch",
                files,
                f"beratın uniqueID'si ({berat_facts.unique_id}) defterinkiyle ({ledger_facts.unique_id}) aynı değil",
                f"the berat's uniqueID ({berat_facts.unique_id}) differs from the ledger's ({ledger_facts.unique_id})",
            )
        )
    if ledger_facts.taxpayer_id != berat_facts.taxpayer_id:
        out.append(
            _p(
                "chain.taxpayer_mismatch",
                files,
                f"berattaki VKN/TCKN ({berat_facts.taxpayer_id}) defterdekiyle ({ledger_facts.taxpayer_id}) aynı değil",
                f"the berat's taxpayer id ({berat_facts.taxpayer_id}) differs from the ledger's ({ledger_facts.taxpayer_id})",
            )
        )
    if (ledger_facts.period_start, ledger_facts.period_end) != (berat_facts.period_start, berat_facts.period_end):
        out.append(
            _p(
                "chain.period_mismatch",
                files,
                f"beratın dönemi ({berat_facts.period_start} - {berat_facts.period_end}) defterinkiyle "
                f"({ledger_facts.period_start} - {ledger_facts.period_end}) aynı değil",
                f"the berat's period ({berat_facts.period_start} to {berat_facts.period_end}) differs from the "
                f"ledger's ({ledger_facts.period_start} to {ledger_facts.period_end})",
            )
        )
    if _norm_branch(ledger_facts.branch_no) != _norm_branch(berat_facts.branch_no):
        out.append(
            _p(
                "chain.branch_mismatch",
                files,
                f"beratın Şube No'su ({berat_facts.branch_no}) defterinkiyle ({ledger_facts.branch_no}) aynı değil",
                f"the berat's Şube No ({berat_facts.branch_no}) differs from the ledger's ({ledger_facts.branch_no})",
            )
        )
    if (
        berat_facts.entry_count is not None
        and ledger_facts.entry_header_count
        and berat_facts.entry_count != ledger_facts.entry_header_count
    ):
        # numberOfEntries = the ledger's entryHeader count in GİB's samples and ours;
        # other software's practice is unconfirmed, so this only warns.
        out.append(
            _p(
                "chain.entry_count_mismatch",
                files,
                f"beratta kayıt sayısı {berat_facts.entry_count}, defterde {ledger_facts.entry_header_count} kayıt var",
                f"the berat states {berat_facts.entry_count} entries, the ledger has "
                f"{ledger_facts.entry_header_count}",
                Severity.WARNING,
            )
        )
    if (
        ledger_facts.signature_value is not None
        and berat_facts.copied_signature_value is not None
        and ledger_facts.signature_value != berat_facts.copied_signature_value
    ):
        out.append(
            _p(
                "chain.signature_value_mismatch",
                files,
                "beratta kayıtlı imza değeri defterin imza değeriyle aynı değil (Çapraz Doğrulama Kontrolü Hatalı): "
                "defter berattan sonra değişmiş veya başka bir defterin beratı",
                "the signature value copied into the berat does not match the ledger's signature value: the ledger "
                "changed after its berat was made, or the berat belongs to another ledger",
            )
        )
    return out


def check_gib_berat(
    berat: EDefterName, berat_facts: FileFacts, gib: EDefterName, gib_facts: FileFacts
) -> list[Problem]:
    """The GİB berat must be the taxpayer berat (same signed content) plus GİB's counter-signature."""
    files = (berat.filename, gib.filename)
    out: list[Problem] = []
    same_signed = (
        berat_facts.signature_value is not None
        and berat_facts.signature_value == gib_facts.signature_value
        and berat_facts.copied_signature_value == gib_facts.copied_signature_value
        and berat_facts.unique_id == gib_facts.unique_id
        and berat_facts.berat_uuid == gib_facts.berat_uuid
    )
    if not same_signed:
        out.append(
            _p(
                "chain.gib_berat_mismatch",
                files,
                "GİB beratı mükellef beratının aynısı değil (imza değeri, defter imza değeri, uniqueID veya berat "
                "UUID farklı)",
                "the GİB berat is not the taxpayer berat (signature value, copied ledger signature value, uniqueID or "
                "berat UUID differ)",
            )
        )
    if not gib_facts.has_counter_signature:
        out.append(
            _p(
                "chain.gib_counter_signature_missing",
                (gib.filename,),
                "GİB beratında GİB mührü (XAdES CounterSignature) yok",
                "the GİB berat has no GİB seal (XAdES CounterSignature)",
            )
        )
    return out

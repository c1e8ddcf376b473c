"""validate_month: name↔content, berat↔ledger and GİB berat↔berat checks on hand-built XML."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from typing import BinaryIO

import pytest

from include.edefter.checks import MonthReport
from include.edefter.checks import validate_month as _validate_month
from include.edefter.ledger_set import SetKey
from include.edefter.naming import EDefterName, FileKind, Period
from include.edefter.problems import Problem, Severity
from include.edefter.status import EDefterStatus
from tests.edefter.handmade import Doc, fake_sig, month_docs


def validate_month(*args, **kwargs):  # type: ignore[no-untyped-def]  # noqa: ANN002, ANN003, ANN201
    """Handmade documents are deliberately minimal (fake signatures), not GİB-schema-valid: no XSD here."""
    kwargs.setdefault("schema", "off")
    return _validate_month(*args, **kwargs)


P = Period(2019, 9)


def inputs(docs: dict[EDefterName, Doc | bytes]) -> list[tuple[EDefterName, Callable[[], BinaryIO]]]:
    def opener(d: Doc | bytes) -> Callable[[], BinaryIO]:
        data = d if isinstance(d, bytes) else d.xml()
        return lambda: io.BytesIO(data)

    return [(n, opener(d)) for n, d in docs.items()]


def codes(r: MonthReport) -> set[str]:
    return {p.code for p in r.errors}


def find(r: MonthReport, code: str) -> Problem:
    hits = [p for p in r.problems if p.code == code]
    assert hits, f"{code} not in {[str(p) for p in r.problems]}"
    return hits[0]


def name(code: str, part: int = 0, branch: str | None = None, tid: str = "1234567801") -> EDefterName:
    return EDefterName(tid, P, FileKind(code.removeprefix("GIB-")), part, branch, code.startswith("GIB-"))


@pytest.mark.parametrize("branch", [None, "7011"])
@pytest.mark.parametrize("parts", [(0,), (1, 2)])
def test_clean_approved_set_is_ok(branch: str | None, parts: tuple[int, ...]) -> None:
    r = validate_month(inputs(month_docs(parts=parts, branch=branch, dr=True)))
    assert r.ok, [str(p) for p in r.problems]
    assert r.status is EDefterStatus.ONAYLI_BERAT_INDIRILDI and r.missing == ()
    assert len(r.facts) == 6 * len(parts) + 1
    assert r.key == SetKey("1234567801", branch, P)


@pytest.mark.parametrize(
    ("stage", "status", "missing"),
    [
        ("ledgers", EDefterStatus.DOSYA_OLUSTURULDU, ("1234567801-201909-YB-000000", "1234567801-201909-KB-000000")),
        ("berats", EDefterStatus.GIBE_GONDERILDI, ("GIB-1234567801-201909-YB-000000", "GIB-1234567801-201909-KB-000000")),
    ],
)
def test_not_yet_approved(stage: str, status: EDefterStatus, missing: tuple[str, ...]) -> None:
    docs = month_docs(stage=stage)
    relaxed = validate_month(inputs(docs), require_approved=False)
    assert relaxed.ok and relaxed.status is status and relaxed.missing == missing
    strict = validate_month(inputs(docs))
    p = find(strict, "set.not_approved")
    assert not strict.ok and p.files == missing and status.value in p.message_tr


def test_ledger_name_with_berat_content() -> None:
    docs = month_docs()
    docs[name("Y")] = docs[name("YB")]
    r = validate_month(inputs(docs))
    p = find(r, "content.type_mismatch")
    assert p.files == (name("Y").filename,) and "berat" in p.message_en and "berat" in p.message_tr


def test_journal_name_with_ledger_entries_type() -> None:
    docs = month_docs()
    docs[name("Y")] = replace(docs[name("Y")], entries_type="ledger")
    assert find(validate_month(inputs(docs)), "content.type_mismatch").files == (name("Y").filename,)


def test_taxpayer_mismatch_between_name_and_content() -> None:
    docs = month_docs()
    docs[name("K")] = replace(docs[name("K")], taxpayer_id="9876543210")
    p = find(validate_month(inputs(docs)), "content.taxpayer_mismatch")
    assert p.files == (name("K").filename,) and "9876543210" in p.message_tr and "1234567801" in p.message_en


def test_period_mismatch_between_name_and_content() -> None:
    docs = month_docs()
    docs[name("KB")] = replace(docs[name("KB")], period=Period(2019, 8))
    r = validate_month(inputs(docs))
    p = find(r, "content.period_mismatch")
    assert p.files == (name("KB").filename,) and "Ağustos-2019" in p.message_tr
    assert "chain.period_mismatch" in codes(r)  # and the berat no longer matches its ledger


def test_branch_mismatch() -> None:
    docs = month_docs(branch="7011")
    docs[name("Y", branch="7011")] = replace(docs[name("Y", branch="7011")], branch="7012")
    assert find(validate_month(inputs(docs)), "content.branch_mismatch").files == (name("Y", branch="7011").filename,)


def test_berat_copied_signature_value_must_match_its_ledger() -> None:
    docs = month_docs()
    docs[name("YB")] = replace(docs[name("YB")], copied_signature_value=fake_sig("another ledger"))
    r = validate_month(inputs(docs))
    p = find(r, "chain.signature_value_mismatch")
    assert p.files == (name("Y").filename, name("YB").filename)
    assert "Çapraz Doğrulama" in p.message_tr
    # The GİB berat (still matching the ledger) now differs from the taxpayer berat.
    assert "chain.gib_berat_mismatch" in codes(r)


def test_ledger_changed_after_berat() -> None:
    docs = month_docs()
    docs[name("K")] = replace(docs[name("K")], signature_value="re-signed ledger")
    r = validate_month(inputs(docs))
    flagged = {p.files for p in r.problems if p.code == "chain.signature_value_mismatch"}
    assert flagged == {(name("K").filename, name("KB").filename), (name("K").filename, name("GIB-KB").filename)}


def test_berat_of_another_document() -> None:
    docs = month_docs()
    docs[name("YB")] = replace(docs[name("YB")], unique_id="YEV201909000099")
    assert find(validate_month(inputs(docs)), "chain.unique_id_mismatch").files == (
        name("Y").filename,
        name("YB").filename,
    )


def test_gib_berat_without_counter_signature() -> None:
    docs = month_docs()
    docs[name("GIB-KB")] = replace(docs[name("GIB-KB")], counter_signature=False)
    r = validate_month(inputs(docs))
    p = find(r, "chain.gib_counter_signature_missing")
    assert p.files == (name("GIB-KB").filename,) and "CounterSignature" in p.message_en
    assert len([q for q in r.problems if q.code == "chain.gib_counter_signature_missing"]) == 1


def test_gib_berat_of_other_signed_content() -> None:
    docs = month_docs()
    docs[name("GIB-YB")] = replace(docs[name("GIB-YB")], signature_value="someone re-signed")
    p = find(validate_month(inputs(docs)), "chain.gib_berat_mismatch")
    assert p.files == (name("YB").filename, name("GIB-YB").filename)


def test_unreadable_and_broken_files_are_problems_not_crashes() -> None:
    docs: dict[EDefterName, Doc | bytes] = dict(month_docs())
    docs[name("Y")] = b"this is not xml at all"
    docs[name("K")] = docs[name("K")].xml()[:500]  # type: ignore[union-attr]

    def boom() -> BinaryIO:
        raise PermissionError(13, "Permission denied")

    items = inputs(docs)
    items = [(n, boom if n == name("KB") else op) for n, op in items]
    r = validate_month(items)
    assert find(r, "xml.not_xml").files == (name("Y").filename,)
    assert find(r, "xml.truncated").files == (name("K").filename,)
    assert find(r, "file.unreadable").files == (name("KB").filename,)
    assert "Permission denied" in find(r, "file.unreadable").message_en


def test_dtd_and_entity_files_are_rejected_in_a_month() -> None:
    docs: dict[EDefterName, Doc | bytes] = dict(month_docs())
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<edefter:berat xmlns:edefter="http://www.edefter.gov.tr">&b;</edefter:berat>'
    )
    docs[name("YB")] = bomb
    assert find(validate_month(inputs(docs)), "xml.dtd").files == (name("YB").filename,)


def test_expected_key_flags_foreign_files() -> None:
    docs = month_docs()
    docs[name("Y", tid="9876543210")] = Doc(taxpayer_id="9876543210")
    r = validate_month(inputs(docs), expected=SetKey("1234567801", None, P))
    assert find(r, "set.foreign_file").files == (name("Y", tid="9876543210").filename,)


def test_empty_input() -> None:
    r = validate_month([], expected=SetKey("1234567801", None, P))
    assert not r.ok and find(r, "set.empty")


def test_extra_file_checks_plug_in_and_crashes_are_contained() -> None:
    seen: list[str] = []

    def crypto(n: EDefterName, opener: Callable[[], BinaryIO]) -> list[Problem]:
        with opener() as fh:
            assert fh.read(5) == b"<?xml"  # the checker gets the XML bytes again
        seen.append(n.filename)
        if n.kind is FileKind.K:
            return [Problem("signature.invalid", (n.filename,), "imza geçersiz", "invalid signature")]
        return []

    def crashing(n: EDefterName, opener: Callable[[], BinaryIO]) -> list[Problem]:
        raise RuntimeError("checker bug")

    r = validate_month(inputs(month_docs()), extra_file_checks=[crypto, crashing])
    assert len(seen) == 6
    assert find(r, "signature.invalid").files == (name("K").filename,)
    assert find(r, "check.failed").severity is Severity.ERROR
    assert "checker bug" in find(r, "check.failed").message_en


def test_report_is_frozen_and_serialisable() -> None:
    import json

    r = validate_month(inputs(month_docs()))
    json.dumps(r.to_dict())
    with pytest.raises(AttributeError):
        r.status = None  # type: ignore[misc]


def test_entry_count_mismatch_warns() -> None:
    docs = month_docs()
    docs[name("YB")] = replace(docs[name("YB")], number_of_entries=7)
    r = validate_month(inputs(docs))
    p = find(r, "chain.entry_count_mismatch")
    assert p.severity is Severity.WARNING and p.files == (name("Y").filename, name("YB").filename)
    assert "7" in p.message_en


def test_dedupe_merges_only_exact_repeats() -> None:
    from include.edefter.checks import _dedupe

    a = Problem("crypto.signature.structure", ("f.xml",), "2 ds:Signature", "2 ds:Signature elements")
    b = Problem("crypto.signature.structure", ("f.xml",), "sertifika yok", "no certificate")
    c = Problem("crypto.signature.structure", ("f.xml",), "2 ds:Signature", "2 ds:Signature elements",
                Severity.WARNING)
    out = _dedupe([a, b, a, c, a])
    assert [p.message_en for p in out] == ["2 ds:Signature elements (3 times)", "no certificate",
                                           "2 ds:Signature elements"]
    assert dict(out[0].details)["count"] == "3" and out[2].severity is Severity.WARNING
    assert _dedupe([a, b]) == (a, b)

"""``python -m include.edefter scan FOLDER [--json] [--verify] [--schema auto|require|off]``: a read-only e-Defter folder report.

Exit codes: 0 no problems (warnings allowed), 1 problems found, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from include.edefter import scan as _scan
from include.edefter.problems import Problem, Severity
from include.edefter.scan import ScanResult, company_name, scan_folder

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

_NO_VERIFY_TR = "Kriptografik imza doğrulaması kullanılamıyor: imzalar doğrulanmadı."
_NO_VERIFY_EN = "Cryptographic signature verification is not available: signatures were NOT verified."


def _print_details(p: Problem, w: Callable[[str], object], indent: str) -> None:
    """The problem's details, as --json carries them (e.g. every schema error with its line)."""
    for k, v in p.details:
        if not v:
            continue
        lines = v.splitlines() or [""]
        w(f"{indent}{k}: {lines[0]}\n")
        for line in lines[1:]:
            w(f"{indent}  {line}\n")


def _print_text(result: ScanResult, out: object) -> None:
    w = out.write  # type: ignore[attr-defined]
    disc = result.discovery
    w(f"Klasör / folder: {disc.root}\n")
    w(f"e-Defter dosyası / files: {len(disc.files)}; defter takımı / ledger sets: {len(result.reports)}\n")
    w(
        "Kriptografik doğrulama / cryptographic verification: "
        + ("yapıldı / done" if result.verified else "yapılmadı / not done")
        + "\n"
    )
    for s, r in result.reports:
        w("\n")
        branch = s.key.branch or "-"
        w(f"VKN/TCKN {s.key.taxpayer_id}  şube/branch {branch}  dönem/month {s.key.period.label_tr} ({s.key.period})\n")
        w(f"  unvan / company: {company_name(r) or '-'}\n")
        w(f"  parçalar / parts: {', '.join(f'{p:06d}' for p in s.parts) or '-'}\n")
        status_tr, status_en = _scan.status_texts(s)
        w(f"  e-Defter statüsü: {status_tr} ({status_en})\n")
        w(f"  dosyalar / files: {', '.join(n.code + ':' + f'{n.part:06d}' for n in s.names)}\n")
        if s.missing:
            w(f"  eksik / missing: {', '.join(s.missing)}\n")
        if r.problems:
            w("  sorunlar / problems:\n")
            for p in r.problems:
                w(f"    - {'HATA' if p.severity is Severity.ERROR else 'UYARI'} {p}\n")
                _print_details(p, w, "        ")
        else:
            w("  sorun yok / no problems\n")
    if result.folder_problems:
        w("\nKlasör sorunları / folder problems:\n")
        for p in result.folder_problems:
            w(f"  - {'HATA' if p.severity is Severity.ERROR else 'UYARI'} {p}\n")
            _print_details(p, w, "      ")
    w("\n" + ("SORUN VAR / problems found" if result.has_errors else "SORUN YOK / no problems") + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m include.edefter",
        description="e-Defter folder tools (read-only). / e-Defter klasör araçları (salt okunur).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sp = sub.add_parser(
        "scan",
        help="list ledger sets, statuses and problems in a folder",
        description="List every ledger set (taxpayer, branch, month, parts, e-Defter statüsü, missing files, "
        "problems) under FOLDER. The folder is only read, never written.",
        epilog="exit codes: 0 no problems (warnings allowed), 1 problems found, 2 usage error",
    )
    sp.add_argument("folder", type=Path, help="the e-Defter folder (never written to)")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.add_argument(
        "--verify",
        action="store_true",
        help="also verify signatures cryptographically (include.edefter.verify; trust anchors from "
        "EDEFTER_TRUSTED_ROOTS / EDEFTER_GIB_CERTS)",
    )
    sp.add_argument(
        "--schema",
        choices=["auto", "require", "off"],
        default="auto",
        help="XSD validation against GİB's schema (EDEFTER_SCHEMA_DIR): auto = validate when the schema "
        "directory is usable, else warn that it was skipped; require = no usable schema is an error; "
        "off = do not validate",
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code not in (0, None) else EXIT_OK
    folder: Path = args.folder
    if not folder.is_dir():
        print(f"hata / error: klasör yok veya klasör değil / not a folder: {folder}", file=sys.stderr)
        return EXIT_USAGE
    checks = []
    if args.verify:
        crypto, reason = _scan.load_crypto_check_with_reason()
        if crypto is None:
            print(f"{_NO_VERIFY_TR}\n{_NO_VERIFY_EN}\n({reason})", file=sys.stderr)
        else:
            checks.append(crypto)
    result = scan_folder(folder, extra_file_checks=checks, schema=args.schema)
    if args.json:
        data = result.to_dict()
        if args.verify and not checks:
            data["cryptographic_verification_note"] = _NO_VERIFY_EN
        json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        _print_text(result, sys.stdout)
    return EXIT_PROBLEMS if result.has_errors else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

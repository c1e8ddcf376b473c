"""Command line: python -m include.edefter.sample OUT_DIR --vkn ... (see --help)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from include.edefter.naming import Period

from .generator import Stage, generate
from .pki import TestPKI

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)[bB]?\s*$")


def parse_size(text: str) -> int:
    """'200MB' -> 200*1024*1024; '500k' -> 512000; '1234' -> 1234 bytes."""
    m = _SIZE_RE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"size must look like 200MB, 512KB or 1000000, got {text!r}")
    mult = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)


def parse_month(text: str) -> Period:
    m = re.fullmatch(r"(\d{4})-?(\d{2})", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"month must be YYYY-MM, got {text!r}")
    try:
        return Period(int(m.group(1)), int(m.group(2)))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m include.edefter.sample",
        description=(
            "Generate signed e-Defter sample sets (Y, K, YB, KB, GIB-YB, GIB-KB, DR) for tests, demos and "
            "benchmarks. TEST MATERIAL: signed with a generated test CA (written to OUT_DIR/test-certificates/), "
            "NOT VALID FOR GİB."
        ),
    )
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="output folder (created if missing)")
    p.add_argument("--vkn", required=True, help="taxpayer id: 10-digit VKN or 11-digit TCKN (kept as a string)")
    p.add_argument("--name", required=True, help="company name (Kurum Unvanı)")
    p.add_argument("--from", dest="first", type=parse_month, required=True, metavar="YYYY-MM", help="first month")
    p.add_argument("--to", dest="last", type=parse_month, metavar="YYYY-MM", help="last month (default: --from)")
    p.add_argument("--branch", help="4-digit branch number (Şube No), not 0000")
    p.add_argument("--branch-name", help="branch name (Şube Adı)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--parts", type=int, default=1, help="parts per month (1 -> part 000000; n>1 -> 000001..n)")
    size.add_argument("--part-size", type=parse_size, metavar="SIZE",
                      help="fill each journal part to about SIZE (e.g. 200MB); with --parts-per-month parts")
    p.add_argument("--parts-per-month", type=int, default=None,
                   help="number of parts when --part-size is used (default 1)")
    p.add_argument("--entries", type=int, default=40, help="journal entries per part (ignored with --part-size)")
    p.add_argument("--seed", type=int, default=0, help="content seed: same seed and PKI give identical files")
    p.add_argument("--stage", choices=[s.value for s in Stage], default=Stage.GIB_BERATS.value,
                   help="ledgers: Y,K(,DR) only (Dosya Oluşturuldu); berats: + YB,KB (GİB'e Gönderildi); "
                   "gib: + GIB-YB,GIB-KB (Onaylı Berat İndirildi)")
    p.add_argument("--layout", choices=["flat", "gib"], default="flat",
                   help="flat folder, or GİB-style <VKN>/<dd.mm.yyyy-dd.mm.yyyy>/<MM>/ tree")
    p.add_argument("--zip", action="store_true", help="store each file as its own <stem>.zip")
    p.add_argument("--no-dr", action="store_true", help="do not write the Defter Raporu (DR)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    parts = args.parts
    if args.part_size is not None:
        parts = args.parts_per_month or 1
    out: Path = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    pki = TestPKI.create(out)
    try:
        result = generate(
            out, taxpayer_id=args.vkn, company_name=args.name, first=args.first, last=args.last or args.first,
            pki=pki, branch=args.branch, branch_name=args.branch_name, parts=parts, entries_per_part=args.entries,
            part_size_bytes=args.part_size, seed=args.seed, stage=Stage(args.stage), with_dr=not args.no_dr,
            layout=args.layout, zipped=args.zip,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in result.files:
        print(path)
    print(f"test certificates (TEST MATERIAL, NOT VALID FOR GİB): {result.cert_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Large parts are written streaming: peak memory stays far below the file size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.sample.test_generator import xmlsec_verify

_CHILD = r"""
import json, resource, sys
from pathlib import Path
from include.edefter.naming import Period
from include.edefter.sample import Stage, TestPKI, generate_month
out = Path(sys.argv[1]); size = int(sys.argv[2])
pki = TestPKI.create(out)
mf = generate_month(out, taxpayer_id="1234567801", company_name="Büyük Şirket A.Ş.", period=Period(2020, 1),
                    pki=pki, part_size_bytes=size or None, entries_per_part=5, stage=Stage.GIB_BERATS)
print(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "y": str(mf.path("Y")), "k": str(mf.path("K")), "ca": str(pki.ca_cert_path),
                  "entries": mf.parts[0].entry_count}))
"""


def _run(out: Path, size: int) -> dict:  # type: ignore[type-arg]
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(out), str(size)], capture_output=True, text=True,
                          timeout=300, check=True)
    return json.loads(proc.stdout)


def test_30mb_part_keeps_peak_memory_small_and_still_verifies(tmp_path, xmlsec1) -> None:  # type: ignore[no-untyped-def]
    size = 30 * 1024 * 1024
    small = _run(tmp_path / "small", 0)
    big = _run(tmp_path / "big", size)
    y_size = Path(big["y"]).stat().st_size
    assert size <= y_size < size + 64 * 1024  # filled to the target, whole entries only
    assert big["entries"] > 5_000
    growth_kb = big["maxrss_kb"] - small["maxrss_kb"]
    # Building the tree in memory would cost several times the file size;
    # streaming costs the write buffer (~1 MB) plus noise.
    assert growth_kb * 1024 < y_size / 4, (small, big, y_size)
    assert growth_kb < 16 * 1024, (small, big)
    # The streamed canonical-form digest is right at this size too.
    for key in ("y", "k"):
        proc = xmlsec_verify(xmlsec1, Path(big["ca"]), Path(big[key]))
        assert proc.returncode == 0, proc.stderr

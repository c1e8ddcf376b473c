"""Signed e-Defter sample sets for tests, demos and benchmarks (TEST MATERIAL, not valid for GİB).

    from include.edefter.sample import Stage, TestPKI, generate_month, generate, SampleResult
"""

from __future__ import annotations

from .generator import MonthFiles, PartStats, SampleResult, Stage, generate, generate_month, month_dir
from .pki import TestPKI

__all__ = ["MonthFiles", "PartStats", "SampleResult", "Stage", "TestPKI", "generate", "generate_month", "month_dir"]

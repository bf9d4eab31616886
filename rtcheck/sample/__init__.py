"""Synthetic oligometastatic NSCLC sample cases (DICOM RT) with designed, known outcomes.

``generate(outdir)`` writes ``sample_dicom``-style folders (see ``docs/samples.md``). The
anatomy, dose and ground-truth modules use numpy only; files are written with
:mod:`rtcheck.io.write`.
"""

from rtcheck.sample.build import generate
from rtcheck.sample.cases import CASE_NAMES

__all__ = ["CASE_NAMES", "generate"]

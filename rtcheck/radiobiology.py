"""Linear-quadratic (LQ) conversions: BED, EQD2, inverse and iso-effective doses.

Formulas (reference notes ``constraints.md`` section 9, as implemented in DVHmetrics
``R/getEQD2.R``, source key S25; iso-effective dose as in dicom/raystation-scripts
``rt_classes/tolerance.py``, S3)::

    BED  = D * (1 + d / (a/b))                 D total dose, d = D / n dose per fraction
    EQD2 = BED / (1 + 2 / (a/b))               (= D * (d + a/b) / (2 + a/b))
    D'   = N' * (-a/b + sqrt((a/b)^2 + 4 * (N*d^2 + N*d*a/b) / N')) / 2

Every function is vectorised (numpy broadcasting over doses, fraction counts and alpha/beta)
and assumes the plain LQ model: uniform fractions, complete repair between fractions, no
repopulation or overall-time factor, no incomplete-repair correction. LQ validity at
SBRT doses per fraction is not established in the stored sources (section 9 says so); see
``docs/multiplan.md``.

Default alpha/beta values by organ class (:data:`DEFAULT_ALPHA_BETA`) are *implementation
choices, not consensus values* (section 9): 10 Gy for tumour (BED10 usage, S19), 3 Gy for
late-responding normal tissue (S3 uses 3 Gy for lung, heart, oesophagus, great vessels,
bronchus, trachea, chest wall, ribs, skin, bowel, rectum), 2 Gy for spinal cord and other
central / peripheral nervous tissue (S3: spinal cord, brainstem, optic nerve and chiasm, brain,
brachial plexus; HyTEC uses 2 Gy for the thecal sac, S7). Note that S3 also uses 2 Gy for
liver, kidney and stomach; rtcheck keeps those at the generic 3 Gy and says so in the source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

#: Reference dose per fraction of EQD2 (Gy).
EQD2_REFERENCE_GY = 2.0

#: Organ class -> (alpha/beta in Gy, source statement).
DEFAULT_ALPHA_BETA: dict[str, tuple[float, str]] = {
    "tumour": (
        10.0,
        "rtcheck default for tumour/target (BED10 usage, constraints.md section 9, S19; "
        "implementation choice, not consensus)",
    ),
    "nervous": (
        2.0,
        "rtcheck default for spinal cord / nervous tissue (constraints.md section 9, S3, S7; "
        "implementation choice, not consensus)",
    ),
    "late": (
        3.0,
        "rtcheck default for late-responding normal tissue (constraints.md section 9, S3; "
        "implementation choice, not consensus)",
    ),
}

#: Normalised name prefixes (lower case, letters and digits only) of nervous-tissue organs.
NERVOUS_PREFIXES: tuple[str, ...] = (
    "spinalcord",
    "spinalcanal",
    "thecalsac",
    "cord",
    "brainstem",
    "brain",
    "caudaequina",
    "cauda",
    "sacralplex",
    "lumbarplex",
    "brachialplex",
    "opticnrv",
    "opticnerve",
    "opticchiasm",
    "chiasm",
)

#: Name prefixes of targets (TG-263 target names start with these).
TARGET_PREFIXES: tuple[str, ...] = ("ptv", "gtv", "ctv", "itv")

#: DICOM RT ROI Interpreted Types that are targets.
TARGET_TYPES: frozenset[str] = frozenset({"PTV", "GTV", "CTV", "ITV", "TREATED_VOLUME"})


# ---------------------------------------------------------------------------- validation
def _doses(total: ArrayLike, what: str = "dose") -> FloatArray:
    d = np.asarray(total, dtype=np.float64)
    if not np.all(np.isfinite(d)):
        raise ValueError(f"{what} must be finite")
    if np.any(d < 0):
        raise ValueError(f"{what} must be >= 0 Gy, got minimum {float(d.min()):g}")
    return d


def _fractions(n_fractions: ArrayLike) -> FloatArray:
    n = np.asarray(n_fractions, dtype=np.float64)
    if not np.all(np.isfinite(n)) or np.any(n < 1) or np.any(n != np.round(n)):
        raise ValueError(f"number of fractions must be a whole number >= 1, got {n_fractions!r}")
    return n


def _alpha_beta(alpha_beta: ArrayLike) -> FloatArray:
    ab = np.asarray(alpha_beta, dtype=np.float64)
    if not np.all(np.isfinite(ab)) or np.any(ab <= 0):
        raise ValueError(f"alpha/beta must be > 0 Gy, got {alpha_beta!r}")
    return ab


def _out(x: FloatArray) -> FloatArray | float:
    return float(x) if x.ndim == 0 else x


# ---------------------------------------------------------------------------- forward
def bed(total: ArrayLike, n_fractions: ArrayLike, alpha_beta: ArrayLike) -> FloatArray | float:
    """Biologically effective dose ``BED = D (1 + d/(a/b))`` in Gy.

    Parameters
    ----------
    total
        Total physical dose D (Gy), scalar or array.
    n_fractions
        Number of equal fractions n (d = D / n).
    alpha_beta
        alpha/beta ratio (Gy), scalar or array broadcastable with ``total``.

    Returns
    -------
    float or ndarray
        BED (Gy); a float when every input is scalar.
    """
    d = _doses(total)
    n = _fractions(n_fractions)
    ab = _alpha_beta(alpha_beta)
    return _out(d * (1.0 + d / (n * ab)))


def eqd2(total: ArrayLike, n_fractions: ArrayLike, alpha_beta: ArrayLike) -> FloatArray | float:
    """Equivalent dose in 2 Gy fractions ``EQD2 = BED / (1 + 2/(a/b))`` in Gy.

    Parameters are as for :func:`bed`.
    """
    return eqdx(total, n_fractions, alpha_beta, EQD2_REFERENCE_GY)


def eqdx(
    total: ArrayLike, n_fractions: ArrayLike, alpha_beta: ArrayLike, reference_gy: float
) -> FloatArray | float:
    """Equivalent dose in fractions of ``reference_gy``: ``BED / (1 + x/(a/b))`` in Gy."""
    if not reference_gy > 0:
        raise ValueError(f"reference dose per fraction must be > 0 Gy, got {reference_gy!r}")
    ab = _alpha_beta(alpha_beta)
    b = np.asarray(bed(total, n_fractions, ab))
    return _out(b / (1.0 + reference_gy / ab))


# ---------------------------------------------------------------------------- inverse
def physical_from_bed(
    bed_gy: ArrayLike, n_fractions: ArrayLike, alpha_beta: ArrayLike
) -> FloatArray | float:
    """Total physical dose in ``n_fractions`` equal fractions giving this BED (Gy).

    Solves ``D + D^2/(n a/b) = BED`` for ``D >= 0`` in the cancellation-free form
    ``D = 2 BED / (1 + sqrt(1 + 4 BED / (n a/b)))``.
    """
    b = _doses(bed_gy, "BED")
    n = _fractions(n_fractions)
    ab = _alpha_beta(alpha_beta)
    return _out(2.0 * b / (1.0 + np.sqrt(1.0 + 4.0 * b / (n * ab))))


def physical_from_eqd2(
    eqd2_gy: ArrayLike, n_fractions: ArrayLike, alpha_beta: ArrayLike
) -> FloatArray | float:
    """Total physical dose in ``n_fractions`` equal fractions giving this EQD2 (Gy)."""
    e = _doses(eqd2_gy, "EQD2")
    ab = _alpha_beta(alpha_beta)
    return physical_from_bed(e * (1.0 + EQD2_REFERENCE_GY / ab), n_fractions, ab)


def isoeffective_dose(
    total: ArrayLike, n_fractions: ArrayLike, new_fractions: ArrayLike, alpha_beta: ArrayLike
) -> FloatArray | float:
    """Total dose in ``new_fractions`` fractions with the same BED as ``total`` in ``n_fractions``.

    Equal to the reference formula (constraints.md section 9, S3)
    ``D' = N' (-a/b + sqrt((a/b)^2 + 4 (N d^2 + N d a/b) / N')) / 2``, computed in a form
    without cancellation.
    """
    return physical_from_bed(bed(total, n_fractions, alpha_beta), new_fractions, alpha_beta)


def convert(
    total: ArrayLike, n_fractions: int, alpha_beta: ArrayLike, method: str
) -> FloatArray | float:
    """Convert physical dose with ``method`` ``"physical"``, ``"BED"`` or ``"EQD2"``."""
    key = method.upper()
    if key == "PHYSICAL":
        return _out(_doses(total))
    if key == "BED":
        return bed(total, n_fractions, alpha_beta)
    if key == "EQD2":
        return eqd2(total, n_fractions, alpha_beta)
    raise ValueError(f"unknown dose method {method!r} (expected physical, BED or EQD2)")


def dose_basis_label(method: str, alpha_beta: float | None = None) -> str:
    """Label for reports: ``"physical"``, ``"EQD2(a/b=2)"``, ``"BED(a/b=10)"``."""
    key = method.upper()
    if key == "PHYSICAL":
        return "physical"
    if key not in ("EQD2", "BED"):
        raise ValueError(f"unknown dose method {method!r} (expected physical, BED or EQD2)")
    if alpha_beta is None:
        raise ValueError(f"{key} needs an alpha/beta value")
    return f"{key}(a/b={alpha_beta:g})"


# ---------------------------------------------------------------------------- alpha/beta
@dataclass(frozen=True)
class AlphaBeta:
    """An alpha/beta value and where it came from.

    Attributes
    ----------
    value
        alpha/beta in Gy.
    source
        One sentence naming the origin (command line, protocol, rtcheck default + reference).
    organ_class
        ``tumour``, ``nervous`` or ``late`` when a default was used, else None.
    """

    value: float
    source: str
    organ_class: str | None = None


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def organ_class(name: str, interpreted_type: str | None = None) -> str:
    """Classify a structure for default alpha/beta: ``tumour``, ``nervous`` or ``late``.

    Targets are recognised by RT ROI Interpreted Type (PTV, GTV, CTV...) or a name starting
    with PTV/GTV/CTV/ITV; nervous tissue by TG-263 name roots (:data:`NERVOUS_PREFIXES`,
    including PRVs such as ``SpinalCord_PRV03``). Everything else is late normal tissue.
    """
    if interpreted_type and interpreted_type.upper() in TARGET_TYPES:
        return "tumour"
    key = _normalise(name)
    if key.startswith(TARGET_PREFIXES):
        return "tumour"
    if key.startswith(NERVOUS_PREFIXES):
        return "nervous"
    return "late"


def default_alpha_beta(name: str, interpreted_type: str | None = None) -> AlphaBeta:
    """rtcheck's default alpha/beta for a structure, with its source."""
    cls = organ_class(name, interpreted_type)
    value, source = DEFAULT_ALPHA_BETA[cls]
    return AlphaBeta(value, source, cls)


def resolve_alpha_beta(
    structure: str,
    *,
    override: float | None = None,
    protocol: float | None = None,
    protocol_name: str | None = None,
    interpreted_type: str | None = None,
) -> AlphaBeta:
    """The alpha/beta to use for ``structure``: command line > protocol > default by class.

    Parameters
    ----------
    structure
        Structure name (protocol TG-263 name or ROI name).
    override
        Value given on the command line (``--alpha-beta``), applies to every structure.
    protocol
        Value the protocol declares for this structure (or for the constraint's metric).
    protocol_name
        Protocol name, quoted in the source.
    interpreted_type
        RT ROI Interpreted Type, used to recognise targets.
    """
    if override is not None:
        _alpha_beta(override)
        return AlphaBeta(float(override), "command line (--alpha-beta)")
    if protocol is not None:
        _alpha_beta(protocol)
        where = f"protocol {protocol_name}" if protocol_name else "protocol"
        return AlphaBeta(float(protocol), f"{where}, structure {structure}")
    return default_alpha_beta(structure, interpreted_type)

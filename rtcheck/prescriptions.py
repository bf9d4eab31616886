"""Lesion prescriptions: ``--rx`` / ``--rx-file``, RT Plan dose references, names with a dose.

Precedence (``docs/evaluation.md``): the user's ``--rx`` > the RT Plan dose reference whose
ReferencedROINumber is the target's ROI > a dose reference whose description is the target's
name > the only dose reference of the plan when it names no ROI (assumed, WARNING) > a dose in
the target's name (``PTV_40Gy``, WARNING). Disagreements are findings; an unknown
prescription is ``None`` with a finding, and every metric relative to it is not evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rtcheck.errors import ConfigError, Finding, Severity
from rtcheck.model import Plan
from rtcheck.names import TargetCandidate, normalise

#: Relative difference between two prescriptions reported as a conflict.
RX_TOL = 0.005


@dataclass(frozen=True)
class Rx:
    """A lesion's prescription (total Gy) and where it came from."""

    gy: float | None
    source: str | None
    findings: tuple[Finding, ...] = ()


def parse_rx_text(text: str, where: str = "--rx") -> tuple[str, float]:
    """``NAME=GY`` (also ``NAME: GY``, ``NAME,GY``) -> ``(NAME, GY)``.

    Raises
    ------
    ConfigError
        Not of that form, or a dose that is not a positive number.
    """
    for sep in ("=", ":", ","):
        name, found, value = text.rpartition(sep)
        if found and name.strip():
            try:
                gy = float(value.strip().lower().removesuffix("gy").strip())
            except ValueError:
                break
            if not math.isfinite(gy) or gy <= 0:
                raise ConfigError(f"{where} {text!r}: the dose must be a positive number of Gy")
            return name.strip(), gy
    raise ConfigError(f"{where} {text!r}: expected TARGET=GY, e.g. PTV_1=40")


def read_rx_file(path: str) -> tuple[tuple[str, float], ...]:
    """Read ``--rx-file``: one ``TARGET=GY`` (or ``TARGET: GY``, ``TARGET,GY``) per line.

    Blank lines and ``#`` comments are ignored.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the prescription file: {exc}", path) from None
    out = []
    for n, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if text:
            out.append(parse_rx_text(text, f"line {n}"))
    return tuple(out)


def user_rx_for(
    user_rx: Sequence[tuple[str, float]],
    target_names: Sequence[str],
    other_targets: Sequence[str] = (),
) -> dict[str, float]:
    """Map ``--rx`` names onto lesion ROI names (exact, else case-insensitive).

    ``target_names`` are the lesions; ``other_targets`` the targets that are not lesions
    (GTVs when the lesions are the PTVs), named in the error when ``--rx`` gives one.

    Raises
    ------
    ConfigError
        A name that is no lesion of the plan (a typo, or a GTV when the lesions are PTVs,
        must not be ignored silently).
    """
    out: dict[str, float] = {}
    for name, gy in user_rx:
        hit = _named(name, target_names)
        if len(hit) != 1:
            known = ", ".join(target_names) or "none"
            if hit:
                why = "matches several targets"
            elif _named(name, other_targets):
                why = "is a target but not one of the lesions, which are one kind of target"
            else:
                why = "is not a target of this plan"
            raise ConfigError(f"--rx {name}={gy:g}: {name!r} {why} (lesions: {known})")
        out[hit[0]] = gy
    return out


def _named(name: str, names: Sequence[str]) -> list[str]:
    return [t for t in names if t == name] or [t for t in names if normalise(t) == normalise(name)]


#: Source of a prescription taken from the RT Plan's only dose reference, which names no ROI.
ASSUMED = "RT Plan (only dose reference)"


def prescription_for(
    target: TargetCandidate,
    plan: Plan | None,
    user: Mapping[str, float],
    others: Sequence[TargetCandidate],
) -> Rx:
    """The prescription of one target: ``--rx`` > RT Plan dose reference > dose in the name."""
    plan_gy, plan_src, notes = _from_plan(target, plan, others)
    name_gy = target.name_dose_gy
    subject = target.name
    if target.name in user:
        gy = user[target.name]
        for other, src in ((plan_gy, plan_src), (name_gy, "the structure name")):
            if other is not None and _differs(other, gy):
                notes.append(
                    _note(
                        "rx.overridden",
                        f"--rx {gy:g} Gy replaces {other:g} Gy from {src}",
                        subject,
                        Severity.WARNING,
                    )
                )
        return Rx(gy, "--rx", tuple(notes))
    if plan_gy is not None and plan_src == ASSUMED and name_gy is not None:
        if _differs(name_gy, plan_gy):
            notes.append(
                _note(
                    "rx.ambiguous",
                    f"the name says {name_gy:g} Gy, the RT Plan's only dose reference (which "
                    f"names no ROI) {plan_gy:g} Gy; give --rx {target.name}=GY",
                    subject,
                    Severity.WARNING,
                )
            )
            return Rx(None, None, tuple(notes))
    if plan_gy is not None:
        if name_gy is not None and _differs(name_gy, plan_gy):
            notes.append(
                _note(
                    "rx.conflict",
                    f"the RT Plan prescribes {plan_gy:g} Gy but the name says {name_gy:g} Gy; the "
                    "RT Plan is used",
                    subject,
                    Severity.WARNING,
                )
            )
        return Rx(plan_gy, plan_src, tuple(notes))
    if name_gy is not None:
        notes.append(
            _note(
                "rx.from_name",
                f"prescription {name_gy:g} Gy read from the structure name",
                subject,
                Severity.WARNING,
            )
        )
        return Rx(name_gy, "structure name", tuple(notes))
    notes.append(
        _note(
            "rx.unknown",
            "prescription unknown (no RT Plan dose reference, no dose in the name); give --rx "
            "NAME=GY; metrics relative to Rx are not evaluated",
            subject,
            Severity.WARNING,
        )
    )
    return Rx(None, None, tuple(notes))


def _from_plan(
    target: TargetCandidate, plan: Plan | None, others: Sequence[TargetCandidate]
) -> tuple[float | None, str | None, list[Finding]]:
    if plan is None:
        return None, None, []
    notes: list[Finding] = []
    refs = []
    for ref in plan.target_prescriptions:
        gy = ref.target_dose_gy
        if gy is not None and math.isfinite(gy) and gy > 0:
            refs.append(ref)
        elif ref.roi_number == target.roi_number or _names(ref.description, target.name):
            notes.append(
                _note(
                    "rx.invalid",
                    "the RT Plan's dose reference for this target "
                    + (
                        "states no readable TargetPrescriptionDose"
                        if gy is None
                        else f"gives {gy:g} Gy"
                    )
                    + ", not a prescription; ignored",
                    target.name,
                    Severity.WARNING,
                )
            )
    gy, source, more = _from_refs(refs, target, others)
    return gy, source, notes + more


def _names(description: str | None, name: str) -> bool:
    return bool(description) and normalise(description or "") == normalise(name)


def _from_refs(
    refs: list, target: TargetCandidate, others: Sequence[TargetCandidate]
) -> tuple[float | None, str | None, list[Finding]]:
    by_roi = [p for p in refs if p.roi_number is not None and p.roi_number == target.roi_number]
    if by_roi:
        return _single(by_roi, "RT Plan dose reference (ROI number)", target)
    named = [p for p in refs if _names(p.description, target.name)]
    # a reference that names this target but points at another ROI number is that ROI's
    elsewhere = [p for p in named if p.roi_number is not None]
    by_desc = [p for p in named if p.roi_number is None]
    if elsewhere and not by_desc:
        other = elsewhere[0]
        note = _note(
            "rx.reference_conflict",
            f"an RT Plan dose reference is described as {other.description!r} but refers to "
            f"ROI number {other.roi_number}, not this target ({target.roi_number}); not used",
            target.name,
            Severity.WARNING,
        )
        return None, None, [note]
    if by_desc:
        return _single(by_desc, "RT Plan dose reference (description)", target)
    if len(refs) == 1 and refs[0].roi_number is None:
        desc = refs[0].description or ""
        rivals = [o for o in others if o.name != target.name]
        claimed = any(normalise(desc) == normalise(o.name) for o in rivals)
        if rivals and not claimed:
            note = _note(
                "rx.unassigned",
                f"the RT Plan's only target dose reference ({refs[0].target_dose_gy:g} Gy, "
                f"{desc!r}) names no ROI and the plan has several targets; not assumed to be "
                "this target's",
                target.name,
                Severity.WARNING,
            )
            return None, None, [note]
        if not claimed:
            note = _note(
                "rx.assumed",
                f"the RT Plan has one target dose reference ({refs[0].target_dose_gy:g} Gy, "
                f"{desc!r}) that names no ROI; assumed to be this target's prescription",
                target.name,
                Severity.WARNING,
            )
            return refs[0].target_dose_gy, ASSUMED, [note]
    return None, None, []


def _single(
    refs: list, source: str, target: TargetCandidate
) -> tuple[float | None, str | None, list[Finding]]:
    doses = sorted({float(p.target_dose_gy) for p in refs})
    if len(doses) > 1:
        listing = ", ".join(f"{d:g}" for d in doses)
        return (
            None,
            None,
            [
                _note(
                    "rx.ambiguous",
                    f"the RT Plan gives several prescriptions ({listing} Gy); give --rx",
                    target.name,
                    Severity.WARNING,
                )
            ],
        )
    return doses[0], source, []


def _differs(a: float, b: float) -> bool:
    return abs(a - b) > RX_TOL * max(abs(a), abs(b))


def _note(code: str, message: str, subject: str, severity: Severity = Severity.INFO) -> Finding:
    return Finding(code, message, severity, subject=subject)

"""The prescription a ``rtcheck dvh`` metric in % of Rx is relative to, and where it came from.

Order (``docs/dvh.md``): ``--prescription GY`` (wins; the output says so) > for a target, its
own prescription, found as ``rtcheck check`` finds a lesion's (:meth:`DoseSet.plan_for_target`
then :func:`rtcheck.prescriptions.prescription_for`, no ``--rx``) > for any other structure,
the case's prescription when every lesion has one and they are all the same dose. Otherwise
the metric is ``null`` and the reason names the choices.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rtcheck.composite import DoseSet
from rtcheck.errors import Finding, Severity
from rtcheck.lesions import lesion_targets
from rtcheck.model import Roi, StructureSet
from rtcheck.names import TargetCandidate, find_targets
from rtcheck.prescriptions import RX_TOL, Rx, prescription_for

#: ``check``'s advice (``--rx NAME=GY``) as ``dvh`` words it.
_RX_ADVICE = re.compile(r"--rx(?: \S+=GY)?")
_GIVE = "give --prescription GY"


@dataclass(frozen=True)
class RxUse:
    """The prescription used for one structure's % of Rx metrics.

    Attributes
    ----------
    gy
        Total dose (Gy), or None.
    label
        Which prescription, e.g. ``55 Gy (RT Plan dose reference by ROI number, PTVp)``.
    reason
        Why ``gy`` is None.
    findings
        Notes on the choice (an assumed dose reference, an overridden plan prescription...).
    """

    gy: float | None
    label: str | None = None
    reason: str | None = None
    findings: tuple[Finding, ...] = ()


class DvhPrescriptions:
    """Prescriptions of the structures of one case (see the module docstring).

    Parameters
    ----------
    ss
        The structure set.
    doses
        The plan doses (with their RT Plans, when known).
    given
        ``--prescription`` (Gy), or None.
    """

    def __init__(self, ss: StructureSet, doses: DoseSet, given: float | None) -> None:
        self.doses = doses
        self.given = given
        search = find_targets(ss.rois)
        self.targets = {(t.name, t.roi_number): t for t in search.targets}
        _, lesions = lesion_targets(search)
        # as rtcheck check: a lesion is a target of the first kind present that has a contour
        self.lesions = [c for c in lesions if not _empty(ss, c.name)]
        self._placed = {
            c.name: doses.plan_for_target(name=c.name, roi_number=c.roi_number)
            for c in self.lesions
        }
        self._rx: dict[tuple[str, int | None], RxUse] = {}

    def for_roi(self, roi: Roi) -> RxUse:
        """The prescription for ``roi``'s % of Rx metrics (``gy`` None: ``reason`` says why)."""
        target = self.targets.get((roi.name, roi.number))
        if self.given is not None:
            return self._given(target)
        if target is not None:
            return self.of_target(target)
        return self._organ()

    def of_target(self, target: TargetCandidate) -> RxUse:
        """The target's own prescription, as ``rtcheck check`` finds a lesion's."""
        key = (target.name, target.roi_number)
        if key not in self._rx:
            self._rx[key] = self._target(target)
        return self._rx[key]

    def _target(self, target: TargetCandidate) -> RxUse:
        pd, how = self.doses.plan_for_target(name=target.name, roi_number=target.roi_number)
        same_plan = [c for c in self.lesions if self._placed[c.name][0] is pd]
        if all(c.name != target.name for c in same_plan):
            same_plan.append(target)
        rx = prescription_for(target, pd.plan if pd else None, {}, same_plan)
        notes = tuple(_dvh_words(f) for f in rx.findings)
        if rx.gy is None:  # the details are in ``notes``, attached to the structure
            where = f" ({how})" if pd is None else ""
            reason = f"the prescription of target {target.name} is unknown{where}: {_GIVE}"
            return RxUse(None, reason=reason, findings=notes)
        label = f"{rx.gy:g} Gy ({_source_text(rx)}, {target.name})"
        if pd is not None and len(self.doses.plan_doses) > 1:
            notes += (
                Finding(
                    "dvh.rx_of_one_plan",
                    f"{label} is the prescription of plan {pd.label}, but the DVH is of the "
                    f"summed dose of {len(self.doses.plan_doses)} plans (rtcheck check "
                    "evaluates a lesion on its own plan's dose)",
                    Severity.WARNING,
                    subject=target.name,
                ),
            )
        return RxUse(rx.gy, label, findings=notes)

    def _organ(self) -> RxUse:
        if not self.lesions:
            return RxUse(None, reason=f"no target was found: {_GIVE}")
        uses = [(c.name, self.of_target(c)) for c in self.lesions]
        unknown = [name for name, use in uses if use.gy is None]
        if unknown:
            return RxUse(
                None, reason=f"the prescription of {', '.join(unknown)} is unknown: {_GIVE}"
            )
        doses = sorted({float(use.gy) for _, use in uses if use.gy is not None})
        if len(doses) > 1:
            listing = ", ".join(f"{d:g}" for d in doses)
            return RxUse(
                None, reason=f"targets have different prescriptions ({listing} Gy): {_GIVE}"
            )
        whose = "; ".join(
            (use.label or "").removeprefix(f"{doses[0]:g} Gy (").removesuffix(")")
            for _, use in uses
        )
        return RxUse(doses[0], f"{doses[0]:g} Gy (the case's only prescription: {whose})")

    def _given(self, target: TargetCandidate | None) -> RxUse:
        assert self.given is not None
        gy = self.given
        label = f"{gy:g} Gy (--prescription)"
        if target is None:
            return RxUse(gy, label)
        own = self.of_target(target)
        if own.gy is None or abs(own.gy - gy) <= RX_TOL * max(own.gy, gy):
            return RxUse(gy, label)
        note = Finding(
            "rx.overridden",
            f"--prescription {gy:g} Gy used instead of {own.label}",
            Severity.WARNING,
            subject=target.name,
        )
        return RxUse(gy, label, findings=(note,))


def _empty(ss: StructureSet, name: str) -> bool:
    roi = ss.by_name(name)
    return roi is None or roi.is_empty


def _source_text(rx: Rx) -> str:
    """``RT Plan dose reference (ROI number)`` -> ``RT Plan dose reference by ROI number``."""
    source = rx.source or "unknown source"
    head, sep, tail = source.partition(" (")
    if sep and head == "RT Plan dose reference":
        return f"{head} by {tail.removesuffix(')')}"
    return source


def _dvh_words(f: Finding) -> Finding:
    """A prescription finding of ``check`` with ``dvh``'s option (``--prescription GY``)."""
    text = _RX_ADVICE.sub("--prescription GY", f.message)
    return f if text == f.message else Finding(f.code, text, f.severity, f.source, f.subject)

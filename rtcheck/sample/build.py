"""Write the sample cases: CT, RT Structure Set, RT Plans, RT Doses and ``expected.json``.

Deterministic: UIDs come from seeds (case name + role), dates are fixed, contours and doses
are pure functions of the case definitions, so regenerating gives byte-identical files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rtcheck.io.write import (
    ct_image_uid,
    quantise_dose,
    uid_from,
    write_ct_series,
    write_dose,
    write_plan,
    write_structure_set,
)
from rtcheck.model import Beam, Contour, DoseGrid, Plan, Prescription, Roi, StructureSet
from rtcheck.sample import expected as exp
from rtcheck.sample.anatomy import PLANES, hu_volume
from rtcheck.sample.cases import (
    CASE_NAMES,
    CT_GRID,
    CaseSpec,
    PlanSpec,
    RoiSpec,
    case_specs,
    lesion_gantry,
    roi_table,
)
from rtcheck.sample.dose import beam_weights, grid_points, plan_dose
from rtcheck.sample.shapes import Group, Solid, plane_contours

PlaneList = list[tuple[float, list[np.ndarray]]]


@dataclass
class _Cache:
    """Contours per solid and truth results per design, shared between cases of one run."""

    contours: dict[Solid, PlaneList] = field(default_factory=dict)
    truth: dict[tuple, dict] = field(default_factory=dict)

    def planes(self, solid: Solid) -> PlaneList:
        if isinstance(solid, Group):
            per_part = [self.planes(p) for p in solid.parts]
            merged: dict[float, list[np.ndarray]] = {}
            for planes in per_part:
                for z, polys in planes:
                    merged.setdefault(z, []).extend(polys)
            return sorted(merged.items())
        if solid not in self.contours:
            found = [(z, plane_contours(solid, z)) for z in PLANES]
            self.contours[solid] = [(z, p) for z, p in found if p]
        return self.contours[solid]


def generate(outdir: str | Path, cases: tuple[str, ...] | None = None) -> list[Path]:
    """Write the named cases (default: all, plus ``README.md``) under ``outdir``."""
    specs = case_specs()
    names = cases or CASE_NAMES
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(f"unknown sample case(s) {unknown}; choose from {list(CASE_NAMES)}")
    cache = _Cache()
    out = Path(outdir)
    written: list[Path] = []
    results = {}
    for name in names:
        files, result = write_case(specs[name], out / name, cache)
        written += files
        results[name] = result
    if set(names) == set(CASE_NAMES):
        from rtcheck.sample.readme import render_readme

        readme = out / "README.md"
        readme.write_text(render_readme(specs, results), encoding="utf-8")
        written.append(readme)
    return written


def write_case(case: CaseSpec, folder: Path, cache: _Cache) -> tuple[list[Path], dict]:
    """Write one case folder; return the files and the expected results."""
    folder.mkdir(parents=True, exist_ok=True)
    study, frame = uid_from(case.name, "study"), uid_from(case.name, "frame")
    ids = {"patient": case.patient, "study_uid": study}
    rois = roi_table(case)
    files: list[Path] = []
    series = uid_from(case.name, "ct-series")
    if case.with_ct:
        x, y, z = grid_points(CT_GRID)
        ct = write_ct_series(
            _ct_numbers(case, x, y, z), CT_GRID, folder / "CT", frame_uid=frame,
            series_uid=series, seed=case.name, description="synthetic CT", **ids,
        )  # fmt: skip
        images = {z_: uid for _, uid, z_ in ct}
        files += [Path(p) for p, _, _ in ct]
    else:  # the structure set still references the (not exported) planning CT
        images = {z_: ct_image_uid(case.name, series, k) for k, z_ in enumerate(PLANES)}
    ss = StructureSet(tuple(_roi(r, cache) for r in rois), uid_from(case.name, "rtstruct"))
    write_structure_set(
        ss, folder / "RS.dcm", frame_uid=frame, referenced_series_uid=series,
        image_sop_uids=images, label="OLIGO", description="synthetic contours", **ids,
    )  # fmt: skip
    files.append(folder / "RS.dcm")
    plan_doses = []
    for spec in case.plans:
        paths, plan_dose_ = _write_plan(case, spec, rois, ss.sop_instance_uid, frame, folder)
        files += paths
        plan_doses.append(plan_dose_)
    result = _expected(case, rois, plan_doses, cache)
    path = folder / "expected.json"
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    files.append(path)
    return files, result


def _ct_numbers(case: CaseSpec, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    hu = hu_volume(x, y, z)
    for lesion in case.lesions:
        gtv = lesion.ptv.solid(lesion.gtv_margin)
        hu = np.where(gtv.inside(x, y, z), 150.0 if lesion.key == "t8" else 25.0, hu)
    return hu


def _roi(r: RoiSpec, cache: _Cache) -> Roi:
    contours = tuple(Contour(p) for _, polys in cache.planes(r.solid) for p in polys)
    return Roi(r.number, r.name, r.kind, r.color, contours)


def _write_plan(
    case: CaseSpec, spec: PlanSpec, rois: tuple[RoiSpec, ...], ss_uid: str | None,
    frame: str, folder: Path,
) -> tuple[list[Path], exp.PlanDose]:  # fmt: skip
    ptv_roi = {r.lesion.key: r for r in rois if r.kind == "PTV" and r.lesion is not None}
    plan_uid = uid_from(case.name, "rtplan", spec.key)
    beams, angles = _beams(spec)
    prescriptions = tuple(
        Prescription(les.rx_gy, ptv_roi[les.key].name, ptv_roi[les.key].number, "TARGET", n)
        for n, les in enumerate(spec.lesions, start=1)
    )
    plan = Plan(
        spec.label, plan_uid, spec.name, spec.fractions, prescriptions, beams, ss_uid, frame
    )
    ids = {"patient": case.patient, "study_uid": uid_from(case.name, "study")}
    write_plan(plan, folder / f"RP.{spec.key}.dcm", gantry_angles=angles, **ids)
    files = [folder / f"RP.{spec.key}.dcm"]
    x, y, z = grid_points(spec.grid)
    total = plan_dose(spec.lesions, x, y, z)
    if spec.delivery == "BEAM":
        iso = spec.lesions[0].ptv.centre
        parts = list(beam_weights(x, y, z, iso, spec.beam_gantry) * total[None])
        tags = [(f"RD.{spec.key}.B{b.number}.dcm", "BEAM", (b.number,)) for b in beams]
    else:
        parts, tags = [total], [(f"RD.{spec.key}.dcm", "PLAN", ())]
    stored = []
    for values, (name, summation, numbers) in zip(parts, tags, strict=True):
        grid = DoseGrid(values, spec.grid, summation_type=summation, referenced_plan_uid=plan_uid)
        write_dose(
            grid, folder / name, frame_uid=frame, bits=spec.bits, beam_numbers=numbers,
            sop_uid=uid_from(case.name, "rtdose", name), description=f"{spec.label} {summation}",
            **ids,
        )  # fmt: skip
        q, scale = quantise_dose(values, spec.bits)
        stored.append(q.astype(float) * scale)
        files.append(folder / name)
    return files, exp.PlanDose(spec.key, spec.fractions, spec.lesions, spec.grid, tuple(stored))


def _beams(spec: PlanSpec) -> tuple[tuple[Beam, ...], dict[int, float]]:
    beams, angles = [], {}
    for les in spec.lesions:
        gantries = spec.beam_gantry if spec.delivery == "BEAM" else lesion_gantry(les)
        for g in gantries:
            number = len(beams) + 1
            mu = round(les.rx_gy / spec.fractions * 100.0 * 1.2 / len(gantries), 1)
            name = f"{les.key.upper()} G{round(g):03d}"
            beams.append(Beam(number, name, "STATIC", "PHOTON", mu, les.ptv.centre))
            angles[number] = g
    return tuple(beams), angles


def _expected(
    case: CaseSpec, rois: tuple[RoiSpec, ...], plans: list[exp.PlanDose], cache: _Cache
) -> dict:
    key = (tuple(p.key for p in case.plans), tuple(les.key for les in case.lesions), case.protocol)
    if key not in cache.truth:
        cache.truth[key] = _truth(case, rois, plans, cache)
    truth = cache.truth[key]
    names = {r.tg263: r.name for r in rois if r.lesion is None}
    info = {
        r.lesion.key: (
            r.name,
            next(g.name for g in rois if g.kind == "GTV" and g.lesion == r.lesion),
            r.number,
        )
        for r in rois
        if r.kind == "PTV" and r.lesion is not None
    }
    out: dict = {
        "case": case.name,
        "description": case.description,
        "patient_id": case.patient.id,
        "naming": "clinic-style" if case.clinic_names else "TG-263",
        "structure_names": names,
    }
    if case.protocol:
        out["protocol"] = case.protocol
        out["fractions"] = case.plans[0].fractions
        out["expected_verdict"] = "fail"
        out["design"] = case.design
    out["plans"] = [_plan_info(case, spec) for spec in case.plans]
    out["lesions"] = [dict(row, **_names(info[row["key"]])) for row in truth["lesions"]]
    if "constraints" in truth:
        out["constraints"] = [
            dict(row, roi=names[row["structure"]]) for row in truth["constraints"]
        ]
        out["not_in_sample"] = (
            "every other constraint of the protocol names a structure the sample does not "
            "contain: expected not_evaluated (structure missing)"
        )
    if "composite" in truth:
        out["composite_eqd2"] = [
            dict(row, roi=names[row["structure"]]) for row in truth["composite"]
        ]
    if "hytec" in truth:
        hytec = [dict(row, roi=names.get(row["structure"])) for row in truth["hytec"]]
        out["protocols"] = _multi_designs(case, hytec)
    out["structure_volumes_cc"] = {names.get(k, k): v for k, v in truth["volumes"].items()}
    out["method"] = _METHOD
    return out


def _multi_designs(case: CaseSpec, hytec: list[dict]) -> dict:
    """Designed outcomes of ``rtcheck check`` on a multi-plan case with mixed fractionation."""
    counts = sorted({p.fractions for p in case.plans})
    mixed = "plans have different numbers of fractions (" + ", ".join(map(str, counts)) + ")"
    statuses = {row["expected"] for row in hytec}
    verdict = "fail" if "fail" in statuses else "incomplete"
    return {
        "hytec-cord-eqd2": {
            "expected_verdict": verdict,
            "dose": "EQD2 sum: each plan converted voxel-wise with its own dose per fraction",
            "constraints": hytec,
        },
        "tg101": {
            "expected_verdict": "incomplete",
            "organ_rows": "not_evaluated",
            "organ_reason": mixed,
            "tables_missing": [n for n in counts if n not in (1, 3, 5)],
            "design": "TG-101 limits are physical doses for 1, 3 or 5 fractions: with mixed "
            "fractionation none of them applies to the sum (no silent conversion); each "
            "lesion is still evaluated on its own plan",
        },
    }


def _names(info: tuple[str, str, int]) -> dict:
    return {"ptv": info[0], "gtv": info[1], "ptv_roi_number": info[2]}


def _plan_info(case: CaseSpec, spec: PlanSpec) -> dict:
    g = spec.grid
    files = (
        [f"RD.{spec.key}.B{n}.dcm" for n in range(1, len(spec.beam_gantry) + 1)]
        if spec.delivery == "BEAM"
        else [f"RD.{spec.key}.dcm"]
    )
    return {
        "key": spec.key,
        "label": spec.label,
        "plan_file": f"RP.{spec.key}.dcm",
        "sop_instance_uid": uid_from(case.name, "rtplan", spec.key),
        "fractions": spec.fractions,
        "prescriptions_gy": {les.key: les.rx_gy for les in spec.lesions},
        "dose_files": files,
        "dose_summation": spec.delivery,
        "dose_bits": spec.bits,
        "grid": {
            "origin_mm": list(g.origin),
            "spacing_mm": list(g.spacing),
            "shape_kji": list(g.shape),
            "slice_dir": list(g.slice_dir),
        },
    }


def _truth(
    case: CaseSpec, rois: tuple[RoiSpec, ...], plans: list[exp.PlanDose], cache: _Cache
) -> dict:
    organs = {r.tg263: cache.planes(r.solid) for r in rois if r.lesion is None}
    ptvs = {r.lesion.key: cache.planes(r.solid) for r in rois if r.kind == "PTV" and r.lesion}
    wanted = {s for s, *_ in exp.TG101_5FX} | {s for s, *_ in exp.COMPOSITE_EQD2}
    samples = exp.structure_samples({k: v for k, v in organs.items() if k in wanted})
    ptv_samples = exp.structure_samples(ptvs)
    plan_of = {les.key: p for p in plans for les in p.lesions}
    roi_info = {k: ("", "", 0) for k in ptvs}
    truth: dict = {
        "lesions": exp.lesion_rows(case.lesions, ptv_samples, plan_of, roi_info),
        "volumes": {k: round(s.volume_cc, 2) for k, (s, _) in samples.items()},
    }
    names = {k: k for k in organs}
    if case.protocol and len(plans) == 1:
        truth["constraints"] = exp.constraint_rows(names, samples, plans[0])
    if len(plans) > 1:
        truth["composite"] = exp.composite_rows(plans, names, samples)
        truth["hytec"] = exp.composite_constraint_rows(plans, names, samples)
    return truth


_METHOD = (
    "value: metric of the analytic dose formula over the contour-defined volume (polygons "
    "extruded half-way to neighbouring planes), by dense weighted sampling (1 mm lattice x 6 "
    "sub-levels per 3 mm slab; 0.5 mm for cord, oesophagus, airways, plexus; 2 mm x 3 for "
    "lungs, liver, skin, chest wall; weights scaled to the exact polygon areas) with local "
    "refinement of maxima (stencil search and the densified polygon edges). value_grid: the "
    "same metric of this generator's own trilinear interpolation of the stored (quantised) "
    "dose grid. A plan contributes 0 Gy outside its grid's voxel-centre box. tolerance: "
    "expected |rtcheck - value|. Nothing here uses rtcheck's DVH engine."
)

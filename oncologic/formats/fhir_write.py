"""The other direction, for tests and examples: a native encounter as a FHIR R4 Bundle that
:func:`oncologic.formats.fhir.bundle_to_document` maps back to the same encounter."""

from __future__ import annotations

import json
from typing import Any

from .fhir_common import CPT, EXT, HCPCS_SYSTEMS, ICD10CM, NCT_SYSTEMS, NDC, POS_SYSTEM, ROUTE_SYSTEM, SOPT_SYSTEMS

PATIENT = {"reference": "Patient/p1"}
SOPT_OF = {"medicare": "121", "medicare_advantage": "11", "medicaid": "2", "commercial": "5"}
ADMIN_EXTENSIONS = ("purpose", "primary_reason", "separate_access_reason", "pump", "research", "lesions")


class _Entries(list):
    def add(self, res: dict) -> str:
        ref = f"{res['resourceType']}/{res['id']}"
        self.append({"fullUrl": f"urn:oncologic:{ref}", "resource": res})
        return ref


def encounter_to_bundle(enc: Any) -> dict:
    """A FHIR R4 Bundle describing a native encounter (an :class:`~oncologic.model.Encounter`);
    :func:`~oncologic.formats.fhir.bundle_to_document` maps it back to the same encounter."""
    from ..model import Encounter

    assert isinstance(enc, Encounter)
    out = _Entries()
    _encounter(out, enc)
    if enc.payer:
        _coverage(out, enc.payer)
    for adm in enc.administrations:
        _administration(out, enc, adm)
    for i, svc in enumerate(enc.services, start=1):
        proc: dict[str, Any] = {"resourceType": "Procedure", "id": f"svc{i}", "status": "completed", "subject": PATIENT,
                                "code": {"coding": [{"system": CPT, "code": svc.code}]}}
        if svc.separately_identifiable:
            proc["extension"] = [{"url": EXT + "separately_identifiable", "valueBoolean": True}]
        out.add(proc)
    if enc.clinical_trial:
        _trial(out, enc.clinical_trial)
    for i, au in enumerate(enc.authorizations, start=1):
        _authorization(out, i, au)
    if enc.treatment_plan:
        _plan(out, enc.treatment_plan)
    for i, ev in enumerate(enc.evidence, start=1):
        obs: dict[str, Any] = {"resourceType": "Observation", "id": f"ev{i}", "status": "final",
                               "category": [{"coding": [{"code": ev.kind}]}], "code": {"text": ev.name or ev.kind}}
        if ev.value is not None:
            obs["valueString"] = ev.value
        if ev.unit is not None and ev.value is not None:
            try:
                obs["valueQuantity"] = {"value": float(ev.value), "unit": ev.unit}
                del obs["valueString"]
            except ValueError:
                pass
        if ev.date is not None:
            obs["effectiveDateTime"] = ev.date.isoformat() + (f"T{ev.time}:00" if ev.time else "")
        if not ev.name:
            obs["extension"] = [{"url": EXT + "kind", "valueString": ev.kind}]
            del obs["code"]["text"]
        out.add(obs)
    return {"resourceType": "Bundle", "type": "collection", "entry": list(out)}


def _encounter(out: _Entries, enc: Any) -> None:
    diag_refs = [out.add({"resourceType": "Condition", "id": f"dx{i}", "subject": PATIENT,
                          "code": {"coding": [{"system": ICD10CM, "code": code}]}}) for i, code in enumerate(enc.diagnoses, start=1)]
    out.add(_patient(enc.patient))
    participants = []
    for role, prov in (("ATND", enc.attending_provider), ("PPRF", enc.rendering_provider)):
        if prov is not None:
            ref = out.add({"resourceType": "Practitioner", "id": f"pr-{role.lower()}",
                           "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": prov.npi}],
                           "name": [_human_name(prov.name)]})
            participants.append({"type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                                       "code": role}]}], "individual": {"reference": ref}})
    out.add({
        "resourceType": "Encounter", "id": enc.id, "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"coding": [{"system": POS_SYSTEM, "code": "11" if enc.setting == "office" else "22"}]}],
        "subject": PATIENT,
        **({"participant": participants} if participants else {}),
        "period": {"start": enc.date_of_service.isoformat()},
        "diagnosis": [{"condition": {"reference": r}, "rank": i} for i, r in enumerate(diag_refs, start=1)],
    })


def _human_name(name: Any) -> dict:
    given = [g for g in (name.first, *(name.middle.split() if name.middle else [])) if g]
    return {"use": "official", "family": name.last, **({"given": given} if given else {}),
            **({"suffix": [name.suffix]} if name.suffix else {})}


def _patient(pt: Any) -> dict:
    """The US Core Patient shape of the contract's ``patient`` block (a bare Patient without one)."""
    res: dict[str, Any] = {"resourceType": "Patient", "id": "p1"}
    if pt is None:
        return res
    if pt.member_id:
        res["identifier"] = [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]},
                              "value": pt.member_id}]
    res["name"] = [_human_name(pt.name)]
    res["gender"] = {"F": "female", "M": "male"}.get(pt.sex, "unknown")
    res["birthDate"] = pt.birth_date.isoformat()
    if pt.address is not None:
        a = pt.address
        zip_ = a.postal_code if len(a.postal_code) == 5 else f"{a.postal_code[:5]}-{a.postal_code[5:]}"
        res["address"] = [{"use": "home", "line": list(a.lines), "city": a.city, "state": a.state, "postalCode": zip_}]
    return res


def _coverage(out: _Entries, payer: Any) -> None:
    sopt = SOPT_OF.get(payer.type or "")
    cov: dict[str, Any] = {"resourceType": "Coverage", "id": "cov1", "status": "active", "beneficiary": PATIENT,
                           **({"type": {"coding": [{"system": SOPT_SYSTEMS[0], "code": sopt}]}} if sopt else {}),
                           "payor": [{"display": payer.name or "payer"}]}
    if payer.member_id:
        cov["subscriberId"] = payer.member_id
    period = {k: v.isoformat() for k, v in (("start", payer.coverage_start), ("end", payer.coverage_end)) if v}
    if period:
        cov["period"] = period
    out.add(cov)


def _concept(d: Any) -> dict:
    coding = []
    if d.ndc:
        coding.append({"system": NDC, "code": d.ndc})
    if d.hcpcs:
        coding.append({"system": HCPCS_SYSTEMS[0], "code": d.hcpcs})
    if d.code is not None:
        coding.append({"system": d.code.system, "code": d.code.code})
    c: dict[str, Any] = {"coding": coding}
    if d.name:
        c["text"] = d.name
    return c


def _drug_ext(d: Any) -> list[dict]:
    out = []
    if d.container is not None:
        out.append({"url": EXT + "container", "valueString": d.container.model_dump_json(exclude_none=True)})
    for name in ("supplied_by", "kind", "manufacturer"):
        v = getattr(d, name)
        if v is not None and not (name == "supplied_by" and v == "practice"):
            out.append({"url": EXT + name, "valueString": v})
    if d.discarded is not None:
        out.append({"url": EXT + "discarded", "valueString": d.discarded.model_dump_json()})
    if d.acquired_340b is not None:
        out.append({"url": EXT + "acquired_340b", "valueBoolean": d.acquired_340b})
    return out


def _qty(a: Any) -> dict:
    unit = {"mcg": "ug", "units": "[iU]"}.get(a.unit, a.unit)
    return {"value": float(a.value) if a.value != a.value.to_integral_value() else int(a.value),
            "system": "http://unitsofmeasure.org", "code": unit}


def _administration(out: _Entries, enc: Any, adm: Any) -> None:
    from ..model import absolute_time

    def iso(value: str) -> str:
        return absolute_time(enc.date_of_service, value).isoformat(timespec="minutes")

    ma: dict[str, Any] = {"resourceType": "MedicationAdministration", "id": adm.id,
                          "status": "stopped" if adm.discontinued else "completed", "subject": PATIENT}
    if adm.discontinued:
        ma["statusReason"] = [{"text": adm.discontinued}]
    if adm.route in ("iv_infusion", "intra_arterial_infusion") or adm.stop is not None:
        ma["effectivePeriod"] = {"start": iso(adm.start), **({"end": iso(adm.stop)} if adm.stop else {})}
    else:
        ma["effectiveDateTime"] = iso(adm.start)
    dosage: dict[str, Any] = {"route": {"coding": [{"system": ROUTE_SYSTEM, "code": adm.route}]}}
    if adm.access != "main":
        dosage["site"] = {"text": adm.access}
    ext = []
    for name in ADMIN_EXTENSIONS:
        value = getattr(adm, name)
        if value not in (None, False):
            key = {bool: "valueBoolean", int: "valueInteger"}.get(type(value), "valueString")
            ext.append({"url": EXT + name, key: value})
    if ext:
        ma["extension"] = ext
    if len(adm.drugs) == 1:
        d = adm.drugs[0]
        med = {"resourceType": "Medication", "id": f"med-{adm.id}", "code": _concept(d)}
        if _drug_ext(d):
            med["extension"] = _drug_ext(d)
        ma["medicationReference"] = {"reference": out.add(med)}
        if d.dose is not None:
            dosage["dose"] = _qty(d.dose)
    elif adm.drugs:
        ingredients = []
        for d in adm.drugs:
            g: dict[str, Any] = {"itemCodeableConcept": _concept(d)}
            if d.dose is not None:
                g["strength"] = {"numerator": _qty(d.dose), "denominator": {"value": 1, "unit": "bag"}}
            if _drug_ext(d):
                g["extension"] = _drug_ext(d)
            ingredients.append(g)
        med = {"resourceType": "Medication", "id": f"med-{adm.id}", "code": {"text": "premixed bag"}, "ingredient": ingredients}
        ma["medicationReference"] = {"reference": out.add(med)}
    ma["dosage"] = dosage
    out.add(ma)


def _trial(out: _Entries, trial: Any) -> None:
    study: dict[str, Any] = {"resourceType": "ResearchStudy", "id": "study1", "status": "active"}
    if trial.nct:
        study["identifier"] = [{"system": NCT_SYSTEMS[0], "value": trial.nct}]
    sext = [{"url": EXT + "qualifying", "valueBoolean": trial.qualifying}]
    if trial.billing_grid:
        sext.append({"url": EXT + "billing_grid", "valueString": json.dumps([g.model_dump() for g in trial.billing_grid])})
    study["extension"] = sext
    out.add({"resourceType": "ResearchSubject", "id": "subj1", "status": "on-study",
             "study": {"reference": out.add(study)}, "individual": PATIENT})


def _authorization(out: _Entries, i: int, au: Any) -> None:
    cr: dict[str, Any] = {"resourceType": "ClaimResponse", "id": f"pa{i}", "status": "active", "use": "preauthorization",
                          "outcome": "complete", "preAuthRef": au.number}
    if au.start or au.end:
        cr["preAuthPeriod"] = {k: v.isoformat() for k, v in (("start", au.start), ("end", au.end)) if v}
    items = []
    for j, code in enumerate(au.codes):
        it: dict[str, Any] = {"productOrService": {"coding": [{"system": HCPCS_SYSTEMS[0], "code": code}]}}
        if au.units is not None and j == 0:
            it["quantity"] = {"value": au.units}
        items.append(it)
    if items:
        cr["addItem"] = items
    if au.units_used is not None:
        cr["extension"] = [{"url": EXT + "units_used", "valueInteger": au.units_used}]
    out.add(cr)


def _plan(out: _Entries, tp: Any) -> None:
    cp: dict[str, Any] = {"resourceType": "CarePlan", "id": tp.id or "plan1", "status": "active", "intent": "plan", "subject": PATIENT}
    if tp.regimen:
        cp["title"] = tp.regimen
    if tp.drugs:
        cp["activity"] = [{"detail": {"status": "scheduled", "productCodeableConcept": {"coding": [{"system": HCPCS_SYSTEMS[0], "code": c}]}}}
                          for c in tp.drugs]
    refs = [{"reference": out.add({"resourceType": "Condition", "id": f"plandx{j}", "subject": PATIENT,
                                   "code": {"coding": [{"system": ICD10CM, "code": code}]}})} for j, code in enumerate(tp.diagnoses, start=1)]
    if refs:
        cp["addresses"] = refs
    pext = []
    if tp.cycle is not None:
        pext.append({"url": EXT + "cycle", "valueInteger": tp.cycle})
    if tp.planned_cycles is not None:
        pext.append({"url": EXT + "planned_cycles", "valueInteger": tp.planned_cycles})
    if tp.modifications:
        pext.append({"url": EXT + "modifications", "valueString": json.dumps([m.model_dump(mode="json") for m in tp.modifications])})
    if pext:
        cp["extension"] = pext
    out.add(cp)

"""The engine's claim as a FHIR R4 (4.0.1) ``Claim`` resource (JSON).

A pure rendering of :class:`~oncologic.model.Claim`: one ``item`` per claim line (code,
modifiers, units, date, diagnosis sequence, revenue code on institutional claims, the NDC and
its quantity as an item ``detail``, the line's note), the claim's diagnoses, and the condition
codes and trial number from the claim data as ``supportingInfo``. The reason the engine gives
for each line travels in an item extension (``.../StructureDefinition/why``), so a reader of the
FHIR claim keeps the "why". The required references a claim needs (patient, provider, coverage)
are contained resources built from the encounter and the same envelope config as the 837.
Output is deterministic: ``created`` is the config's ``created`` or the date of service.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Optional

from ..model import Claim, Encounter
from .x12 import X12Config, claim_diagnoses, condition_codes, revenue_map, trial_number

EXT = "https://oncologic.dev/fhir/StructureDefinition/"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
CPT = "http://www.ama-assn.org/go/cpt"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
NDC = "http://hl7.org/fhir/sid/ndc"
REVENUE = "https://www.nubc.org/CodeSystem/RevenueCodes"
INFO_CATEGORY = "http://terminology.hl7.org/CodeSystem/claiminformationcategory"
CONDITION_CODES = "https://www.nubc.org/CodeSystem/ConditionCodes"
NDC_UNITS = {"UN": "{unit}", "ML": "mL", "GR": "g", "ME": "mg", "F2": "[iU]"}


def _code_system(code: str) -> str:
    return CPT if code[:1].isdigit() else HCPCS


def _money(value: Decimal) -> dict:
    return {"value": float(value.quantize(Decimal("0.01"))), "currency": "USD"}


def claim_resource(claim: Claim, enc: Encounter, cfg: Optional[X12Config] = None) -> dict:
    cfg = cfg or X12Config()
    institutional = claim.setting == "facility"
    dxs = claim_diagnoses(claim, enc)
    revenue = {**revenue_map(claim), **cfg.revenue_codes}
    created = (cfg.created if cfg.created and cfg.created != "now" else enc.date_of_service.isoformat())[:10]
    patient: dict[str, Any] = {"resourceType": "Patient", "id": "patient",
                               "name": [{"family": cfg.subscriber_last, "given": [cfg.subscriber_first]}]}
    pt = getattr(enc, "patient", None)
    if pt is not None:  # the encounter's demographics (US Core Patient shape)
        patient["name"] = [{"family": pt.name.last, "given": [g for g in (pt.name.first, pt.name.middle) if g]}]
        patient["birthDate"] = pt.birth_date.isoformat()
        patient["gender"] = {"F": "female", "M": "male"}.get(pt.sex, "unknown")
        if pt.address is not None:
            patient["address"] = [{"line": list(pt.address.lines), "city": pt.address.city, "state": pt.address.state,
                                   "postalCode": pt.address.postal_code}]
    provider = {"resourceType": "Organization", "id": "provider", "name": cfg.billing_name,
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": cfg.billing_npi}]}
    payer_name = cfg.payer_name or (enc.payer.name if enc.payer and enc.payer.name else "payer")
    coverage: dict[str, Any] = {"resourceType": "Coverage", "id": "coverage", "status": "active",
                                "beneficiary": {"reference": "#patient"}, "payor": [{"display": payer_name}]}
    if enc.payer and enc.payer.member_id:
        coverage["subscriberId"] = enc.payer.member_id
    items = []
    total = Decimal(0)
    for ln in claim.lines:
        own = getattr(ln, "charge", None)  # the line's charge-master charge, else the config's per-unit amount
        charge = Decimal(str(own)) if own is not None else cfg.charges.get(ln.code, Decimal(0)) * ln.units
        total += charge
        item: dict[str, Any] = {
            "sequence": ln.line,
            "productOrService": {"coding": [{"system": _code_system(ln.code), "code": ln.code}]},
            "servicedDate": ln.date.isoformat(),
            "quantity": {"value": ln.units},
            "net": _money(charge),
            "diagnosisSequence": [dxs.index(d) + 1 for d in ln.diagnoses if d in dxs][:4] or [1],
            "extension": [{"url": EXT + "why", "extension": [
                {"url": "rule", "valueString": ln.why.rule},
                {"url": "text", "valueString": ln.why.text},
                *[{"url": "from", "valueString": r} for r in ln.why.from_],
            ]}],
        }
        if ln.modifiers:
            item["modifier"] = [{"coding": [{"system": HCPCS, "code": m}]} for m in ln.modifiers]
        if institutional and ln.code in revenue:
            item["revenue"] = {"coding": [{"system": REVENUE, "code": revenue[ln.code]}]}
        if ln.ndc:
            # one detail per NDC: the line's own, then the others of a line that draws on several
            pairs = [(it.ndc, it.quantity) for it in ln.ndc_items] if ln.ndc_items else [(ln.ndc, ln.ndc_quantity)]
            item["detail"] = []
            for seq, (ndc, qty) in enumerate(pairs, start=1):
                detail: dict[str, Any] = {"sequence": seq, "productOrService": {"coding": [{"system": NDC, "code": ndc}]}}
                if qty is not None:
                    detail["quantity"] = {"value": qty.value, "unit": qty.unit,
                                          "system": "http://unitsofmeasure.org", "code": NDC_UNITS[qty.unit]}
                item["detail"].append(detail)
        if ln.note:
            item["extension"].append({"url": EXT + "note", "valueString": ln.note})
        if ln.asp_limit is not None:
            item["extension"].append({"url": EXT + "asp-limit", "valueMoney": {"value": float(ln.asp_limit.total), "currency": "USD"}})
        items.append(item)
    info = []
    for cc in condition_codes(claim):
        info.append({"sequence": len(info) + 1, "category": {"coding": [{"system": INFO_CATEGORY, "code": "info"}]},
                     "code": {"coding": [{"system": CONDITION_CODES, "code": cc}]}})
    nct = trial_number(claim)
    if nct:
        info.append({"sequence": len(info) + 1, "category": {"coding": [{"system": INFO_CATEGORY, "code": "info"}],
                                                             "text": "clinical trial number (REF*P4)"}, "valueString": nct})
    res: dict[str, Any] = {
        "resourceType": "Claim",
        "id": "claim-" + "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in claim.encounter)[:58],
        "contained": [patient, provider, coverage],
        "identifier": [{"system": "urn:oncologic:encounter", "value": claim.encounter}],
        "status": "active",
        "type": {"coding": [{"system": CLAIM_TYPE, "code": "institutional" if institutional else "professional"}]},
        "use": "claim",
        "patient": {"reference": "#patient"},
        "billablePeriod": {"start": enc.date_of_service.isoformat(),
                           "end": max([ln.date for ln in claim.lines], default=enc.date_of_service).isoformat()},
        "created": created,
        "provider": {"reference": "#provider"},
        "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]},
        "diagnosis": [{"sequence": i, "diagnosisCodeableConcept": {"coding": [{"system": ICD10CM, "code": d}]}}
                      for i, d in enumerate(dxs, start=1)],
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "#coverage"}}],
        "item": items,
        "total": _money(total),
    }
    if info:
        res["supportingInfo"] = info
    return res


def claim_resource_json(claim: Claim, enc: Encounter, cfg: Optional[X12Config] = None) -> str:
    return json.dumps(claim_resource(claim, enc, cfg), indent=2, ensure_ascii=False) + "\n"

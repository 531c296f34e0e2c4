"""The JSON shape of the FHIR R4 elements the reader reads, checked before mapping: an element of
the wrong JSON type (a string where a CodeableConcept is expected, a list where a Reference is)
is an error naming its element path, never a traceback."""

from __future__ import annotations

from typing import Any

S, B, I = "string", "boolean", "integer"
N = "number"
CODING = {"system": S, "code": S, "display": S, "version": S, "userSelected": B}
CC = {"coding": [CODING], "text": S}
IDENT = {"system": S, "value": S, "use": S, "type": CC}
REF = {"reference": S, "display": S, "identifier": IDENT, "type": S}
PERIOD = {"start": S, "end": S}
QTY = {"value": N, "unit": S, "code": S, "system": S, "comparator": S}
RATIO = {"numerator": QTY, "denominator": QTY}
EXT = [{"url": S}]
COMMON = {"id": S, "extension": EXT, "identifier": [IDENT], "status": S, "contained": ["resource"]}
DOSAGE = {"route": CC, "site": CC, "dose": QTY, "rateQuantity": QTY, "rateRatio": RATIO, "extension": EXT}
SHAPES: dict[str, dict] = {
    "Encounter": {"class": CODING, "type": [CC], "period": PERIOD, "diagnosis": [{"condition": REF, "rank": I}],
                  "location": [{"location": REF}], "serviceProvider": REF},
    "Condition": {"code": CC, "category": [CC], "clinicalStatus": CC, "verificationStatus": CC, "onsetDateTime": S,
                  "abatementDateTime": S, "encounter": REF},
    "Coverage": {"type": CC, "payor": [REF], "class": [{"value": S, "name": S, "type": CC}], "subscriberId": S, "period": PERIOD,
                 "order": I},
    "MedicationAdministration": {"effectivePeriod": PERIOD, "effectiveDateTime": S, "statusReason": [CC], "medicationReference": REF,
                                 "medicationCodeableConcept": CC, "context": REF, "device": [REF], "dosage": DOSAGE},
    "Medication": {"code": CC, "ingredient": [{"itemCodeableConcept": CC, "itemReference": REF, "isActive": B, "strength": RATIO,
                                               "extension": EXT}]},
    "MedicationRequest": {"medicationReference": REF, "medicationCodeableConcept": CC, "encounter": REF, "statusReason": CC,
                          "authoredOn": S},
    "MedicationStatement": {"medicationReference": REF, "medicationCodeableConcept": CC, "context": REF, "statusReason": [CC],
                            "effectiveDateTime": S, "effectivePeriod": PERIOD},
    "Procedure": {"code": CC, "encounter": REF, "performedDateTime": S, "performedPeriod": PERIOD},
    "ResearchSubject": {"study": REF},
    "ClaimResponse": {"preAuthRef": S, "preAuthPeriod": PERIOD, "addItem": [{"productOrService": CC, "quantity": QTY}], "request": REF},
    "Claim": {"item": [{"productOrService": CC, "quantity": QTY}], "insurance": [{"focal": B, "coverage": REF}]},
    "ExplanationOfBenefit": {"insurance": [{"focal": B, "coverage": REF}]},
    "Observation": {"category": [CC], "code": CC, "valueString": S, "valueQuantity": QTY, "valueCodeableConcept": CC, "encounter": REF},
    "CarePlan": {"title": S, "activity": [{"detail": {"productCodeableConcept": CC}}], "addresses": [REF], "encounter": REF},
    "Device": {"type": CC, "deviceName": [{"name": S}]},
    "Location": {"type": [CC], "name": S},
    "Organization": {"type": [CC], "name": S},
}
JSON_TYPES = {S: str, B: bool, I: int, N: (int, float)}
LIMIT = 20


def _ok(value: Any, kind: str) -> bool:
    if isinstance(value, bool) and kind in (I, N):
        return False
    return isinstance(value, JSON_TYPES[kind])


def _check(value: Any, shape: Any, path: str, out: list[tuple[str, str]]) -> None:
    if len(out) >= LIMIT:
        return
    if shape == "resource":
        check_resource(value, path, out)
    elif isinstance(shape, str):
        if not _ok(value, shape):
            out.append((path, f"a JSON {shape} is expected (got {type(value).__name__})"))
    elif isinstance(shape, list):
        if not isinstance(value, list):
            out.append((path, f"a JSON array is expected (got {type(value).__name__})"))
            return
        for k, item in enumerate(value):
            _check(item, shape[0], f"{path}[{k}]", out)
    elif not isinstance(value, dict):
        out.append((path, f"a JSON object is expected (got {type(value).__name__})"))
    else:
        for key, sub in shape.items():
            if key in value:
                _check(value[key], sub, f"{path}.{key}", out)


def check_resource(res: Any, path: str, out: list[tuple[str, str]]) -> None:
    """Append (element path, problem) for every element of ``res`` read with the wrong JSON type."""
    if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
        out.append((path, "a FHIR resource (a JSON object with a resourceType) is expected"))
        return
    shape = {**COMMON, **SHAPES.get(res["resourceType"], {})}
    _check(res, shape, path, out)

"""FHIR R4 (4.0.1) Bundle in, the encounter of the contract out.

The mapping is written against raw JSON dicts (no FHIR library: ``fhir.resources`` ships R5 and
R4B models, not R4 4.0.1). It turns the resources an EHR export carries into the fields of
``shared/spec/encounter-format.md`` and hands the result to :func:`oncologic.load.validate`, so a
bundle gets the same validation, the same field-path errors and the same claim as the native
file it mirrors. Nothing is dropped silently: every resource, element or code that has no place
in the encounter is reported as a warning naming its place in the bundle.

What maps (see docs/formats.md for the full table)

- ``Encounter``: ``id`` (or the first ``identifier.value``) -> ``id``; ``period.start`` -> the date
  of service; the setting from the CMS place-of-service code in ``Encounter.type`` (11 office ->
  office; 19/22 outpatient hospital -> facility) or, failing that, ``Encounter.class`` AMB ->
  office; ``diagnosis[].condition`` with ``rank`` orders the diagnoses.
- ``Condition``: ICD-10-CM ``code.coding`` -> ``diagnoses`` (in Encounter.diagnosis rank order,
  otherwise bundle order).
- ``Coverage``: ``type`` (PHDSC Source of Payment Typology: 1x Medicare, 12x/14x... see
  :data:`SOPT`) -> ``payer.type``; ``payor[0].display`` -> ``payer.name``; ``subscriberId`` ->
  ``member_id``; ``period`` -> coverage window.
- ``MedicationAdministration``: one per administration. ``id`` -> ``id``; ``effectivePeriod``
  -> an infusion (start, stop; a missing end stays missing), ``effectiveDateTime`` -> a push or
  an injection; ``dosage.route`` (SNOMED CT route codes or the contract's own route names in
  the oncologic code system) -> ``route``; ``dosage.site.text`` -> ``access``; ``dosage.dose`` ->
  the dose (UCUM units); ``status`` ``stopped`` with ``statusReason`` -> ``discontinued``.
- ``Medication`` (referenced or contained): NDC and HCPCS codings -> ``ndc``/``hcpcs``,
  ``code.text`` -> name; a premixed bag lists one ``ingredient`` per substance, each with its own
  codes and its amount per bag in ``strength.numerator``.
- ``Procedure``: a CPT/HCPCS-coded procedure -> ``services``.
- ``ResearchSubject``/``ResearchStudy``: the study's NCT identifier -> ``clinical_trial.nct``.
- ``ClaimResponse`` (a prior-authorization response): ``preAuthRef`` -> ``authorizations``,
  with ``preAuthPeriod``, and the codes and quantities of ``addItem`` (or of the request Claim's
  items when the Claim is in the bundle).
- ``Observation``: -> ``evidence`` (kind = category code, name = code text, value).
- ``Patient``: read for the reference only; demographics are not part of the encounter.

The fields FHIR has no element for (``purpose``, ``primary_reason``, ``separate_access_reason``,
``pump``, ``research``, container, discarded amount, ``supplied_by``, ``kind``, billing grid,
``separately_identifiable``) are read from extensions with the URL
``https://oncologic.dev/fhir/StructureDefinition/<field>`` on the resource that holds them.
"""

from __future__ import annotations

from typing import Any, Optional

from ..load import InputError, Loaded, parse_document, read_text, validate

EXT = "https://oncologic.dev/fhir/StructureDefinition/"
ROUTE_SYSTEM = "https://oncologic.dev/fhir/CodeSystem/route"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
NDC = "http://hl7.org/fhir/sid/ndc"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS_SYSTEMS = ("https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
                 "urn:oid:2.16.840.1.113883.6.285", CPT)
POS_SYSTEM = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
SOPT_SYSTEMS = ("https://nahdo.org/sopt", "urn:oid:2.16.840.1.113883.3.221.5")
NCT_SYSTEMS = ("https://clinicaltrials.gov", "http://clinicaltrials.gov")

# CMS place of service -> setting
POS = {"11": "office", "19": "facility", "22": "facility"}
# PHDSC Source of Payment Typology: longest matching prefix wins
SOPT = {"1": "medicare", "11": "medicare", "12": "medicare_advantage", "2": "medicaid", "5": "commercial", "6": "commercial"}
# SNOMED CT route of administration concepts that map to one contract route by themselves
SNOMED_ROUTES = {
    "34206005": "subcutaneous",
    "78421000": "intramuscular",
    "72607000": "intrathecal",
    "38239002": "intraperitoneal",
}
SNOMED_IV = "47625008"
SNOMED_INTRA_ARTERIAL = "58100008"
# UCUM -> contract dose unit
UCUM = {"mg": "mg", "ug": "mcg", "mcg": "mcg", "g": "g", "mL": "mL", "ml": "mL", "[iU]": "units", "[IU]": "units",
        "U": "units", "units": "units", "mCi": "mCi", "uCi": "uCi"}

MAPPED_TYPES = {"CarePlan", "Encounter", "Condition", "Coverage", "MedicationAdministration", "Medication", "Procedure",
                "ResearchSubject", "ResearchStudy", "ClaimResponse", "Claim", "Observation", "Patient"}


class _Bundle:
    def __init__(self, doc: dict, warnings: list[str]):
        self.warnings = warnings
        self.entries: list[tuple[str, dict]] = []  # (bundle path, resource)
        self.by_ref: dict[str, tuple[str, dict]] = {}
        for i, entry in enumerate(doc.get("entry") or []):
            where = f"Bundle.entry[{i}]"
            res = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(res, dict) or "resourceType" not in res:
                warnings.append(f"{where}: no resource, skipped")
                continue
            self.entries.append((where, res))
            rtype, rid = res["resourceType"], res.get("id")
            if rid:
                self.by_ref[f"{rtype}/{rid}"] = (where, res)
            full = entry.get("fullUrl")
            if isinstance(full, str):
                self.by_ref[full] = (where, res)

    def of(self, rtype: str) -> list[tuple[str, dict]]:
        return [(w, r) for w, r in self.entries if r["resourceType"] == rtype]

    def resolve(self, ref: Any, holder: Optional[dict] = None) -> Optional[tuple[str, dict]]:
        if not isinstance(ref, dict) or not isinstance(ref.get("reference"), str):
            return None
        text = ref["reference"]
        if text.startswith("#") and holder is not None:
            for c in holder.get("contained") or []:
                if c.get("id") == text[1:]:
                    return ("(contained)", c)
            return None
        if text in self.by_ref:
            return self.by_ref[text]
        tail = "/".join(text.rstrip("/").split("/")[-2:])
        return self.by_ref.get(tail)


def _ext(res: dict, name: str) -> Any:
    for e in res.get("extension") or []:
        if isinstance(e, dict) and e.get("url") == EXT + name:
            for key, value in e.items():
                if key.startswith("value"):
                    return value
    return None


def _codings(concept: Any) -> list[dict]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def _code(concept: Any, systems: tuple[str, ...] | str) -> Optional[str]:
    systems = (systems,) if isinstance(systems, str) else systems
    for c in _codings(concept):
        if c.get("system") in systems and c.get("code"):
            return str(c["code"])
    return None


def _date(text: Any) -> Optional[str]:
    return text[:10] if isinstance(text, str) and len(text) >= 10 else None


def _time(text: Any) -> Optional[str]:
    """An ISO dateTime as the contract's local ISO datetime (the written local clock time; the
    offset is dropped, as the contract's times are the clinic's local times)."""
    if not isinstance(text, str):
        return None
    if len(text) <= 10:
        return None
    return text[:16]


def _quantity(q: Any, where: str, warnings: list[str]) -> Optional[dict]:
    if not isinstance(q, dict) or "value" not in q:
        return None
    unit = q.get("code") or q.get("unit")
    mapped = UCUM.get(str(unit)) if unit is not None else None
    if mapped is None:
        warnings.append(f"{where}: unit {unit!r} is not one the contract knows (mg, mcg, g, units, mL, mCi, uCi); dose left out")
        return None
    return {"value": q["value"], "unit": mapped}


def _drug_from_codes(concept: Any, where: str, warnings: list[str]) -> dict:
    drug: dict[str, Any] = {}
    ndc = _code(concept, NDC)
    hcpcs = _code(concept, HCPCS_SYSTEMS)
    if ndc:
        drug["ndc"] = ndc
    if hcpcs:
        drug["hcpcs"] = hcpcs
    name = concept.get("text") if isinstance(concept, dict) else None
    if not name:
        for c in _codings(concept):
            if c.get("display"):
                name = c["display"]
                break
    if name:
        drug["name"] = name
    for c in _codings(concept):
        if c.get("system") not in (NDC, *HCPCS_SYSTEMS):
            warnings.append(f"{where}: coding {c.get('system')}|{c.get('code')} is not used (only NDC and HCPCS/CPT codes are)")
    return drug


def _drug_extensions(drug: dict, res: dict) -> None:
    for name in ("container", "discarded", "supplied_by", "kind", "manufacturer"):
        value = _ext(res, name)
        if value is not None:
            if name in ("container", "discarded") and isinstance(value, str):
                import json

                try:
                    value = json.loads(value)
                except ValueError:
                    pass  # left as text: validation names the field
            drug[name] = value


def _route(dosage: dict, period: bool, where: str, warnings: list[str]) -> Optional[str]:
    route = dosage.get("route")
    own = _code(route, ROUTE_SYSTEM)
    if own:
        return own
    snomed = _code(route, SNOMED)
    if snomed in SNOMED_ROUTES:
        return SNOMED_ROUTES[snomed]
    if snomed == SNOMED_IV:
        return "iv_infusion" if period else "iv_push"
    if snomed == SNOMED_INTRA_ARTERIAL:
        return "intra_arterial_infusion" if period else "intra_arterial_push"
    if route is not None:
        warnings.append(f"{where}.dosage.route: no contract route for {[(c.get('system'), c.get('code')) for c in _codings(route)]}")
    return None


def bundle_to_document(doc: Any) -> tuple[dict, list[str]]:
    """The encounter document (a dict in the contract's field names) and the mapping warnings."""
    warnings: list[str] = []
    if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle":
        raise InputError([("resourceType", "a FHIR R4 Bundle is expected (resourceType: Bundle)")])
    b = _Bundle(doc, warnings)
    for where, res in b.entries:
        if res["resourceType"] not in MAPPED_TYPES:
            warnings.append(f"{where}: {res['resourceType']} is not mapped to the encounter; ignored")

    encs = b.of("Encounter")
    if not encs:
        raise InputError([("Bundle.entry", "no Encounter resource")])
    if len(encs) > 1:
        raise InputError([(encs[1][0], "more than one Encounter in the bundle; give one encounter per bundle")])
    ew, enc = encs[0]
    out: dict[str, Any] = {}
    ident = enc.get("id") or next((i.get("value") for i in enc.get("identifier") or [] if isinstance(i, dict) and i.get("value")), None)
    if ident:
        out["id"] = ident
    start = (enc.get("period") or {}).get("start")
    if _date(start):
        out["date_of_service"] = _date(start)
    setting = _ext(enc, "setting")
    if setting is None:
        for t in enc.get("type") or []:
            pos = _code(t, POS_SYSTEM)
            if pos:
                setting = POS.get(pos)
                if setting is None:
                    warnings.append(f"{ew}.type: place of service {pos} is neither office (11) nor outpatient hospital (19, 22)")
    if setting is None and isinstance(enc.get("class"), dict) and enc["class"].get("code") == "AMB":
        setting = "office"
        warnings.append(f"{ew}.class: no place-of-service code; ambulatory (AMB) read as office")
    if setting:
        out["setting"] = setting
    else:
        raise InputError([(f"{ew}.type", "the setting is unknown: give a CMS place-of-service code (11 office, 19/22 outpatient hospital)")])

    # diagnoses: Encounter.diagnosis rank order, else bundle order of Conditions
    conds = b.of("Condition")
    ranked: list[tuple[int, int, str]] = []
    used: set[int] = set()
    for j, d in enumerate(enc.get("diagnosis") or []):
        hit = b.resolve(d.get("condition"))
        if hit is None:
            warnings.append(f"{ew}.diagnosis[{j}]: condition reference not found in the bundle")
            continue
        used.add(id(hit[1]))
        code = _code(hit[1].get("code"), ICD10CM)
        if code:
            ranked.append((int(d.get("rank") or 99), j, code))
        else:
            warnings.append(f"{hit[0]}: Condition has no ICD-10-CM coding; not a claim diagnosis")
    for _pw, cp in b.of("CarePlan"):  # conditions a plan addresses are the plan's, not the claim's
        for ref in cp.get("addresses") or []:
            hit = b.resolve(ref)
            if hit is not None and id(hit[1]) not in used:
                used.add(id(hit[1]))
    for k, (cw, cres) in enumerate(conds):
        if id(cres) in used:
            continue
        code = _code(cres.get("code"), ICD10CM)
        if code:
            ranked.append((100, 1000 + k, code))
        else:
            warnings.append(f"{cw}: Condition has no ICD-10-CM coding; not a claim diagnosis")
    out["diagnoses"] = [c for _r, _j, c in sorted(ranked)]

    # payer
    covs = b.of("Coverage")
    if covs:
        cw, cov = covs[0]
        if len(covs) > 1:
            warnings.append(f"{covs[1][0]}: only the first Coverage is used (the contract has one payer)")
        payer: dict[str, Any] = {}
        sopt = _code(cov.get("type"), SOPT_SYSTEMS)
        if sopt:
            best = max((p for p in SOPT if sopt.startswith(p)), key=len, default=None)
            if best:
                payer["type"] = SOPT[best]
            else:
                warnings.append(f"{cw}.type: payment typology {sopt} has no contract payer type")
        ptype = _ext(cov, "payer_type")
        if ptype:
            payer["type"] = ptype
        payors = cov.get("payor") or []
        if payors and isinstance(payors[0], dict) and payors[0].get("display"):
            payer["name"] = payors[0]["display"]
        if cov.get("subscriberId"):
            payer["member_id"] = cov["subscriberId"]
        period = cov.get("period") or {}
        if _date(period.get("start")):
            payer["coverage_start"] = _date(period["start"])
        if _date(period.get("end")):
            payer["coverage_end"] = _date(period["end"])
        out["payer"] = payer

    # administrations
    adms = []
    for aw, ma in b.of("MedicationAdministration"):
        adm: dict[str, Any] = {}
        if ma.get("id"):
            adm["id"] = ma["id"]
        dosage = ma.get("dosage") or {}
        period = "effectivePeriod" in ma
        if period:
            adm["start"] = _time(ma["effectivePeriod"].get("start"))
            stop = _time(ma["effectivePeriod"].get("end"))
            if stop:
                adm["stop"] = stop
        elif "effectiveDateTime" in ma:
            adm["start"] = _time(ma["effectiveDateTime"])
        route = _route(dosage, period, aw, warnings)
        if route:
            adm["route"] = route
        site = dosage.get("site")
        if isinstance(site, dict):
            adm["access"] = site.get("text") or next((c.get("code") for c in _codings(site) if c.get("code")), "main")
        if ma.get("status") == "stopped":
            reason = ma.get("statusReason") or []
            adm["discontinued"] = (reason[0].get("text") if reason and isinstance(reason[0], dict) else None) or "stopped"
        for name in ("purpose", "primary_reason", "separate_access_reason", "pump", "research", "lesions"):
            value = _ext(ma, name)
            if value is not None:
                adm[name] = value
        # drugs: the Medication (referenced, contained or a CodeableConcept)
        drugs: list[dict] = []
        med: Optional[tuple[str, dict]] = None
        if "medicationReference" in ma:
            med = b.resolve(ma["medicationReference"], ma)
            if med is None:
                warnings.append(f"{aw}.medicationReference: not found in the bundle")
        if med is not None:
            mw, mres = med
            ingredients = [g for g in mres.get("ingredient") or [] if isinstance(g, dict)]
            if ingredients:
                for k, g in enumerate(ingredients):
                    gw = f"{mw}.ingredient[{k}]"
                    concept = g.get("itemCodeableConcept")
                    if concept is None and "itemReference" in g:
                        hit = b.resolve(g["itemReference"], mres)
                        concept = hit[1].get("code") if hit else None
                    drug = _drug_from_codes(concept, gw, warnings)
                    strength = g.get("strength") or {}
                    amount = _quantity(strength.get("numerator"), f"{gw}.strength", warnings)
                    if amount:
                        drug["dose"] = amount
                    _drug_extensions(drug, g)
                    drugs.append(drug)
            else:
                drug = _drug_from_codes(mres.get("code"), mw, warnings)
                _drug_extensions(drug, mres)
                drugs.append(drug)
        elif "medicationCodeableConcept" in ma:
            drugs.append(_drug_from_codes(ma["medicationCodeableConcept"], aw, warnings))
        if len(drugs) == 1 and "dose" in dosage:
            amount = _quantity(dosage.get("dose"), f"{aw}.dosage.dose", warnings)
            if amount:
                drugs[0]["dose"] = amount
            _drug_extensions(drugs[0], ma)
        elif len(drugs) > 1 and "dose" in dosage:
            warnings.append(f"{aw}.dosage.dose: a bag of {len(drugs)} substances takes each dose from its ingredient strength; the total dose is not used")
        if drugs:
            adm["drugs"] = drugs
        for key in ("rateQuantity", "rateRatio"):
            if key in dosage:
                warnings.append(f"{aw}.dosage.{key}: the rate is not used (times decide the coding)")
        adms.append(adm)
    day = out.get("date_of_service")
    for adm in adms:  # a time on the date of service is written as the contract writes it, "HH:MM"
        for key in ("start", "stop"):
            value = adm.get(key)
            if isinstance(value, str) and day and value.startswith(day + "T"):
                adm[key] = value[11:16]
    out["administrations"] = adms

    # services
    services = []
    for pw, proc in b.of("Procedure"):
        code = _code(proc.get("code"), HCPCS_SYSTEMS)
        if not code:
            warnings.append(f"{pw}: Procedure without a CPT/HCPCS code; not a service")
            continue
        svc: dict[str, Any] = {"code": code}
        sep = _ext(proc, "separately_identifiable")
        if sep is not None:
            svc["separately_identifiable"] = sep
        services.append(svc)
    if services:
        out["services"] = services

    # clinical trial
    subjects = b.of("ResearchSubject")
    if subjects:
        sw, subj = subjects[0]
        trial: dict[str, Any] = {}
        study = b.resolve(subj.get("study"))
        if study is None:
            warnings.append(f"{sw}.study: ResearchStudy not found in the bundle")
        else:
            for ident in study[1].get("identifier") or []:
                value = ident.get("value") if isinstance(ident, dict) else None
                if isinstance(value, str) and (ident.get("system") in NCT_SYSTEMS or value.upper().startswith("NCT")):
                    trial["nct"] = value
                    break
            q = _ext(study[1], "qualifying")
            if q is not None:
                trial["qualifying"] = q
            grid = _ext(study[1], "billing_grid")
            if grid is not None:
                import json

                try:
                    trial["billing_grid"] = json.loads(grid) if isinstance(grid, str) else grid
                except ValueError:
                    warnings.append(f"{study[0]}: billing_grid extension is not JSON; ignored")
        out["clinical_trial"] = trial
    elif b.of("ResearchStudy"):
        warnings.append(f"{b.of('ResearchStudy')[0][0]}: a ResearchStudy without a ResearchSubject for the patient; ignored")

    # prior authorizations
    auths = []
    for rw, cr in b.of("ClaimResponse"):
        number = cr.get("preAuthRef")
        if not number:
            warnings.append(f"{rw}: ClaimResponse without preAuthRef is not a prior authorization; ignored")
            continue
        auth: dict[str, Any] = {"number": number}
        codes: list[str] = []
        units = 0
        has_units = False
        items = [(f"{rw}.addItem[{k}]", it) for k, it in enumerate(cr.get("addItem") or [])]
        if not items:
            req = b.resolve(cr.get("request"))
            if req is not None:
                items = [(f"{req[0]}.item[{k}]", it) for k, it in enumerate(req[1].get("item") or [])]
        for iw, it in items:
            code = _code(it.get("productOrService"), HCPCS_SYSTEMS)
            if code and code not in codes:
                codes.append(code)
            q = it.get("quantity") or {}
            if "value" in q:
                units += int(q["value"])
                has_units = True
        if codes:
            auth["codes"] = codes
        if has_units:
            auth["units"] = units
        period = cr.get("preAuthPeriod") or {}
        if _date(period.get("start")):
            auth["start"] = _date(period["start"])
        if _date(period.get("end")):
            auth["end"] = _date(period["end"])
        used_units = _ext(cr, "units_used")
        if used_units is not None:
            auth["units_used"] = used_units
        auths.append(auth)
    if auths:
        out["authorizations"] = auths

    # treatment plan
    plans = b.of("CarePlan")
    if plans:
        pw, cp = plans[0]
        plan: dict[str, Any] = {}
        if cp.get("id"):
            plan["id"] = cp["id"]
        if cp.get("title"):
            plan["regimen"] = cp["title"]
        drugs_planned = []
        for k, act in enumerate(cp.get("activity") or []):
            code = _code(((act or {}).get("detail") or {}).get("productCodeableConcept"), HCPCS_SYSTEMS)
            if code:
                drugs_planned.append(code)
            else:
                warnings.append(f"{pw}.activity[{k}]: no HCPCS product code; not a planned drug")
        if drugs_planned:
            plan["drugs"] = drugs_planned
        dx = []
        for k, ref in enumerate(cp.get("addresses") or []):
            hit = b.resolve(ref)
            code = _code(hit[1].get("code"), ICD10CM) if hit else None
            if code:
                dx.append(code)
            else:
                warnings.append(f"{pw}.addresses[{k}]: no ICD-10-CM Condition found")
        if dx:
            plan["diagnoses"] = dx
        for name in ("cycle", "planned_cycles", "modifications"):
            value = _ext(cp, name)
            if value is not None:
                if name == "modifications" and isinstance(value, str):
                    import json

                    value = json.loads(value)
                plan[name] = value
        out["treatment_plan"] = plan
        if len(plans) > 1:
            warnings.append(f"{plans[1][0]}: only the first CarePlan is used")

    # evidence
    evidence = []
    for ow, obs in b.of("Observation"):
        kind = next((c.get("code") for cat in obs.get("category") or [] for c in _codings(cat) if c.get("code")), "observation")
        item: dict[str, Any] = {"kind": _ext(obs, "kind") or kind}
        code = obs.get("code") or {}
        name = code.get("text") or next((c.get("display") for c in _codings(code) if c.get("display")), None)
        if name:
            item["name"] = name
        if "valueString" in obs:
            item["value"] = obs["valueString"]
        elif "valueQuantity" in obs:
            q = obs["valueQuantity"]
            item["value"] = f"{q.get('value')}{q.get('unit') or ''}"
        elif "valueCodeableConcept" in obs:
            v = obs["valueCodeableConcept"]
            item["value"] = v.get("text") or next((c.get("display") or c.get("code") for c in _codings(v)), None)
        evidence.append(item)
    if evidence:
        out["evidence"] = evidence
    return out, warnings


def load_bundle(path: str, site: Any = None) -> Loaded:
    """Read a FHIR R4 Bundle (JSON) and validate the encounter it describes (``site``: the site
    configuration, :func:`oncologic.formats.site.load_site`)."""
    text, source = read_text(path)
    doc = parse_document(text, source)
    try:
        data, warnings = bundle_to_document(doc)
    except InputError as exc:
        raise InputError(exc.problems, source) from None
    loaded = validate(data, source, site)
    loaded.warnings = [f"fhir: {w}" for w in warnings] + loaded.warnings
    return loaded


# ---------------------------------------------------------------------------------------------
# the other direction, for tests and examples: a native encounter as a Bundle


def encounter_to_bundle(enc: Any) -> dict:
    """A FHIR R4 Bundle describing a native encounter (an :class:`~oncologic.model.Encounter`);
    :func:`bundle_to_document` maps it back to the same encounter."""
    from ..model import Encounter

    assert isinstance(enc, Encounter)
    entries: list[dict] = []

    def add(res: dict) -> str:
        ref = f"{res['resourceType']}/{res['id']}"
        entries.append({"fullUrl": f"urn:oncologic:{ref}", "resource": res})
        return ref

    pos = "11" if enc.setting == "office" else "22"
    diag_refs = []
    for i, code in enumerate(enc.diagnoses, start=1):
        diag_refs.append(add({"resourceType": "Condition", "id": f"dx{i}", "subject": {"reference": "Patient/p1"},
                              "code": {"coding": [{"system": ICD10CM, "code": code}]}}))
    add({"resourceType": "Patient", "id": "p1"})
    add({
        "resourceType": "Encounter", "id": enc.id, "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"coding": [{"system": POS_SYSTEM, "code": pos}]}],
        "subject": {"reference": "Patient/p1"},
        "period": {"start": enc.date_of_service.isoformat()},
        "diagnosis": [{"condition": {"reference": r}, "rank": i} for i, r in enumerate(diag_refs, start=1)],
    })
    if enc.payer:
        sopt = {"medicare": "1", "medicare_advantage": "12", "medicaid": "2", "commercial": "5"}[enc.payer.type]
        cov: dict[str, Any] = {"resourceType": "Coverage", "id": "cov1", "status": "active",
                               "beneficiary": {"reference": "Patient/p1"},
                               "type": {"coding": [{"system": SOPT_SYSTEMS[0], "code": sopt}]},
                               "payor": [{"display": enc.payer.name or "payer"}]}
        if enc.payer.member_id:
            cov["subscriberId"] = enc.payer.member_id
        period = {}
        if enc.payer.coverage_start:
            period["start"] = enc.payer.coverage_start.isoformat()
        if enc.payer.coverage_end:
            period["end"] = enc.payer.coverage_end.isoformat()
        if period:
            cov["period"] = period
        add(cov)
    from ..model import absolute_time

    def iso(value: str) -> str:
        return absolute_time(enc.date_of_service, value).isoformat(timespec="minutes")

    for adm in enc.administrations:
        ma: dict[str, Any] = {"resourceType": "MedicationAdministration", "id": adm.id,
                              "status": "stopped" if adm.discontinued else "completed",
                              "subject": {"reference": "Patient/p1"}}
        if adm.discontinued:
            ma["statusReason"] = [{"text": adm.discontinued}]
        if adm.route in ("iv_infusion", "intra_arterial_infusion") or (adm.stop is not None):
            ma["effectivePeriod"] = {"start": iso(adm.start), **({"end": iso(adm.stop)} if adm.stop else {})}
        else:
            ma["effectiveDateTime"] = iso(adm.start)
        dosage: dict[str, Any] = {"route": {"coding": [{"system": ROUTE_SYSTEM, "code": adm.route}]}}
        if adm.access != "main":
            dosage["site"] = {"text": adm.access}
        ext = []
        for name in ("purpose", "primary_reason", "separate_access_reason", "pump", "research", "lesions"):
            value = getattr(adm, name)
            if value not in (None, False):
                key = {bool: "valueBoolean", int: "valueInteger"}.get(type(value), "valueString")
                ext.append({"url": EXT + name, key: value})
        if ext:
            ma["extension"] = ext

        def concept(d) -> dict:
            coding = []
            if d.ndc:
                coding.append({"system": NDC, "code": d.ndc})
            if d.hcpcs:
                coding.append({"system": HCPCS_SYSTEMS[0], "code": d.hcpcs})
            c: dict[str, Any] = {"coding": coding}
            if d.name:
                c["text"] = d.name
            return c

        def drug_ext(d) -> list[dict]:
            out = []
            if d.container is not None:
                out.append({"url": EXT + "container", "valueString": d.container.model_dump_json(exclude_none=True)})
            for name in ("supplied_by", "kind", "manufacturer"):
                v = getattr(d, name)
                if v is not None and not (name == "supplied_by" and v == "practice"):
                    out.append({"url": EXT + name, "valueString": v})
            if d.discarded is not None:
                out.append({"url": EXT + "discarded", "valueString": d.discarded.model_dump_json()})
            return out

        def qty(a) -> dict:
            unit = {"mcg": "ug", "units": "[iU]"}.get(a.unit, a.unit)
            return {"value": float(a.value) if a.value != a.value.to_integral_value() else int(a.value),
                    "system": "http://unitsofmeasure.org", "code": unit}

        if len(adm.drugs) == 1:
            d = adm.drugs[0]
            med = {"resourceType": "Medication", "id": f"med-{adm.id}", "code": concept(d)}
            if drug_ext(d):
                med["extension"] = drug_ext(d)
            ma["medicationReference"] = {"reference": add(med)}
            if d.dose is not None:
                dosage["dose"] = qty(d.dose)
        elif adm.drugs:
            ingredients = []
            for d in adm.drugs:
                g: dict[str, Any] = {"itemCodeableConcept": concept(d)}
                if d.dose is not None:
                    g["strength"] = {"numerator": qty(d.dose), "denominator": {"value": 1, "unit": "bag"}}
                if drug_ext(d):
                    g["extension"] = drug_ext(d)
                ingredients.append(g)
            med = {"resourceType": "Medication", "id": f"med-{adm.id}", "code": {"text": "premixed bag"}, "ingredient": ingredients}
            ma["medicationReference"] = {"reference": add(med)}
        ma["dosage"] = dosage
        add(ma)
    for i, svc in enumerate(enc.services, start=1):
        proc: dict[str, Any] = {"resourceType": "Procedure", "id": f"svc{i}", "status": "completed",
                                "subject": {"reference": "Patient/p1"}, "code": {"coding": [{"system": CPT, "code": svc.code}]}}
        if svc.separately_identifiable:
            proc["extension"] = [{"url": EXT + "separately_identifiable", "valueBoolean": True}]
        add(proc)
    if enc.clinical_trial:
        study: dict[str, Any] = {"resourceType": "ResearchStudy", "id": "study1", "status": "active"}
        if enc.clinical_trial.nct:
            study["identifier"] = [{"system": NCT_SYSTEMS[0], "value": enc.clinical_trial.nct}]
        sext = [{"url": EXT + "qualifying", "valueBoolean": enc.clinical_trial.qualifying}]
        if enc.clinical_trial.billing_grid:
            import json

            sext.append({"url": EXT + "billing_grid", "valueString": json.dumps([g.model_dump() for g in enc.clinical_trial.billing_grid])})
        study["extension"] = sext
        add({"resourceType": "ResearchSubject", "id": "subj1", "status": "on-study",
             "study": {"reference": add(study)}, "individual": {"reference": "Patient/p1"}})
    for i, au in enumerate(enc.authorizations, start=1):
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
        add(cr)
    if enc.treatment_plan:
        tp = enc.treatment_plan
        cp: dict[str, Any] = {"resourceType": "CarePlan", "id": tp.id or "plan1", "status": "active", "intent": "plan",
                              "subject": {"reference": "Patient/p1"}}
        if tp.regimen:
            cp["title"] = tp.regimen
        if tp.drugs:
            cp["activity"] = [{"detail": {"status": "scheduled", "productCodeableConcept": {"coding": [{"system": HCPCS_SYSTEMS[0], "code": c}]}}}
                              for c in tp.drugs]
        refs = []
        for j, code in enumerate(tp.diagnoses, start=1):
            refs.append({"reference": add({"resourceType": "Condition", "id": f"plandx{j}", "subject": {"reference": "Patient/p1"},
                                           "code": {"coding": [{"system": ICD10CM, "code": code}]}})})
        if refs:
            cp["addresses"] = refs
        pext = []
        if tp.cycle is not None:
            pext.append({"url": EXT + "cycle", "valueInteger": tp.cycle})
        if tp.planned_cycles is not None:
            pext.append({"url": EXT + "planned_cycles", "valueInteger": tp.planned_cycles})
        if tp.modifications:
            import json

            pext.append({"url": EXT + "modifications", "valueString": json.dumps([m.model_dump(mode="json") for m in tp.modifications])})
        if pext:
            cp["extension"] = pext
        add(cp)
    for i, ev in enumerate(enc.evidence, start=1):
        obs: dict[str, Any] = {"resourceType": "Observation", "id": f"ev{i}", "status": "final",
                               "category": [{"coding": [{"code": ev.kind}]}], "code": {"text": ev.name or ev.kind}}
        if ev.value is not None:
            obs["valueString"] = ev.value
        if not ev.name:
            obs["extension"] = [{"url": EXT + "kind", "valueString": ev.kind}]
            del obs["code"]["text"]
        add(obs)
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}

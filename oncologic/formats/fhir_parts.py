"""FHIR R4 -> the encounter-level parts of the contract: setting, diagnoses, payer, services,
clinical trial, prior authorizations, treatment plan, evidence. See docs/formats.md."""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from ..load import InputError
from .fhir_common import (CONDITION_CATEGORY, HCPCS_SYSTEMS, ICD10CM, NCT_SYSTEMS, POS_SYSTEM, SOPT_SYSTEMS, Bundle, code,
                          codings, day, ext, ext_json, parse_instant, text_of)

# CMS place of service -> setting
POS = {"11": "office", "19": "facility", "22": "facility"}
# PHDSC Source of Payment Typology (https://nahdo.org/sopt): the longest listed prefix decides.
# 11x is Medicare managed care (Medicare Advantage: 111 HMO, 112 PPO, 113 POS, 119 other);
# 12x is Medicare non-managed care (121 FFS, 123 MSA, 129 other); 122 is the Part D drug
# benefit, 13 hospice, 14 dual-eligible organizations, 19 other: no contract payer type.
# 2x Medicaid; 5x private health insurance, 6x BCBS: commercial. Plain 1 does not say which.
SOPT = {"11": "medicare_advantage", "12": "medicare", "122": None, "13": None, "14": None, "19": None, "1": None,
        "2": "medicaid", "5": "commercial", "6": "commercial"}
# v2-0004 / v3 ActCode encounter classes
OUTPATIENT_CLASSES = {"O", "AMB", "OBSENC"}
INPATIENT_CLASSES = {"IMP", "ACUTE", "NONAC", "I"}
# v3 RoleCode service delivery locations that are hospital departments
HOSPITAL_LOCATION_CODES = {"HOSP", "HU", "ER", "ETU", "OUTPHARM"}
ACTIVE = {"active", "recurrence", "relapse"}


def sopt_payer_type(value: str) -> tuple[bool, Optional[str]]:
    """(known prefix, contract payer type or None) of a Source of Payment Typology code."""
    best = max((p for p in SOPT if value.startswith(p)), key=len, default=None)
    return (best is not None, SOPT[best] if best is not None else None)


# ---------------------------------------------------------------------------------------------
# setting


def _location_keys(b: Bundle, enc: dict) -> list[tuple[str, list[str]]]:
    """(path, lookup keys) of the encounter's locations and service provider: ids, identifiers,
    names and type codes, for the site's [locations]."""
    out = []
    refs = [(f"location[{k}].location", (loc or {}).get("location")) for k, loc in enumerate(enc.get("location") or []) if isinstance(loc, dict)]
    refs.append(("serviceProvider", enc.get("serviceProvider")))
    for where, ref in refs:
        keys = []
        if isinstance(ref, dict):
            keys += [str(ref[k]) for k in ("reference", "display") if isinstance(ref.get(k), str)]
            if isinstance(ref.get("identifier"), dict) and ref["identifier"].get("value"):
                keys.append(str(ref["identifier"]["value"]))
        hit = b.resolve(ref)
        if hit is not None:
            res = hit[1]
            keys += [str(res.get("id"))] + [str(i.get("value")) for i in res.get("identifier") or [] if isinstance(i, dict) and i.get("value")]
            if isinstance(res.get("name"), str):
                keys.append(res["name"])
            for t in (res.get("type") if isinstance(res.get("type"), list) else [res.get("type")]):
                keys += [str(c.get("code")) for c in codings(t) if c.get("code")] + ([text_of(t)] if text_of(t) else [])
        out.append((where, [k for k in keys if k and k != "None"]))
    return out


def setting(b: Bundle, ew: str, enc: dict, site: Any, warnings: list[str]) -> str:
    """office | facility, from (in order) oncologic's extension, the CMS place of service in
    Encounter.type, the site's [locations], a hospital Location type, Encounter.class."""
    own = ext(enc, "setting")
    if own:
        return own
    for t in enc.get("type") or []:
        pos = code(t, POS_SYSTEM)
        if pos in POS:
            return POS[pos]
        if pos:
            warnings.append(f"{ew}.type: place of service {pos} is neither office (11) nor outpatient hospital (19, 22)")
    locations = _location_keys(b, enc)
    for where, keys in locations:
        for key in keys:
            mapped = site.location(key) if site is not None else None
            if mapped:
                return mapped
    for where, keys in locations:
        if any(k in HOSPITAL_LOCATION_CODES for k in keys):
            return "facility"
    cls = enc.get("class") if isinstance(enc.get("class"), dict) else {}
    klass = cls.get("code")
    types_text = " ".join(text_of(t) or "" for t in enc.get("type") or []).lower()
    if klass in INPATIENT_CLASSES:
        raise InputError([(f"{ew}.class", f"an inpatient encounter (class {klass}) is billed on the hospital's inpatient claim; "
                           "oncologic codes outpatient encounters")])
    if klass in OUTPATIENT_CLASSES and ("hospital" in types_text or "hopd" in types_text):
        return "facility"
    if klass == "O":
        warnings.append(f"{ew}.class: outpatient (v2-0004 O) read as a hospital outpatient (facility) encounter")
        return "facility"
    raise InputError([(f"{ew}.type", "the setting (office or hospital outpatient) is unknown"
                       f"{' (class ' + klass + ' alone does not say)' if klass else ''}: give a CMS place-of-service code in "
                       "Encounter.type (11 office, 19/22 outpatient hospital), or map the encounter's location in the site "
                       "file's [locations]")])


# ---------------------------------------------------------------------------------------------
# diagnoses


def _cond_code(res: dict) -> Optional[str]:
    return code(res.get("code"), ICD10CM)


def _active_on(res: dict, dos: str) -> tuple[bool, str]:
    """Whether a Condition is active on the date of service, and why not."""
    status = code(res.get("clinicalStatus"), "http://terminology.hl7.org/CodeSystem/condition-clinical")
    verification = code(res.get("verificationStatus"), "http://terminology.hl7.org/CodeSystem/condition-ver-status")
    if verification in ("entered-in-error", "refuted"):
        return False, f"verification status {verification}"
    if status is not None and status not in ACTIVE:
        return False, f"clinical status {status}"
    onset, abated = day(res.get("onsetDateTime")), day(res.get("abatementDateTime"))
    if onset and onset > dos:
        return False, f"onset {onset} is after the date of service"
    if abated and abated < dos:
        return False, f"abated {abated}, before the date of service"
    return True, ""


def diagnoses(b: Bundle, ew: str, enc: dict, owned: set[int], dos: str, warnings: list[str]) -> list[str]:
    """Encounter.diagnosis first (rank order), then encounter-diagnosis Conditions active on the
    date of service; every Condition left out is named with the reason."""
    ranked: list[tuple[int, int, str]] = []
    used: set[int] = set()
    for j, d in enumerate(enc.get("diagnosis") or []):
        hit = b.resolve((d or {}).get("condition"))
        if hit is None:
            warnings.append(f"{ew}.diagnosis[{j}]: condition reference not found in the bundle")
            continue
        used.add(id(hit[1]))
        c = _cond_code(hit[1])
        if c:
            ranked.append((int(d.get("rank") or 99), j, c))
        else:
            warnings.append(f"{hit[0]}: Condition has no ICD-10-CM coding; not a claim diagnosis")
    for _pw, cp in b.of("CarePlan"):  # conditions a plan addresses are the plan's, not the claim's
        used.update(id(hit[1]) for hit in (b.resolve(r) for r in cp.get("addresses") or []) if hit is not None)
    for k, (cw, res) in enumerate(b.of("Condition")):
        if id(res) in used or id(res) not in owned:
            continue
        cats = {c.get("code") for cat in res.get("category") or [] for c in codings(cat)}
        ok, why = _active_on(res, dos)
        c = _cond_code(res)
        if c is None:
            warnings.append(f"{cw}: Condition has no ICD-10-CM coding; not a claim diagnosis")
        elif "encounter-diagnosis" not in cats:
            warnings.append(f"{cw}: {c} left off the claim: not an encounter diagnosis (category {', '.join(sorted(filter(None, cats))) or 'none'})")
        elif not ok:
            warnings.append(f"{cw}: {c} left off the claim: {why}")
        else:
            ranked.append((100, 1000 + k, c))
    out: list[str] = []
    for _r, _j, c in sorted(ranked):
        if c not in out:
            out.append(c)
    return out


# ---------------------------------------------------------------------------------------------
# payer


def _payer_keys(b: Bundle, cov: dict) -> list[str]:
    keys = []
    for p in cov.get("payor") or []:
        if not isinstance(p, dict):
            continue
        keys += [p[k] for k in ("display", "reference") if isinstance(p.get(k), str)]
        if isinstance(p.get("identifier"), dict) and p["identifier"].get("value"):
            keys.append(str(p["identifier"]["value"]))
        hit = b.resolve(p)
        if hit is not None:
            keys += [hit[1].get("name")] + [i.get("value") for i in hit[1].get("identifier") or [] if isinstance(i, dict)]
    for c in cov.get("class") or []:
        if isinstance(c, dict):
            keys += [c.get("name"), c.get("value")]
    return [str(k) for k in keys if k]


def _insurance_coverages(b: Bundle) -> list[tuple[str, dict]]:
    """The Coverage that a Claim or ExplanationOfBenefit names in its focal insurance (Synthea
    sends no Coverage resource; its ExplanationOfBenefit holds a contained one)."""
    out = []
    for rtype in ("ExplanationOfBenefit", "Claim"):
        for w, res in b.of(rtype):
            ins = [i for i in res.get("insurance") or [] if isinstance(i, dict)]
            ins.sort(key=lambda i: i.get("focal") is not True)
            for i in ins[:1]:
                hit = b.resolve(i.get("coverage"), res, w)
                if hit is not None and hit[1].get("resourceType") == "Coverage":
                    out.append(hit)
    return out


def _coverage(b: Bundle, dos: str) -> Optional[tuple[str, dict]]:
    covs = [(w, c) for w, c in b.of("Coverage") or _insurance_coverages(b) if c.get("status") in (None, "active")]

    def covers(c: dict) -> bool:
        p = c.get("period") or {}
        return (day(p.get("start")) or "0000") <= dos <= (day(p.get("end")) or "9999")

    covs.sort(key=lambda wc: (not covers(wc[1]), wc[1].get("order") if isinstance(wc[1].get("order"), int) else 99))
    return covs[0] if covs else None


def payer(b: Bundle, dos: str, site: Any, warnings: list[str]) -> Optional[dict]:
    hit = _coverage(b, dos)
    if hit is None:
        return None
    cw, cov = hit
    out: dict[str, Any] = {}
    sopt = code(cov.get("type"), SOPT_SYSTEMS)
    if sopt:
        known, ptype = sopt_payer_type(sopt)
        if ptype:
            out["type"] = ptype
        else:
            warnings.append(f"{cw}.type: payment typology {sopt} does not say which contract payer type "
                            f"(medicare, medicare_advantage, medicaid, commercial) applies{'' if known else ' (unknown code)'}")
    if ext(cov, "payer_type"):
        out["type"] = ext(cov, "payer_type")
    names = _payer_keys(b, cov)
    entry = next((site.payer(k) for k in names if site is not None and site.payer(k) is not None), None)
    if "type" not in out and entry is not None:
        out["type"] = entry.type
    if names:
        out["name"] = (entry.plan if entry is not None and entry.plan else None) or names[0]
    if cov.get("subscriberId"):
        out["member_id"] = cov["subscriberId"]
    period = cov.get("period") or {}
    if day(period.get("start")):
        out["coverage_start"] = day(period["start"])
    if day(period.get("end")):
        out["coverage_end"] = day(period["end"])
    if "type" not in out:
        warnings.append(f"{cw}: the payer type is unknown (no typology code, no site [payers] entry for {names[:3]}); "
                        "the claim gets a PAYER_TYPE_UNKNOWN finding")
    return out


# ---------------------------------------------------------------------------------------------
# services, trial, authorizations, plan, evidence


def services(procs: list[tuple[str, dict]], clock: Any, warnings: list[str]) -> list[tuple[dict, Optional[dt.datetime]]]:
    out = []
    for pw, proc in procs:
        status = proc.get("status")
        if status not in (None, "completed"):
            warnings.append(f"{pw}: Procedure with status {status}; not a service")
            continue
        c = code(proc.get("code"), HCPCS_SYSTEMS)
        if not c:
            warnings.append(f"{pw}: Procedure {text_of(proc.get('code')) or ''} without a CPT/HCPCS code; not a service")
            continue
        svc: dict[str, Any] = {"code": c}
        sep = ext(proc, "separately_identifiable")
        if sep is not None:
            svc["separately_identifiable"] = sep
        when = proc.get("performedDateTime") or (proc.get("performedPeriod") or {}).get("start")
        out.append((svc, clock.local(when, f"{pw}.performed[x]") if when else None))
    return out


def trial(b: Bundle, warnings: list[str]) -> Optional[dict]:
    subjects = b.of("ResearchSubject")
    if not subjects:
        if b.of("ResearchStudy"):
            warnings.append(f"{b.of('ResearchStudy')[0][0]}: a ResearchStudy without a ResearchSubject for the patient; ignored")
        return None
    sw, subj = subjects[0]
    out: dict[str, Any] = {}
    study = b.resolve(subj.get("study"))
    if study is None:
        warnings.append(f"{sw}.study: ResearchStudy not found in the bundle")
        return out
    for ident in study[1].get("identifier") or []:
        value = ident.get("value") if isinstance(ident, dict) else None
        if isinstance(value, str) and (ident.get("system") in NCT_SYSTEMS or value.upper().startswith("NCT")):
            out["nct"] = value
            break
    if ext(study[1], "qualifying") is not None:
        out["qualifying"] = ext(study[1], "qualifying")
    grid = ext_json(study[1], "billing_grid")
    if isinstance(grid, str):
        warnings.append(f"{study[0]}: billing_grid extension is not JSON; ignored")
    elif grid is not None:
        out["billing_grid"] = grid
    return out


def authorizations(b: Bundle, warnings: list[str]) -> list[dict]:
    out = []
    for rw, cr in b.of("ClaimResponse"):
        number = cr.get("preAuthRef")
        if not number:
            warnings.append(f"{rw}: ClaimResponse without preAuthRef is not a prior authorization; ignored")
            continue
        auth: dict[str, Any] = {"number": number}
        items = [it for it in cr.get("addItem") or [] if isinstance(it, dict)]
        if not items:
            req = b.resolve(cr.get("request"))
            items = [it for it in (req[1].get("item") or [] if req else []) if isinstance(it, dict)]
        codes: list[str] = []
        units = [int(it["quantity"]["value"]) for it in items if isinstance(it.get("quantity"), dict) and "value" in it["quantity"]]
        for it in items:
            c = code(it.get("productOrService"), HCPCS_SYSTEMS)
            if c and c not in codes:
                codes.append(c)
        if codes:
            auth["codes"] = codes
        if units:
            auth["units"] = sum(units)
        period = cr.get("preAuthPeriod") or {}
        for key, el in (("start", "start"), ("end", "end")):
            if day(period.get(el)):
                auth[key] = day(period[el])
        if ext(cr, "units_used") is not None:
            auth["units_used"] = ext(cr, "units_used")
        out.append(auth)
    return out


def plan(b: Bundle, warnings: list[str]) -> Optional[dict]:
    plans = b.of("CarePlan")
    if not plans:
        return None
    pw, cp = plans[0]
    if len(plans) > 1:
        warnings.append(f"{plans[1][0]}: only the first CarePlan is used")
    out: dict[str, Any] = {}
    if cp.get("id"):
        out["id"] = cp["id"]
    if cp.get("title"):
        out["regimen"] = cp["title"]
    drugs, dx = [], []
    for k, act in enumerate(cp.get("activity") or []):
        c = code(((act or {}).get("detail") or {}).get("productCodeableConcept"), HCPCS_SYSTEMS)
        if c:
            drugs.append(c)
        else:
            warnings.append(f"{pw}.activity[{k}]: no HCPCS product code; not a planned drug")
    for k, ref in enumerate(cp.get("addresses") or []):
        hit = b.resolve(ref)
        c = _cond_code(hit[1]) if hit else None
        if c:
            dx.append(c)
        else:
            warnings.append(f"{pw}.addresses[{k}]: no ICD-10-CM Condition found")
    if drugs:
        out["drugs"] = drugs
    if dx:
        out["diagnoses"] = dx
    for name in ("cycle", "planned_cycles", "modifications"):
        value = ext_json(cp, name)
        if value is not None:
            out[name] = value
    return out


LOINC = "http://loinc.org"


def evidence(obs_list: list[tuple[str, dict]], clock: Any = None) -> list[dict]:
    """Observations as evidence items. A hemoglobin or hematocrit result (LOINC 718-7, 20509-6,
    30313-1, 4544-3, 20570-8, 31100-1, or named so) keeps its number, unit and sample time apart
    (evidence[].value, unit, date, time), as ESA claims report it (encodings/drugs/esa.lp)."""
    from ..facts import LAB_NAMES, lab_analyte

    out = []
    for ow, obs in obs_list:
        kind = next((c.get("code") for cat in obs.get("category") or [] for c in codings(cat) if c.get("code")), "observation")
        item: dict[str, Any] = {"kind": ext(obs, "kind") or kind}
        name = text_of(obs.get("code"))
        loinc = code(obs.get("code"), LOINC)
        if loinc in LAB_NAMES:
            name = LAB_NAMES[loinc]
        if name:
            item["name"] = name
        lab = lab_analyte(item["kind"], name) or (LAB_NAMES.get(loinc) if loinc else None)
        if "valueString" in obs:
            item["value"] = obs["valueString"]
        elif isinstance(obs.get("valueQuantity"), dict):
            q = obs["valueQuantity"]
            if lab:
                item["value"] = str(q.get("value"))
                unit = q.get("unit") or q.get("code")
                if unit:
                    item["unit"] = str(unit)
            else:
                item["value"] = f"{q.get('value')}{q.get('unit') or ''}"
        elif "valueCodeableConcept" in obs:
            v = obs["valueCodeableConcept"]
            item["value"] = text_of(v) or next((c.get("code") for c in codings(v)), None)
        if lab:
            item["kind"] = "lab"
            when = obs.get("effectiveDateTime") or (obs.get("effectivePeriod") or {}).get("start") or obs.get("issued")
            moment = clock.local(when, f"{ow}.effective[x]") if clock is not None else parse_instant(when)
            if moment is not None:
                item["date"] = moment.date().isoformat()
                item["time"] = moment.strftime("%H:%M")
            elif day(when):
                item["date"] = day(when)
        out.append(item)
    return out


def condition_category_is(res: dict, value: str) -> bool:
    return any(c.get("system") in (CONDITION_CATEGORY, None) and c.get("code") == value
               for cat in res.get("category") or [] for c in codings(cat))

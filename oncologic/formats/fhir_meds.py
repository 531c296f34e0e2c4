"""FHIR R4 medication records -> the contract's administrations, drugs and not-administered
records. See docs/formats.md for the element-by-element mapping."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Optional

from .fhir_common import (HCPCS_SYSTEMS, NDC, ROUTE_SYSTEM, RXNORM, SNOMED, Bundle, Clock, code, codings, ext, ext_json,
                          iso_minutes, text_of)

# SNOMED CT route of administration concepts that map to one contract route by themselves
SNOMED_ROUTES = {"34206005": "subcutaneous", "78421000": "intramuscular", "72607000": "intrathecal", "38239002": "intraperitoneal"}
SNOMED_IV = "47625008"
SNOMED_INTRA_ARTERIAL = "58100008"
# FDA route of administration (NCI Thesaurus), as Oracle Health and others send it
NCI = "http://ncimeta.nci.nih.gov"
NCI_ROUTES = {"C38276": "iv", "C38299": "subcutaneous", "C28161": "intramuscular", "C38267": "intrathecal", "C38222": "intra_arterial"}
# UCUM -> contract dose unit
UCUM = {"mg": "mg", "ug": "mcg", "mcg": "mcg", "g": "g", "mL": "mL", "ml": "mL", "[iU]": "units", "[IU]": "units",
        "U": "units", "units": "units", "mCi": "mCi", "uCi": "uCi"}
VOLUME = {"mL": Decimal(1), "ml": Decimal(1), "L": Decimal(1000), "l": Decimal(1000)}
TIME_MINUTES = {"s": Decimal(1) / 60, "min": Decimal(1), "h": Decimal(60), "hr": Decimal(60), "hour": Decimal(60), "d": Decimal(1440)}
# MedicationAdministration.status -> not_administered status (completed and stopped are administrations)
STATUS = {"not-done": "not_done", "entered-in-error": "entered_in_error", "on-hold": "on_hold", "in-progress": "in_progress",
          "unknown": "unknown"}
ADMIN_EXTENSIONS = ("purpose", "primary_reason", "separate_access_reason", "pump", "research", "lesions")
DRUG_EXTENSIONS = ("container", "discarded", "supplied_by", "kind", "manufacturer", "acquired_340b")


def _num(value: Any) -> Optional[Decimal]:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return None


def _unit(q: Any) -> Optional[str]:
    return str(q.get("code") or q.get("unit")) if isinstance(q, dict) and (q.get("code") or q.get("unit")) else None


def _text(d: Decimal) -> str:
    d = d.normalize()
    return format(d, "f") if d == d.to_integral_value() or d.as_tuple().exponent >= -6 else format(d.quantize(Decimal("0.000001")), "f")


def quantity(q: Any, where: str, warnings: list[str]) -> Optional[dict]:
    """A FHIR Quantity as a contract amount (UCUM unit), or None with a warning."""
    if not isinstance(q, dict) or _num(q.get("value")) is None:
        return None
    unit = _unit(q)
    mapped = UCUM.get(unit) if unit is not None else None
    if mapped is None:
        warnings.append(f"{where}: unit {unit!r} is not one the contract knows (mg, mcg, g, units, mL, mCi, uCi); dose left out")
        return None
    return {"value": q["value"], "unit": mapped}


def _volume_ml(q: Any) -> Optional[Decimal]:
    unit, value = _unit(q), _num(q.get("value")) if isinstance(q, dict) else None
    if unit in VOLUME and value is not None:
        return value * VOLUME[unit]
    return None


# ---------------------------------------------------------------------------------------------
# route, times


def route(dosage: dict, timed: bool, where: str, warnings: list[str]) -> Optional[str]:
    concept = dosage.get("route")
    own = code(concept, ROUTE_SYSTEM)
    if own:
        return own
    kind = None
    snomed = code(concept, SNOMED)
    if snomed in SNOMED_ROUTES:
        kind = SNOMED_ROUTES[snomed]
    elif snomed == SNOMED_IV:
        kind = "iv"
    elif snomed == SNOMED_INTRA_ARTERIAL:
        kind = "intra_arterial"
    else:
        kind = next((NCI_ROUTES[c["code"]] for c in codings(concept) if c.get("code") in NCI_ROUTES), None)
    if kind is None:
        kind = _route_from_text(text_of(concept) or "")
    if kind == "iv":
        return "iv_infusion" if timed else "iv_push"
    if kind == "intra_arterial":
        return "intra_arterial_infusion" if timed else "intra_arterial_push"
    if kind is None and concept is not None:
        warnings.append(f"{where}.dosage.route: no contract route for {[(c.get('system'), c.get('code')) for c in codings(concept)]}"
                        f"{' / ' + repr(text_of(concept)) if text_of(concept) else ''}")
    return kind


def _route_from_text(text: str) -> Optional[str]:
    t = text.lower()
    if "intravenous" in t or re.search(r"\biv\b", t):
        return "iv"
    if "subcutaneous" in t or re.search(r"\b(sc|subq|sq)\b", t):
        return "subcutaneous"
    if "intramuscular" in t or re.search(r"\bim\b", t):
        return "intramuscular"
    if "intrathecal" in t:
        return "intrathecal"
    return None


def _infuse_over(ma: dict, dosage: dict) -> Optional[Decimal]:
    """Minutes of an infuse-over extension (HL7 pharmacy-core-infuseOver or a vendor's), if any."""
    for holder in (ma, dosage):
        for e in holder.get("extension") or []:
            url = str(e.get("url", "")).lower() if isinstance(e, dict) else ""
            # Oracle Health (Cerner) R4: https://fhir-ehr.cerner.com/r4/StructureDefinition/infuse-over-time
            if url.rstrip("/").endswith(("infuseover", "infuse-over", "infuse_over", "infuse-over-time", "infuseovertime",
                                         "infusion-duration", "infusionduration")):
                q = e.get("valueDuration") or e.get("valueQuantity")
                value, unit = (_num(q.get("value")), _unit(q)) if isinstance(q, dict) else (None, None)
                if value is not None and unit in TIME_MINUTES:
                    return value * TIME_MINUTES[unit]
    return None


def _rate_minutes(dosage: dict, where: str, warnings: list[str]) -> Optional[tuple[Decimal, str]]:
    """Minutes = volume infused / rate, from dosage.dose (a volume) and rateQuantity or rateRatio."""
    volume = _volume_ml(dosage.get("dose"))
    per_minute = None
    if isinstance(dosage.get("rateQuantity"), dict):
        q = dosage["rateQuantity"]
        unit, value = _unit(q) or "", _num(q.get("value"))
        vol_unit, _, time_unit = unit.partition("/")
        if value and vol_unit in VOLUME and time_unit in TIME_MINUTES:
            per_minute = value * VOLUME[vol_unit] / TIME_MINUTES[time_unit]
    elif isinstance(dosage.get("rateRatio"), dict):
        num, den = dosage["rateRatio"].get("numerator"), dosage["rateRatio"].get("denominator")
        vol = _volume_ml(num)
        den_v, den_u = (_num(den.get("value")), _unit(den)) if isinstance(den, dict) else (None, None)
        if vol and den_v and den_u in TIME_MINUTES:
            per_minute = vol / (den_v * TIME_MINUTES[den_u])
    if per_minute is None:
        if "rateQuantity" in dosage or "rateRatio" in dosage:
            warnings.append(f"{where}.dosage.rate[x]: not a volume per time; the rate is not used")
        return None
    if volume is None:
        warnings.append(f"{where}.dosage.rate[x]: a rate without an infused volume (dosage.dose in mL) gives no duration")
        return None
    return volume / per_minute, f"{_text(volume)} mL at {_text(per_minute * 60)} mL/h"


def times(ma: dict, aw: str, dosage: dict, clock: Clock, warnings: list[str]) -> tuple[Optional[dt.datetime], Optional[dt.datetime], bool, dict]:
    """(local start, local stop, timed, element paths) of an administration."""
    paths: dict[str, str] = {}
    if isinstance(ma.get("effectivePeriod"), dict):
        period = ma["effectivePeriod"]
        paths.update({".start": f"{aw}.effectivePeriod.start", ".stop": f"{aw}.effectivePeriod.end"})
        start = clock.local(period.get("start"), f"{aw}.effectivePeriod.start")
        stop = clock.local(period.get("end"), f"{aw}.effectivePeriod.end")
        for key in ("rateQuantity", "rateRatio"):
            if key in dosage:
                warnings.append(f"{aw}.dosage.{key}: the rate is not used (effectivePeriod gives the times)")
        return start, stop, True, paths
    paths[".start"] = f"{aw}.effectiveDateTime"
    start = clock.local(ma.get("effectiveDateTime"), f"{aw}.effectiveDateTime")
    minutes = _infuse_over(ma, dosage)
    source = "the infuse-over extension"
    if minutes is None:
        rated = _rate_minutes(dosage, aw, warnings)
        if rated is not None:
            minutes, source = rated
    if start is None or minutes is None:
        return start, None, False, paths
    whole = int(minutes.to_integral_value())
    paths[".stop"] = f"{aw}.dosage"
    warnings.append(f"{aw}: stop time derived from effectiveDateTime + {whole} minutes ({source})")
    return start, start + dt.timedelta(minutes=whole), True, paths


# ---------------------------------------------------------------------------------------------
# drugs


def drug_from_codes(concept: Any, where: str, warnings: list[str], site: Any) -> dict:
    """Billing codes, the record's own code and the name of a medication concept."""
    drug: dict[str, Any] = {}
    ndc = code(concept, NDC)
    hcpcs = code(concept, HCPCS_SYSTEMS)
    if ndc:
        drug["ndc"] = ndc
    if hcpcs:
        drug["hcpcs"] = hcpcs
    name = text_of(concept)
    if name:
        drug["name"] = name
    others = [c for c in codings(concept) if c.get("system") not in (NDC, *HCPCS_SYSTEMS) and c.get("system") and c.get("code")]
    known = [c for c in others if site is not None and site.formulary_row(str(c["system"]), str(c["code"])) is not None]
    rx = [c for c in others if c.get("system") == RXNORM]
    chosen = (known or rx or others or [None])[0]
    if chosen is not None:
        drug["code"] = {"system": str(chosen["system"]), "code": str(chosen["code"])}
    for c in others:
        if c is not chosen:
            warnings.append(f"{where}: coding {c.get('system')}|{c.get('code')} is not used (one code per drug: {chosen['system']}|{chosen['code']})")
    return drug


def _drug_extensions(drug: dict, res: Any) -> None:
    for name in DRUG_EXTENSIONS:
        value = ext_json(res, name)
        if value is not None:
            drug[name] = value


def _ingredients(b: Bundle, mres: dict, mw: str, warnings: list[str]) -> list[tuple[str, dict, Any]]:
    """(path, ingredient, its concept) of the active ingredients; diluents (isActive false) are named and left out."""
    out = []
    for k, g in enumerate(mres.get("ingredient") or []):
        if not isinstance(g, dict):
            continue
        gw = f"{mw}.ingredient[{k}]"
        concept = g.get("itemCodeableConcept")
        if concept is None and "itemReference" in g:
            hit = b.resolve(g["itemReference"], mres, mw)
            concept = hit[1].get("code") if hit else None
        if g.get("isActive") is False:
            warnings.append(f"{gw}: inactive ingredient (diluent) {text_of(concept) or ''!s}; not a drug line")
            continue
        out.append((gw, g, concept))
    return out


def medication(b: Bundle, ma: dict, aw: str, site: Any, warnings: list[str]) -> tuple[list[tuple[str, dict, Optional[dict]]], str]:
    """The drugs of an administration as (element path, drug, ingredient strength) and the
    medication's path. One active ingredient of a coded product is one drug with the product's codes."""
    med = None
    if "medicationReference" in ma:
        med = b.resolve(ma["medicationReference"], ma, aw)
        if med is None:
            warnings.append(f"{aw}.medicationReference: not found in the bundle")
    if med is None:
        if "medicationCodeableConcept" in ma:
            return [(f"{aw}.medicationCodeableConcept", drug_from_codes(ma["medicationCodeableConcept"], aw, warnings, site), None)], aw
        return [], aw
    mw, mres = med
    ingredients = _ingredients(b, mres, mw, warnings)
    product = drug_from_codes(mres.get("code"), mw, warnings, site) if mres.get("code") else {}
    if len(ingredients) > 1:
        drugs = []
        for gw, g, concept in ingredients:
            drug = drug_from_codes(concept, gw, warnings, site)
            _drug_extensions(drug, g)
            drugs.append((gw, drug, g.get("strength")))
        return drugs, mw
    strength = ingredients[0][1].get("strength") if ingredients else None
    if not (product.keys() & {"ndc", "hcpcs", "code"}) and ingredients:
        product = {**drug_from_codes(ingredients[0][2], ingredients[0][0], warnings, site), **({"name": product["name"]} if "name" in product else {})}
    _drug_extensions(product, mres)
    if ingredients:
        _drug_extensions(product, ingredients[0][1])
    return [(f"{mw}.code", product, strength)], mw


def dose_from(dose_q: Any, strength: Optional[dict], where: str, warnings: list[str]) -> tuple[Optional[dict], Optional[str]]:
    """(dose, how it was derived). A dose in mass or units is the dose. A dose in volume with an
    ingredient strength per volume is strength x volume (a partial bag prorated); in volume
    without a strength it stays a volume (fluids)."""
    volume = _volume_ml(dose_q)
    num = strength.get("numerator") if isinstance(strength, dict) else None
    den = strength.get("denominator") if isinstance(strength, dict) else None
    if volume is None or num is None:
        return quantity(dose_q, f"{where}.dosage.dose", warnings), None
    amount = quantity(num, f"{where}.strength.numerator", warnings)
    per = _volume_ml(den)
    if amount is None:
        return None, None
    if amount["unit"] == "mL":
        return {"value": _text(volume), "unit": "mL"}, None
    if per is None or per == 0:
        warnings.append(f"{where}: dose {_text(volume)} mL and a strength that is not per volume; the amount given is unknown, dose left out")
        return None, None
    value = _num(amount["value"]) * volume / per
    text = (f"{_text(_num(amount['value']))} {amount['unit']} per {_text(per)} mL x {_text(volume)} mL infused = "
            f"{_text(value)} {amount['unit']}")
    return {"value": _text(value.quantize(Decimal('0.000001')) if value.as_tuple().exponent < -6 else value), "unit": amount["unit"]}, text


def bag_dose(strength: Any, dose_q: Any, where: str, warnings: list[str]) -> tuple[Optional[dict], Optional[str]]:
    """The dose of one ingredient of a premixed bag: its strength per bag, or per volume x the volume infused."""
    if not isinstance(strength, dict):
        return None, None
    if _volume_ml(strength.get("denominator")) is not None and _volume_ml(dose_q) is not None:
        return dose_from(dose_q, strength, where, warnings)
    return quantity(strength.get("numerator"), f"{where}.strength", warnings), None


# ---------------------------------------------------------------------------------------------
# one MedicationAdministration


def pump_from_devices(b: Bundle, ma: dict, aw: str, warnings: list[str]) -> Optional[str]:
    """portable | implantable from the administration's Device (its type's text or display)."""
    for k, d in enumerate(ma.get("device") or []):
        hit = b.resolve(d, ma, aw)
        words = " ".join(filter(None, [text_of(hit[1].get("type")) if hit else None, d.get("display") if isinstance(d, dict) else None,
                                       *(str(n.get("name", "")) for n in ((hit[1].get("deviceName") or []) if hit else []) if isinstance(n, dict))])).lower()
        if "pump" not in words and "elastomeric" not in words and "cadd" not in words:
            continue
        if "implant" in words:
            return "implantable"
        if any(w in words for w in ("ambulatory", "portable", "elastomeric", "cadd", "wearable", "home")):
            return "portable"
        warnings.append(f"{aw}.device[{k}]: an infusion pump that is neither portable nor implantable ({words.strip()}); not a prolonged-infusion pump")
    return None


def administration(b: Bundle, aw: str, ma: dict, clock: Clock, site: Any, warnings: list[str]) -> tuple[dict, Optional[dt.datetime], dict]:
    """(the contract administration, its local start, element paths relative to it)."""
    adm: dict[str, Any] = {}
    paths: dict[str, str] = {"": aw, ".id": f"{aw}.id", ".route": f"{aw}.dosage.route", ".access": f"{aw}.dosage.site"}
    if ma.get("id"):
        adm["id"] = ma["id"]
    dosage = ma.get("dosage") if isinstance(ma.get("dosage"), dict) else {}
    start, stop, timed, tpaths = times(ma, aw, dosage, clock, warnings)
    paths.update(tpaths)
    if start is not None:
        adm["start"] = iso_minutes(start)
    if stop is not None:
        adm["stop"] = iso_minutes(stop)
    r = route(dosage, timed, aw, warnings)
    if r:
        adm["route"] = r
    site_el = dosage.get("site")
    if isinstance(site_el, dict):
        adm["access"] = text_of(site_el) or next((c.get("code") for c in codings(site_el) if c.get("code")), "main")
    if ma.get("status") == "stopped":
        reason = ma.get("statusReason") or []
        adm["discontinued"] = (text_of(reason[0]) if reason else None) or "stopped"
    for name in ADMIN_EXTENSIONS:
        value = ext(ma, name)
        if value is not None:
            adm[name] = value
    if "pump" not in adm:
        pump = pump_from_devices(b, ma, aw, warnings)
        if pump:
            adm["pump"] = pump
            paths[".pump"] = f"{aw}.device"
    adm["drugs"] = _drugs(b, ma, aw, dosage, site, warnings, paths)
    return adm, start, paths


def _drugs(b: Bundle, ma: dict, aw: str, dosage: dict, site: Any, warnings: list[str], paths: dict) -> list[dict]:
    found, _mw = medication(b, ma, aw, site, warnings)
    drugs = []
    for j, (dw, drug, strength) in enumerate(found):
        paths[f".drugs[{j}]"] = dw
        if len(found) == 1:
            if "dose" in dosage:
                dose, basis = dose_from(dosage.get("dose"), strength, aw, warnings)
                paths[f".drugs[{j}].dose"] = f"{aw}.dosage.dose"
            else:
                dose, basis = bag_dose(strength, None, dw, warnings) if strength else (None, None)
            _drug_extensions(drug, ma)
        else:
            dose, basis = bag_dose(strength, dosage.get("dose"), dw, warnings)
            paths[f".drugs[{j}].dose"] = f"{dw}.strength"
        if dose is not None:
            drug["dose"] = dose
        if basis:
            drug["dose_basis"] = basis
        drugs.append(drug)
    return drugs


def not_administered(res: dict, where: str, status: str, warnings: list[str], b: Bundle) -> dict:
    """A medication record that is not a completed administration, as the contract lists it."""
    item: dict[str, Any] = {"id": str(res.get("id") or where), "status": status}
    reason = res.get("statusReason")
    reason = reason[0] if isinstance(reason, list) and reason else reason
    if text_of(reason):
        item["reason"] = text_of(reason)
    concept = res.get("medicationCodeableConcept")
    if concept is None and "medicationReference" in res:
        hit = b.resolve(res["medicationReference"], res, where)
        concept = hit[1].get("code") if hit else None
        if concept is None and isinstance(res["medicationReference"], dict):
            concept = {"text": res["medicationReference"].get("display")}
    name = text_of(concept)
    if name:
        item["drug"] = name
    return item

"""FHIR R4 (4.0.1) Bundle in, the encounters of the contract out.

The mapping is written against raw JSON dicts (no FHIR library: ``fhir.resources`` ships R5 and
R4B models, not R4 4.0.1). It reads bundles the way EHRs send them (Epic, Oracle Health,
Synthea, mCODE: RxNorm-coded medications, statuses, infuse-over durations, doses as infused
volumes, offsets, whole-patient exports) and turns them into the fields of the contract
(docs/encounter-format.md), then hands each result to :func:`oncologic.load.validate`. Nothing is
dropped silently: every resource, element or code that has no place in the encounter is a
warning naming its element path, and errors name FHIR element paths
(``Bundle.entry[3].resource.dosage.dose``). docs/formats.md has the element-by-element table.

One bundle can give several encounters: one per Encounter that has medication records, and one
per local calendar date of service inside an Encounter (a recurring/series encounter holding
day 1 and day 8 is two claims; an infusion that runs past midnight stays with its session).

Split: :mod:`.fhir_common` (bundle index, helpers, the clock), :mod:`.fhir_meds`
(administrations and drugs), :mod:`.fhir_parts` (setting, diagnoses, payer and the rest),
:mod:`.fhir_write` (a native encounter as a bundle, for tests).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Optional

from ..load import InputError, Loaded, parse_document, read_text, validate
from . import fhir_meds as meds
from . import fhir_parts as parts
from .fhir_common import Bundle, Clock, day, parse_instant
from .fhir_shape import check_resource
from .fhir_write import encounter_to_bundle  # noqa: F401 - public API

MAPPED_TYPES = {"CarePlan", "Encounter", "Condition", "Coverage", "MedicationAdministration", "Medication", "Procedure",
                "ResearchSubject", "ResearchStudy", "ClaimResponse", "Claim", "ExplanationOfBenefit", "Observation", "Patient",
                "MedicationRequest", "MedicationStatement", "Device", "Location", "Organization", "Practitioner",
                "PractitionerRole"}
# the element that ties a resource to its Encounter
ENCOUNTER_LINK = {"MedicationAdministration": "context", "MedicationStatement": "context", "MedicationRequest": "encounter",
                  "Procedure": "encounter", "Condition": "encounter", "Observation": "encounter", "CarePlan": "encounter"}
MED_RECORDS = ("MedicationAdministration", "MedicationRequest", "MedicationStatement", "Procedure")
# a later-dated administration that starts within this many minutes of the session's last
# moment belongs to that session (an encounter that crosses midnight is one encounter)
SESSION_GAP_MINUTES = 60


@dataclass
class Mapped:
    """One encounter mapped from a bundle: the contract document, the mapping warnings, and
    contract field paths -> FHIR element paths (for errors)."""

    document: dict
    warnings: list[str] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)
    label: str = ""

    def fhir_path(self, path: str) -> str:
        best = max((k for k in self.paths if path == k or path.startswith((k + ".", k + "["))), key=len, default=None)
        return path if best is None else self.paths[best] + path[len(best):]


def _when(res: dict) -> Any:
    rtype = res["resourceType"]
    if rtype in ("MedicationAdministration", "MedicationStatement"):
        return res.get("effectiveDateTime") or (res.get("effectivePeriod") or {}).get("start")
    if rtype == "Procedure":
        return res.get("performedDateTime") or (res.get("performedPeriod") or {}).get("start")
    return res.get("authoredOn")


def _owned(b: Bundle, ew: str, enc: dict, n_encounters: int) -> set[int]:
    """The resources that belong to this Encounter: all of them in a one-encounter bundle; else
    those whose encounter link points at it, or (without a link) whose time falls in its period."""
    owned: set[int] = set()
    period = enc.get("period") or {}
    lo, hi = day(period.get("start")) or "0000", day(period.get("end")) or day(period.get("start")) or "9999"
    for where, res in b.entries:
        link = ENCOUNTER_LINK.get(res["resourceType"])
        target = b.resolve(res.get(link)) if link else None
        if n_encounters == 1 or link is None:
            owned.add(id(res))
        elif target is not None and target[0] == ew:
            owned.add(id(res))
        elif target is None and res.get(link) is None and res["resourceType"] == "Condition":
            owned.add(id(res))
        elif target is None and res.get(link) is None and lo <= (day(_when(res)) or "") <= hi:
            owned.add(id(res))
    return owned


def bundle_to_documents(doc: Any, site: Any = None) -> list[Mapped]:
    """Every encounter (one per Encounter with medication records and local date of service)
    that a Bundle holds. Raises InputError (with FHIR element paths) when none can be read."""
    warnings: list[str] = []
    if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle":
        raise InputError([("resourceType", "a FHIR R4 Bundle is expected (resourceType: Bundle)")])
    if not isinstance(doc.get("entry", []), list):
        raise InputError([("Bundle.entry", "a JSON array of entries is expected")])
    b = Bundle(doc, warnings)
    problems: list[tuple[str, str]] = []
    for where, res in b.entries:
        check_resource(res, where, problems)
    if problems:
        raise InputError(problems, warnings=warnings)
    for where, res in b.entries:
        if res["resourceType"] not in MAPPED_TYPES:
            warnings.append(f"{where}: {res['resourceType']} is not mapped to the encounter; ignored")
    encs = b.of("Encounter")
    if not encs:
        raise InputError([("Bundle.entry", "no Encounter resource")], warnings=warnings)
    chosen = []
    for ew, enc in encs:
        owned = _owned(b, ew, enc, len(encs))
        if len(encs) > 1 and not any(id(r) in owned for t in MED_RECORDS for _w, r in b.of(t)):
            warnings.append(f"{ew}: Encounter {enc.get('id')} has no medication record or procedure; not coded")
            continue
        chosen.append((ew, enc, owned))
    out: list[Mapped] = []
    for ew, enc, owned in chosen:
        mine = list(warnings)
        try:
            out += _map_encounter(b, ew, enc, owned, site, mine)
        except InputError as exc:
            raise InputError(exc.problems, warnings=mine + exc.warnings) from None
    if not out:
        raise InputError([("Bundle.entry", "no Encounter with medication administrations")], warnings=warnings)
    return out


def _reference_instant(b: Bundle, enc: dict, owned: set[int]) -> Optional[dt.datetime]:
    start = parse_instant((enc.get("period") or {}).get("start"))
    if start is not None and start.tzinfo is not None:
        return start
    for _w, ma in b.of("MedicationAdministration"):
        moment = parse_instant(_when(ma)) if id(ma) in owned else None
        if moment is not None and moment.tzinfo is not None:
            return moment
    return None


def _medication_records(b: Bundle, owned: set[int], clock: Clock, site: Any, warnings: list[str]):
    """(administrations with their local start and paths, not-administered records with their local time)."""
    adms, others = [], []
    for aw, ma in b.of("MedicationAdministration"):
        if id(ma) not in owned:
            continue
        status = ma.get("status")
        if status in ("completed", "stopped"):
            adms.append(meds.administration(b, aw, ma, clock, site, warnings))
            continue
        mapped = meds.STATUS.get(status, "unknown")
        if status not in meds.STATUS:
            warnings.append(f"{aw}.status: {status!r} is not a MedicationAdministration status; read as unknown")
        others.append((meds.not_administered(ma, aw, mapped, warnings, b), clock.local(_when(ma), f"{aw}.effective[x]")))
    for rtype, status in (("MedicationRequest", "ordered"), ("MedicationStatement", "recorded")):
        for rw, res in b.of(rtype):
            if id(res) in owned and res.get("status") not in ("entered-in-error", "cancelled"):
                others.append((meds.not_administered(res, rw, status, warnings, b), None))
                warnings.append(f"{rw}: a {rtype} is not an administration; listed under not_administered ({status})")
    return adms, others


def _sessions(adms: list) -> list[list]:
    """Administrations grouped by local calendar date of their start; a later-dated one that
    starts within SESSION_GAP_MINUTES of the session's last moment stays in that session."""
    groups: list[list] = []
    last: Optional[dt.datetime] = None
    for item in sorted(adms, key=lambda a: (a[1] is None, a[1] or dt.datetime.min)):
        start = item[1]
        stop = parse_instant(item[0].get("stop")) or start
        if groups and (start is None or groups[-1][0][1] is None or start.date() == groups[-1][0][1].date()
                       or (last is not None and start - last <= dt.timedelta(minutes=SESSION_GAP_MINUTES))):
            groups[-1].append(item)
        else:
            groups.append([item])
            last = None
        if stop is not None:
            last = max(last, stop) if last is not None else stop
    return groups or [[]]


def _map_encounter(b: Bundle, ew: str, enc: dict, owned: set[int], site: Any, warnings: list[str]) -> list[Mapped]:
    clock = Clock(site.zone() if site is not None else None, _reference_instant(b, enc, owned), warnings)
    ident = enc.get("id") or next((i.get("value") for i in enc.get("identifier") or [] if isinstance(i, dict) and i.get("value")), None)
    adms, others = _medication_records(b, owned, clock, site, warnings)
    services = parts.services([(w, r) for w, r in b.of("Procedure") if id(r) in owned], clock, warnings)
    setting = parts.setting(b, ew, enc, site, warnings)  # after the records: a rejection shows their warnings
    groups = _sessions(adms)
    enc_start = clock.local((enc.get("period") or {}).get("start"), f"{ew}.period.start")
    enc_day = enc_start.date() if enc_start else _date((enc.get("period") or {}).get("start"))
    if len(groups) > 1:
        warnings.append(f"{ew}: Encounter {ident} holds administrations on {len(groups)} dates of service; one claim per date")
    out = []
    for g, group in enumerate(groups):
        first = group[0][1].date() if group and group[0][1] else None
        dos = (enc_day if len(groups) == 1 and enc_day else first) or enc_day
        out.append(_document(b, ew, enc, owned, site, list(warnings), ident, setting, dos, group, others, services,
                             g, len(groups), groups))
    return out


def _date(text: Any) -> Optional[dt.date]:
    try:
        return dt.date.fromisoformat(day(text) or "")
    except ValueError:
        return None


def _belongs(moment: Optional[dt.datetime], g: int, groups: list[list]) -> bool:
    """Whether a record at ``moment`` goes with session g (undated records go with the first)."""
    if moment is None or len(groups) == 1:
        return g == 0
    dates = [grp[0][1].date() if grp and grp[0][1] else None for grp in groups]
    best = min(range(len(groups)), key=lambda k: abs(((dates[k] or moment.date()) - moment.date()).days))
    return best == g


def _document(b, ew, enc, owned, site, warnings, ident, setting, dos, group, others, services, g, n, groups) -> Mapped:
    dos_text = dos.isoformat() if dos else None
    doc: dict[str, Any] = {"id": f"{ident}-{dos_text}" if n > 1 and ident else ident, "setting": setting}
    paths = {"id": f"{ew}.id", "setting": f"{ew}.type", "date_of_service": f"{ew}.period.start", "diagnoses": f"{ew}.diagnosis"}
    if dos_text:
        doc["date_of_service"] = dos_text
    doc["diagnoses"] = parts.diagnoses(b, ew, enc, owned, dos_text or "9999-12-31", warnings)
    payer = parts.payer(b, dos_text or "0000-00-00", site, warnings)
    if payer is not None:
        doc["payer"] = payer
    from . import fhir_patient

    pt, pt_where = fhir_patient.patient(b, ew, enc, warnings)
    if pt is not None:
        doc["patient"] = pt
        paths["patient"] = pt_where
    doc.update(fhir_patient.providers(b, ew, enc, warnings))
    doc["administrations"] = []
    for i, (adm, _start, apaths) in enumerate(group):
        for key in ("start", "stop"):  # a time on the date of service is written as the contract writes it
            if isinstance(adm.get(key), str) and dos_text and adm[key].startswith(dos_text + "T"):
                adm[key] = adm[key][11:16]
        doc["administrations"].append(adm)
        paths.update({f"administrations[{i}]{rel}": fp for rel, fp in apaths.items()})
    svcs = [s for s, when in services if _belongs(when, g, groups)]
    if svcs:
        doc["services"] = svcs
    na = [item for item, when in others if _belongs(when, g, groups)]
    if na:
        doc["not_administered"] = na
    for key, value in (("clinical_trial", parts.trial(b, warnings)), ("authorizations", parts.authorizations(b, warnings)),
                       ("treatment_plan", parts.plan(b, warnings)),
                       ("evidence", parts.evidence([(w, r) for w, r in b.of("Observation") if id(r) in owned],
                                                   Clock(site.zone() if site is not None else None, _reference_instant(b, enc, owned), warnings)))):
        if value:
            doc[key] = value
    return Mapped(doc, warnings, paths, f"{ew} Encounter/{ident}" + (f" {dos_text}" if n > 1 else ""))


def bundle_to_document(doc: Any, site: Any = None) -> tuple[dict, list[str]]:
    """The one encounter document of a bundle and the mapping warnings (InputError when the
    bundle holds several: use :func:`bundle_to_documents`)."""
    mapped = bundle_to_documents(doc, site)
    if len(mapped) > 1:
        labels = "; ".join(m.label for m in mapped)
        raise InputError([("Bundle", f"the bundle holds {len(mapped)} encounters to code ({labels}): one claim per Encounter "
                           "and date of service; code them with `oncologic batch --from fhir`")], warnings=mapped[0].warnings)
    return mapped[0].document, mapped[0].warnings


def validate_mapped(m: Mapped, source: str = "", site: Any = None) -> Loaded:
    """Validate a mapped encounter; errors name FHIR element paths, and carry the mapping warnings."""
    warnings = [f"fhir: {w}" for w in m.warnings]
    try:
        loaded = validate(m.document, source, site)
    except InputError as exc:
        raise InputError([(m.fhir_path(p), msg) for p, msg in exc.problems], source, warnings=warnings) from None
    loaded.warnings = warnings + loaded.warnings
    return loaded


def load_bundles(path: str, site: Any = None) -> list[Loaded]:
    """Every encounter of a FHIR R4 Bundle file (JSON), validated."""
    text, source = read_text(path)
    doc = parse_document(text, source)
    try:
        mapped = bundle_to_documents(doc, site)
    except InputError as exc:
        raise InputError(exc.problems, source, warnings=[f"fhir: {w}" for w in exc.warnings]) from None
    return [validate_mapped(m, source, site) for m in mapped]


def load_bundle(path: str, site: Any = None) -> Loaded:
    """Read a FHIR R4 Bundle (JSON) holding one encounter and validate it (``site``: the site
    configuration, :func:`oncologic.formats.site.load_site`)."""
    text, source = read_text(path)
    doc = parse_document(text, source)
    try:
        mapped = bundle_to_documents(doc, site)
        if len(mapped) > 1:
            bundle_to_document(doc, site)  # raises the "several encounters" error
    except InputError as exc:
        raise InputError(exc.problems, source, warnings=[f"fhir: {w}" for w in exc.warnings]) from None
    return validate_mapped(mapped[0], source, site)

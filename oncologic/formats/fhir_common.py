"""Shared pieces of the FHIR R4 reader: code systems, the bundle index, element helpers and the
clock that turns FHIR instants into the clinic's local time."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Optional

EXT = "https://oncologic.dev/fhir/StructureDefinition/"
ROUTE_SYSTEM = "https://oncologic.dev/fhir/CodeSystem/route"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
NDC = "http://hl7.org/fhir/sid/ndc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS_SYSTEMS = ("https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
                 "urn:oid:2.16.840.1.113883.6.285", CPT)
POS_SYSTEM = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
SOPT_SYSTEMS = ("https://nahdo.org/sopt", "urn:oid:2.16.840.1.113883.3.221.5")
NCT_SYSTEMS = ("https://clinicaltrials.gov", "http://clinicaltrials.gov")
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"


class Bundle:
    """The entries of a Bundle with their element paths, and reference resolution."""

    def __init__(self, doc: dict, warnings: list[str]):
        self.warnings = warnings
        self.entries: list[tuple[str, dict]] = []  # (bundle path, resource)
        self.by_ref: dict[str, tuple[str, dict]] = {}
        for i, entry in enumerate(doc.get("entry") or []):
            where = f"Bundle.entry[{i}].resource"
            res = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
                warnings.append(f"Bundle.entry[{i}]: no resource, skipped")
                continue
            self.entries.append((where, res))
            rtype, rid = res["resourceType"], res.get("id")
            if isinstance(rid, str) and rid:
                self.by_ref[f"{rtype}/{rid}"] = (where, res)
            full = entry.get("fullUrl")
            if isinstance(full, str):
                self.by_ref[full] = (where, res)

    def of(self, rtype: str) -> list[tuple[str, dict]]:
        return [(w, r) for w, r in self.entries if r["resourceType"] == rtype]

    def resolve(self, ref: Any, holder: Optional[dict] = None, holder_path: str = "") -> Optional[tuple[str, dict]]:
        if not isinstance(ref, dict) or not isinstance(ref.get("reference"), str):
            return None
        text = ref["reference"]
        if text.startswith("#") and holder is not None:
            for k, c in enumerate(holder.get("contained") or []):
                if isinstance(c, dict) and c.get("id") == text[1:]:
                    return (f"{holder_path}.contained[{k}]", c)
            return None
        if text in self.by_ref:
            return self.by_ref[text]
        tail = "/".join(text.rstrip("/").split("/")[-2:])
        return self.by_ref.get(tail)


def ext(res: Any, name: str) -> Any:
    """The value of oncologic's own extension ``name`` on a resource or element."""
    for e in (res.get("extension") if isinstance(res, dict) else None) or []:
        if isinstance(e, dict) and e.get("url") == EXT + name:
            for key, value in e.items():
                if key.startswith("value"):
                    return value
    return None


def ext_json(res: Any, name: str) -> Any:
    value = ext(res, name)
    if isinstance(value, str) and name in ("container", "discarded", "billing_grid", "modifications"):
        try:
            return json.loads(value)
        except ValueError:
            return value  # left as text: validation names the field
    return value


def codings(concept: Any) -> list[dict]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def code(concept: Any, systems: tuple[str, ...] | str) -> Optional[str]:
    systems = (systems,) if isinstance(systems, str) else systems
    for c in codings(concept):
        if c.get("system") in systems and c.get("code"):
            return str(c["code"])
    return None


def text_of(concept: Any) -> Optional[str]:
    """A concept's text, else the first display of its codings."""
    if not isinstance(concept, dict):
        return None
    if isinstance(concept.get("text"), str) and concept["text"].strip():
        return concept["text"].strip()
    return next((c["display"] for c in codings(concept) if isinstance(c.get("display"), str)), None)


def day(text: Any) -> Optional[str]:
    return text[:10] if isinstance(text, str) and len(text) >= 10 else None


def parse_instant(text: Any) -> Optional[dt.datetime]:
    """A FHIR dateTime with a time part (aware when it has an offset), else None."""
    if not isinstance(text, str) or len(text) <= 10:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class Clock:
    """FHIR instants as the clinic's local clock time.

    With a site time zone every instant with an offset is converted to it. Without one, the
    clinic's offset is the one the encounter's own start carries (else the first instant's), and
    an instant written with another offset is converted to it with a warning: offsets are never
    dropped and never mixed silently. An instant without an offset is read as local time."""

    def __init__(self, zone: Any, reference: Optional[dt.datetime], warnings: list[str]):
        self.zone = zone
        self.offset = reference.utcoffset() if reference is not None and reference.tzinfo else None
        self.warnings = warnings

    def local(self, text: Any, where: str) -> Optional[dt.datetime]:
        moment = parse_instant(text)
        if moment is None or moment.tzinfo is None:
            return moment
        if self.zone is not None:
            return moment.astimezone(self.zone).replace(tzinfo=None)
        if self.offset is None:
            self.offset = moment.utcoffset()
        if moment.utcoffset() != self.offset:
            target = dt.timezone(self.offset)
            self.warnings.append(f"{where}: {text} has another UTC offset than the encounter ({_offset(self.offset)}); "
                                 f"converted to {_offset(self.offset)} (give time_zone in the site file to name the clinic's zone)")
            return moment.astimezone(target).replace(tzinfo=None)
        return moment.replace(tzinfo=None)


def _offset(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def iso_minutes(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="minutes")

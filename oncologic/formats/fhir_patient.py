"""FHIR R4 ``Patient`` and ``Practitioner`` -> the contract's ``patient``, ``rendering_provider``
and ``attending_provider`` blocks (demographics for the 837; the rules never read them).

Read in the US Core Patient shape (name, birthDate, gender, address, identifier):

- the Patient is the one ``Encounter.subject`` names, else the only Patient of the bundle;
- ``name``: the ``official`` one, else ``usual``, else the first that has not ended
  (``period.end``) and is not ``old``; ``family`` -> ``name.last``, ``given[0]`` -> ``first``,
  the other given names -> ``middle``, ``suffix[0]`` -> ``suffix``;
- ``birthDate`` (a full date; a partial one such as ``1951`` cannot go on a claim);
- ``gender``: male -> M, female -> F, other/unknown -> U;
- ``address``: the ``home`` one (else the first) that has not ended and is not ``billing``-only
  or ``temp``; ``line``, ``city``, ``state`` (two letters), ``postalCode`` (US ZIP);
- ``identifier`` whose type is v2-0203 ``MB`` (member number) or ``MC`` (Medicare number), or
  whose system names Medicare (MBI) -> ``member_id`` (``Coverage.subscriberId`` stays the payer's
  member id and is used when the patient has none).

Providers: ``Encounter.participant[]`` whose ``type`` is v3-ParticipationType ``ATND``
(attender) -> ``attending_provider``; ``PPRF`` (primary performer) or ``PART``/``SPRF`` when
no primary one -> ``rendering_provider``; the participant's ``individual`` (a Practitioner, or
a PractitionerRole's ``practitioner``) with an identifier of system
``http://hl7.org/fhir/sid/us-npi`` and a name.

What cannot be used becomes a warning naming the element and the block is left out (a claim
is still coded; the 837 writer then says what it misses). Nothing here is ever rejected.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from .fhir_common import Bundle, codings

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_GENDER = {"male": "M", "female": "F", "other": "U", "unknown": "U"}


def _ended(item: dict) -> bool:
    period = item.get("period")
    return isinstance(period, dict) and isinstance(period.get("end"), str)


def _name(names: Any, where: str, warnings: list[str]) -> Optional[dict]:
    if not isinstance(names, list):
        return None
    usable = [(i, n) for i, n in enumerate(names) if isinstance(n, dict) and n.get("use") != "old" and not _ended(n)]
    if not usable:
        return None
    rank = {"official": 0, "usual": 1}
    i, n = min(usable, key=lambda t: (rank.get(t[1].get("use"), 2), t[0]))
    family = n.get("family")
    given = [g for g in n.get("given") or [] if isinstance(g, str) and g.strip()]
    if not isinstance(family, str) or not family.strip():
        text = n.get("text")
        if isinstance(text, str) and len(text.split()) >= 2:  # "Jane Q Doe": the last word is the family name
            parts = text.split()
            family, given = parts[-1], parts[:-1]
            warnings.append(f"{where}.name[{i}]: no family name; read from the text {text!r}")
        else:
            warnings.append(f"{where}.name[{i}]: no family name")
            return None
    out: dict[str, Any] = {"last": family.strip()}
    if given:
        out["first"] = given[0].strip()
    if len(given) > 1:
        out["middle"] = " ".join(g.strip() for g in given[1:])
    suffix = [s for s in n.get("suffix") or [] if isinstance(s, str) and s.strip()]
    if suffix:
        out["suffix"] = suffix[0].strip()
    return out


def _address(addresses: Any, where: str, warnings: list[str]) -> Optional[dict]:
    if not isinstance(addresses, list):
        return None
    usable = [(i, a) for i, a in enumerate(addresses)
              if isinstance(a, dict) and a.get("use") not in ("old", "temp", "billing") and not _ended(a)
              and a.get("type") != "postal"]
    usable = usable or [(i, a) for i, a in enumerate(addresses) if isinstance(a, dict) and not _ended(a)]
    if not usable:
        return None
    i, a = min(usable, key=lambda t: (0 if t[1].get("use") == "home" else 1, t[0]))
    here = f"{where}.address[{i}]"
    lines = [x.strip() for x in a.get("line") or [] if isinstance(x, str) and x.strip()]
    city, state, zip_ = a.get("city"), a.get("state"), a.get("postalCode")
    problems = []
    if not lines:
        problems.append("no line")
    if not isinstance(city, str) or not city.strip():
        problems.append("no city")
    if not isinstance(state, str) or not re.fullmatch(r"[A-Za-z]{2}", state.strip()):
        problems.append(f"state {state!r} is not a two-letter code")
    if not isinstance(zip_, str) or not re.fullmatch(r"[0-9]{5}(?:-?[0-9]{4})?", zip_.strip()):
        problems.append(f"postalCode {zip_!r} is not a US ZIP code")
    if problems:
        warnings.append(f"{here}: {'; '.join(problems)}: the address is left out of the patient block")
        return None
    return {"lines": lines[:2], "city": city.strip(), "state": state.strip().upper(), "postal_code": zip_.strip()}


def _member_id(identifiers: Any) -> Optional[str]:
    for ident in identifiers if isinstance(identifiers, list) else []:
        if not isinstance(ident, dict) or not isinstance(ident.get("value"), str) or not ident["value"].strip():
            continue
        types = {c.get("code") for c in codings(ident.get("type")) if c.get("system") in (V2_0203, None)}
        system = ident.get("system") if isinstance(ident.get("system"), str) else ""
        if types & {"MB", "MC"} or "medicare" in system.lower() or system.lower().endswith("/mbi"):
            return ident["value"].strip()
    return None


def _the_patient(b: Bundle, ew: str, enc: dict, warnings: list[str]) -> Optional[tuple[str, dict]]:
    found = b.resolve(enc.get("subject"), enc, ew)
    if found is not None and found[1].get("resourceType") == "Patient":
        return found
    patients = b.of("Patient")
    if len(patients) == 1:
        return patients[0]
    if len(patients) > 1:
        warnings.append(f"{ew}.subject: names no Patient of the bundle, which holds {len(patients)}; no patient block")
    return None


def patient(b: Bundle, ew: str, enc: dict, warnings: list[str]) -> tuple[Optional[dict], Optional[str]]:
    """The contract's ``patient`` block and the Patient's element path (None, None without one)."""
    found = _the_patient(b, ew, enc, warnings)
    if found is None:
        return None, None
    where, res = found
    if not any(res.get(k) for k in ("name", "birthDate", "address", "gender")):
        return None, None  # a bare Patient: no demographics to map (the 837 writer says what it misses)
    name = _name(res.get("name"), where, warnings)
    birth = res.get("birthDate")
    if name is None:
        warnings.append(f"{where}.name: no usable name; the patient block is left out (the 837 needs it)")
        return None, None
    if not isinstance(birth, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", birth):
        warnings.append(f"{where}.birthDate: {birth!r} is not a full date; the patient block is left out (the 837 needs it)")
        return None, None
    out: dict[str, Any] = {"name": name, "birth_date": birth}
    gender = res.get("gender")
    if isinstance(gender, str) and gender in _GENDER:
        out["sex"] = _GENDER[gender]
    address = _address(res.get("address"), where, warnings)
    if address is not None:
        out["address"] = address
    member = _member_id(res.get("identifier"))
    if member:
        out["member_id"] = member
    return out, where


def _npi_of(res: dict) -> Optional[str]:
    for ident in res.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("system") == NPI_SYSTEM and isinstance(ident.get("value"), str):
            return ident["value"].strip()
    return None


def providers(b: Bundle, ew: str, enc: dict, warnings: list[str]) -> dict[str, dict]:
    """``rendering_provider`` / ``attending_provider`` from ``Encounter.participant``."""
    from ..model import npi_valid

    by_role: dict[str, tuple[str, dict]] = {}
    for i, part in enumerate(enc.get("participant") or []):
        if not isinstance(part, dict):
            continue
        here = f"{ew}.participant[{i}]"
        roles = {c.get("code") for t in part.get("type") or [] for c in codings(t) if c.get("system") in (PARTICIPATION, None)}
        if not roles & {"ATND", "PPRF", "SPRF", "PART"}:
            continue
        found = b.resolve(part.get("individual"), enc, ew)
        if found is not None and found[1].get("resourceType") == "PractitionerRole":
            found = b.resolve(found[1].get("practitioner"), found[1], found[0])
        if found is None or found[1].get("resourceType") != "Practitioner":
            warnings.append(f"{here}.individual: no Practitioner in the bundle; not used as a provider")
            continue
        pw, prac = found
        npi = _npi_of(prac)
        name = _name(prac.get("name"), pw, warnings)
        if npi is None or not npi_valid(npi) or name is None:
            if npi is None:
                why = "no NPI identifier"
            else:
                why = f"NPI {npi!r} fails the check digit" if not npi_valid(npi) else "no name"
            warnings.append(f"{pw}: {why}; not used as a provider")
            continue
        block = {"npi": npi, "name": name}
        for role in ("ATND", "PPRF", "SPRF", "PART"):
            if role in roles:
                by_role.setdefault(role, (pw, block))
    out: dict[str, dict] = {}
    if "ATND" in by_role:
        out["attending_provider"] = by_role["ATND"][1]
    for role in ("PPRF", "SPRF", "PART"):
        if role in by_role:
            out["rendering_provider"] = by_role[role][1]
            break
    return out

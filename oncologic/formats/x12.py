"""X12 005010 837 claims: write the engine's claim as an 837P (office) or 837I (facility), and read
the service lines of a posted 837 back (for ``oncologic audit``).

Nothing here decides a code. The lines, units, modifiers, NDCs, notes and diagnoses come from the
:class:`~oncologic.model.Claim`; the revenue code of a facility line comes from the claim data the
encodings emit (``claim_data["revenue_code"]``, see ``encodings/claim/revenue.lp``); condition codes
and the clinical-trial number come from claim data too. What the engine cannot know (submitter,
receiver, billing provider, NPI, tax id, patient demographics, charge amounts) comes from a small
config file (TOML, YAML or JSON); every field has a documented default (``docs/formats.md``).

Segment layout (005010X222A1 professional, 005010X223A2 institutional)::

    ISA GS ST BHT  1000A NM1*41 PER  1000B NM1*40
    2000A HL*1**20*1  2010AA NM1*85 N3 N4 REF*EI
    2000B HL*2*1*22*0 SBR  2010BA NM1*IL N3 N4 DMG  2010BB NM1*PR
    2300 CLM [DTP*434 CL1 (837I)] [REF*P4] [NTE] HI*ABK/ABF [HI*BG] [2310A NM1*71 (837I)]
    2400 LX SV1|SV2 DTP*472 [NTE]  2410 LIN*N4 CTP
    SE GE IEA

Untrusted strings (ids, names, notes) never break the interchange: the delimiter characters are
replaced by spaces and lengths are cut to the element's maximum.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional

from ..model import Claim, Encounter, npi_valid

ELEMENT = "*"
COMPONENT = ":"
REPETITION = "^"
SEGMENT = "~"

# SBR09 claim filing indicator by payer type (X12 code list; institutional Medicare claims use MA)
_FILING = {
    ("P", "medicare"): "MB",
    ("I", "medicare"): "MA",
    ("P", "medicare_advantage"): "16",
    ("I", "medicare_advantage"): "16",
    ("P", "medicaid"): "MC",
    ("I", "medicaid"): "MC",
    ("P", "commercial"): "CI",
    ("I", "commercial"): "CI",
}


class X12Error(ValueError):
    """The claim cannot be written as an 837 (a config value is missing or malformed)."""


# ---------------------------------------------------------------------------------------------
# config


@dataclass
class Party:
    name: str
    id: str


@dataclass
class X12Config:
    """Envelope values the engine cannot know. Defaults are placeholders for a test interchange."""

    sender_qualifier: str = "ZZ"
    sender_id: str = "ONCOLOGIC"
    receiver_qualifier: str = "ZZ"
    receiver_id: str = "CLEARINGHOUSE"
    usage: str = "T"  # ISA15: T test, P production
    control_number: int = 1
    created: Optional[str] = None  # "2026-03-05T10:15"; default: the date of service at 00:00
    submitter_name: str = "ONCOLOGIC SUBMITTER"
    submitter_id: str = "ONCOLOGIC"
    submitter_contact: str = "BILLING OFFICE"
    submitter_phone: str = "5555550100"
    receiver_name: str = "CLEARINGHOUSE"
    billing_name: str = "ONCOLOGY PRACTICE"
    billing_npi: str = "1234567893"  # a check-digit-valid placeholder NPI
    billing_tax_id: str = "000000000"
    billing_address: str = "1 MAIN STREET"
    billing_city: str = "ANYTOWN"
    billing_state: str = "MD"
    billing_zip: str = "212010000"
    counter_file: Optional[str] = None  # a file holding the last control number used (ISA13/GS06)
    attending_last: Optional[str] = None  # 837I 2310A when the encounter names no attending provider
    attending_first: Optional[str] = None
    attending_npi: Optional[str] = None
    rendering_last: Optional[str] = None  # 837P 2310B when the encounter names no rendering provider
    rendering_first: Optional[str] = None
    rendering_npi: Optional[str] = None
    admission_type: str = "3"  # CL101 (UB-04 FL14): 3 elective, a scheduled visit
    patient_status: str = "01"  # CL103 (UB-04 FL17): 01 discharged to home
    payer_name: Optional[str] = None  # default: the encounter's payer name
    payer_id: str = "PAYERID"
    # placeholders, written only with placeholders=True (--placeholders): a test interchange
    subscriber_last: str = "PATIENT"
    subscriber_first: str = "UNKNOWN"
    subscriber_dob: str = "19500101"
    subscriber_sex: str = "U"
    subscriber_address: str = "UNKNOWN"
    subscriber_city: str = "ANYTOWN"
    subscriber_state: str = "MD"
    subscriber_zip: str = "212010000"
    charges: dict[str, Decimal] = field(default_factory=dict)  # per-unit charge by code; default 0
    revenue_codes: dict[str, str] = field(default_factory=dict)  # facility lines the engine maps to none
    # a line that draws on several NDCs: "split" = one 2400 loop per NDC (each with its LIN/CTP and
    # its share of the units; loop 2410 occurs once per 2400 in the 837P/837I TR3s), "note" = one
    # 2400 with the first NDC and the others in the note (Palmetto JM, domain-rules 7.21)
    ndc_multiple: str = "split"


# the provider written with placeholders=True when neither the encounter nor the config names one
PLACEHOLDER_PROVIDER = ("PHYSICIAN", "PLACEHOLDER", "1234567893")

_SECTIONS = {
    "interchange": {"sender_qualifier", "sender_id", "receiver_qualifier", "receiver_id", "usage", "control_number", "created",
                    "counter_file"},
    "rendering_provider": {"last_name": "rendering_last", "first_name": "rendering_first", "npi": "rendering_npi"},
    "claim": {"admission_type": "admission_type", "patient_status": "patient_status"},
    "submitter": {"name": "submitter_name", "id": "submitter_id", "contact": "submitter_contact", "phone": "submitter_phone"},
    "receiver": {"name": "receiver_name"},
    "billing_provider": {"name": "billing_name", "npi": "billing_npi", "tax_id": "billing_tax_id", "address": "billing_address",
                         "city": "billing_city", "state": "billing_state", "zip": "billing_zip"},
    "attending": {"last_name": "attending_last", "first_name": "attending_first", "npi": "attending_npi"},
    "payer": {"name": "payer_name", "id": "payer_id"},
    "lines": {"ndc_multiple": "ndc_multiple"},
    "subscriber": {"last_name": "subscriber_last", "first_name": "subscriber_first", "birth_date": "subscriber_dob",
                   "sex": "subscriber_sex", "address": "subscriber_address", "city": "subscriber_city",
                   "state": "subscriber_state", "zip": "subscriber_zip"},
}


def _service_lines(lines, charges, cfg: "X12Config"):
    """(line, charge) per 2400 loop: a claim line that draws on several NDCs (Line.ndc_items) is one
    loop per NDC with a share of the units, so that each NDC has its own LIN/CTP; an NDC whose share
    is 0 units stays in the note of the line's first loop."""
    for ln, charge in zip(lines, charges):
        items = [it for it in (ln.ndc_items or []) if it.units > 0]
        if cfg.ndc_multiple != "split" or len(items) < 2:
            yield ln, charge
            continue
        per_unit = charge / ln.units if ln.units else Decimal(0)
        note = ln.note
        for it in items:
            if note:
                note = note.replace(f"also NDC {it.ndc}", "").replace("  ", " ").strip(" ;") or None
        for it in items:
            yield ln.model_copy(update={"units": it.units, "ndc": it.ndc, "ndc_quantity": it.quantity,
                                        "note": note}), per_unit * it.units


def load_config(path: Optional[str | Path]) -> X12Config:
    """Read the envelope config (``.toml``, ``.yaml``/``.yml`` or ``.json``); None gives the defaults."""
    cfg = X12Config()
    if path is None:
        return cfg
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise X12Error(f"{p}: cannot read config: {exc.strerror}") from None
    try:
        if p.suffix == ".toml":
            try:
                import tomllib  # type: ignore[import-not-found]
            except ImportError:  # pragma: no cover - Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            data = tomllib.loads(text)
        elif p.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parser error is a bad config
        raise X12Error(f"{p}: not a valid config file: {exc}") from None
    if not isinstance(data, dict):
        raise X12Error(f"{p}: the config is a mapping of sections")
    for section, value in data.items():
        where = f"{p}: {section}"
        if section in ("charges", "revenue_codes"):
            if not isinstance(value, dict):
                raise X12Error(f"{where}: a mapping of code -> value")
            for code, v in value.items():
                if section == "charges":
                    try:
                        amount = Decimal(str(v))
                    except Exception:  # noqa: BLE001
                        raise X12Error(f"{where}.{code}: not an amount") from None
                    if amount < 0:
                        raise X12Error(f"{where}.{code}: a charge cannot be negative")
                    cfg.charges[str(code)] = amount
                else:
                    if not re.fullmatch(r"[0-9]{4}", str(v)):
                        raise X12Error(f"{where}.{code}: a revenue code is 4 digits")
                    cfg.revenue_codes[str(code)] = str(v)
            continue
        if section not in _SECTIONS or not isinstance(value, dict):
            raise X12Error(f"{where}: unknown section (known: {', '.join(sorted([*_SECTIONS, 'charges', 'revenue_codes']))})")
        names = _SECTIONS[section]
        for key, v in value.items():
            attr = key if isinstance(names, set) and key in names else (names.get(key) if isinstance(names, dict) else None)
            if attr is None:
                raise X12Error(f"{where}.{key}: unknown field")
            if attr == "control_number":
                if not isinstance(v, int) or not 0 < v < 10**9:
                    raise X12Error(f"{where}.{key}: an integer from 1 to 999999999")
            elif attr == "usage" and v not in ("T", "P"):
                raise X12Error(f"{where}.{key}: T (test) or P (production)")
            elif attr == "ndc_multiple" and v not in ("split", "note"):
                raise X12Error(f"{where}.{key}: split (one 2400 loop per NDC) or note (first NDC, others in the note)")
            elif v is not None and not isinstance(v, (str, int)):
                raise X12Error(f"{where}.{key}: a string")
            setattr(cfg, attr, v if attr == "control_number" or v is None else str(v))
    if cfg.created is not None and cfg.created != "now":
        try:
            dt.datetime.fromisoformat(cfg.created)
        except ValueError:
            raise X12Error(f"{p}: interchange.created: an ISO datetime such as 2026-03-05T10:15, or \"now\"") from None
    for section, attr in (("attending", "attending_npi"), ("rendering_provider", "rendering_npi")):
        value = getattr(cfg, attr)
        if value is not None and not npi_valid(value):
            raise X12Error(f"{p}: {section}.npi: {value!r} is not an NPI (10 digits with a valid check digit)")
    if not re.fullmatch(r"[1-59]", cfg.admission_type):
        raise X12Error(f"{p}: claim.admission_type: a UB-04 priority (type) of visit code: 1 emergency, 2 urgent, 3 elective, "
                       "4 newborn, 5 trauma, 9 information not available")
    if not re.fullmatch(r"[0-9]{2}", cfg.patient_status):
        raise X12Error(f"{p}: claim.patient_status: a two-digit UB-04 patient discharge status code (01: home)")
    if cfg.counter_file is not None and not Path(cfg.counter_file).is_absolute():
        cfg.counter_file = str(p.parent / cfg.counter_file)  # relative to the config file
    return cfg


# ---------------------------------------------------------------------------------------------
# control numbers


def next_control_number(counter_file: str | Path, start: int = 1) -> int:
    """The next interchange control number from a counter file (which holds the last number
    used), written back before returning, under an exclusive lock so that two writers never get
    the same number. A missing or empty file starts at ``start``; after 999999999 it wraps to 1."""
    import fcntl
    import os

    path = Path(counter_file)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise X12Error(f"{path}: cannot open the control-number counter file: {exc.strerror}") from None
    with os.fdopen(fd, "r+", encoding="ascii") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        text = fh.read().strip()
        if text == "":
            number = start
        elif text.isdigit() and 0 < int(text) < 10**9:
            number = int(text) + 1 if int(text) < 10**9 - 1 else 1
        else:
            raise X12Error(f"{path}: the control-number counter file holds {text[:20]!r}, not a number from 1 to 999999999")
        fh.seek(0)
        fh.truncate()
        fh.write(f"{number}\n")
        fh.flush()
        os.fsync(fh.fileno())
    return number


# ---------------------------------------------------------------------------------------------
# writing


def clean(value: Any, max_len: int = 60) -> str:
    """A free-text value made safe for an X12 element: delimiters and control characters become
    spaces, runs of spaces collapse, upper case, cut to ``max_len``."""
    text = re.sub(r"[~*:^\x00-\x1f\x7f]", " ", str(value))
    text = re.sub(r"[^\x20-\x7e]", "?", text)
    text = re.sub(r" +", " ", text).strip().upper()
    return text[:max_len].rstrip()


def _amount(d: Decimal) -> str:
    q = d.quantize(Decimal("0.01"))
    text = format(q.normalize(), "f")
    return text


def _num(value: Any) -> str:
    d = Decimal(str(value))
    return format(d.normalize(), "f") if d != d.to_integral_value() else str(int(d))


def _dx(code: str) -> str:
    return code.replace(".", "")


def revenue_map(claim: Claim) -> dict[str, str]:
    """Code -> revenue code from the claim data the encodings emit (``rev(Code, Revenue)``)."""
    out: dict[str, str] = {}
    for value in claim.claim_data.get("revenue_code", []):
        m = re.fullmatch(r"rev\(\s*([0-9A-Z]{5})\s*,\s*([0-9]{4})\s*\)", value.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def trial_number(claim: Claim) -> Optional[str]:
    """The 8-digit clinical-trial identifier the encodings put in claim data, if any."""
    for key in ("trial_number", "clinical_trial_number", "nct"):
        for value in claim.claim_data.get(key, []):
            m = re.search(r"([0-9]{8})", value)
            if m:
                return m.group(1)
    return None


def condition_codes(claim: Claim) -> list[str]:
    out: list[str] = []
    for key in ("condition_code", "condition_codes"):
        for value in claim.claim_data.get(key, []):
            v = value.strip().upper()
            if re.fullmatch(r"[0-9A-Z]{2}", v) and v not in out:
                out.append(v)
    return out


def claim_diagnoses(claim: Claim, enc: Encounter) -> list[str]:
    """The claim's diagnosis list (HI): the encounter's diagnoses, then any line diagnosis not in it."""
    out = list(enc.diagnoses)
    for ln in claim.lines:
        for d in ln.diagnoses:
            if d not in out:
                out.append(d)
    return out


class _Writer:
    def __init__(self) -> None:
        self.segments: list[str] = []

    def seg(self, *elements: Any) -> None:
        parts = ["" if e is None else str(e) for e in elements]
        while len(parts) > 1 and parts[-1] == "":
            parts.pop()
        self.segments.append(ELEMENT.join(parts))


def line_charges(claim: Claim, cfg: X12Config, zero_charges: bool = False) -> list[Decimal]:
    """The charge of each line (SV102/SV203): the line's own ``charge`` (the site's charge master,
    computed with the claim), else the config's per-unit ``[charges]`` x units. A line with
    neither is an error unless ``zero_charges`` (then 0.00): an 837 never bills $0.00 silently."""
    out: list[Decimal] = []
    missing: list[str] = []
    for ln in claim.lines:
        own = getattr(ln, "charge", None)
        if own is not None:
            try:
                out.append(Decimal(str(own)))
            except Exception:  # noqa: BLE001
                raise X12Error(f"lines[{ln.line - 1}].charge: {own!r} is not an amount") from None
        elif ln.code in cfg.charges:
            out.append(cfg.charges[ln.code] * ln.units)
        else:
            missing.append(f"line {ln.line} ({ln.code})")
            out.append(Decimal(0))
    if missing and not zero_charges:
        raise X12Error(
            f"no charge for {', '.join(missing)}: the 837 would bill $0.00. Give the site's charge master (`charges` in the "
            "site file, docs/site.md) or per-unit amounts under [charges] in the X12 config, or pass --zero-charges to "
            "write 0.00 on purpose (a test interchange)"
        )
    return out


@dataclass
class _Person:
    last: str
    first: str = ""
    middle: str = ""
    suffix: str = ""


def _patient(enc: Encounter, cfg: X12Config, placeholders: bool) -> dict[str, Any]:
    """The 2010BA values: from the encounter's ``patient`` block; the config's [subscriber]
    placeholders only with ``placeholders``; otherwise an error naming what is missing."""
    pt = getattr(enc, "patient", None)
    # the payer's member id first (a Medicare Advantage plan's id, not the patient's MBI), else the patient's
    member = (enc.payer.member_id if enc.payer and enc.payer.member_id else None) or (pt.member_id if pt is not None else None)
    missing: list[str] = []
    if pt is None:
        missing.append("patient (name, birth_date, sex, address)")
    elif pt.address is None:
        missing.append("patient.address")
    if not member:
        missing.append("payer.member_id or patient.member_id")
    if missing and not placeholders:
        raise X12Error(
            f"the 837 needs the patient's demographics; missing: {'; '.join(missing)}. Give them in the encounter's "
            "`patient` block (from FHIR: the Patient resource and Coverage.subscriberId), or pass --placeholders to write "
            "the config's [subscriber] placeholders (a test interchange, never a submission)"
        )
    out: dict[str, Any] = {
        "name": _Person(cfg.subscriber_last, cfg.subscriber_first), "dob": cfg.subscriber_dob, "sex": cfg.subscriber_sex,
        "lines": [cfg.subscriber_address], "city": cfg.subscriber_city, "state": cfg.subscriber_state, "zip": cfg.subscriber_zip,
        "member": member or "UNKNOWN",
    }
    if pt is not None:
        out["name"] = _Person(pt.name.last, pt.name.first or "", pt.name.middle or "", pt.name.suffix or "")
        out["dob"] = pt.birth_date.strftime("%Y%m%d")
        out["sex"] = pt.sex
        if pt.address is not None:
            out.update(lines=list(pt.address.lines), city=pt.address.city, state=pt.address.state, zip=pt.address.postal_code)
    return out


def _provider(enc: Encounter, cfg: X12Config, kind: str, placeholders: bool) -> tuple[_Person, str]:
    """The rendering (837P 2310B) or attending (837I 2310A) provider: the encounter's
    ``rendering_provider``/``attending_provider``, else the config's, else an error (placeholder
    only with ``placeholders``)."""
    order = ("rendering_provider", "attending_provider") if kind == "P" else ("attending_provider", "rendering_provider")
    for name in order:
        prov = getattr(enc, name, None)
        if prov is not None:
            return _Person(prov.name.last, prov.name.first or "", prov.name.middle or "", prov.name.suffix or ""), prov.npi
    prefix = "rendering" if kind == "P" else "attending"  # the config's section of that role only
    npi, last = getattr(cfg, f"{prefix}_npi"), getattr(cfg, f"{prefix}_last")
    if npi and last:
        return _Person(last, getattr(cfg, f"{prefix}_first") or ""), npi
    if placeholders:
        return _Person(PLACEHOLDER_PROVIDER[0], PLACEHOLDER_PROVIDER[1]), PLACEHOLDER_PROVIDER[2]
    role, field_name, section = (("rendering", "rendering_provider", "[rendering_provider]") if kind == "P"
                                 else ("attending", "attending_provider", "[attending]"))
    raise X12Error(
        f"the 837{kind} needs the {role} provider (NPI and name): give the encounter's `{field_name}` "
        f"({{npi, name: {{last, first}}}}) or {section} last_name, first_name and npi in the X12 config, "
        "or pass --placeholders (a test interchange)"
    )


# NOC description values: a label that takes the next value with it, and units that follow a number
_NOTE_LABELS = {"NDC", "DISCARDED", "MANUFACTURER", "ALSO"}
_NOTE_UNITS = {"MG", "MCG", "G", "UNITS", "UNIT", "ML", "MCI", "UCI", "IU", "MEQ", "MMOL"}


def note_values(note: str) -> list[str]:
    """A line note as the values it is made of, so that it can be split without cutting one:
    the drug name, ``NDC <11 digits>``, ``<amount> <unit>``, ``discarded <amount> <unit>``,
    ``manufacturer <name>``; notes joined by ``;`` stay separate values."""
    values: list[str] = []
    for part in [p.strip() for p in note.split(";") if p.strip()]:
        tokens = part.split()
        i = 0
        cur: list[str] = []
        while i < len(tokens):
            t, up = tokens[i], tokens[i].upper()
            is_num = bool(re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", t))
            if up in _NOTE_LABELS or is_num:
                if cur:
                    values.append(" ".join(cur))
                    cur = []
                group = [t]
                i += 1
                if up == "ALSO" and i < len(tokens) and tokens[i].upper() == "NDC":
                    group.append(tokens[i])
                    i += 1
                if up == "MANUFACTURER":  # the name runs to the next label
                    while i < len(tokens) and tokens[i].upper() not in _NOTE_LABELS:
                        group.append(tokens[i])
                        i += 1
                elif not is_num and i < len(tokens):  # NDC / discarded / also NDC: the value that follows
                    group.append(tokens[i])
                    i += 1
                    if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", group[-1]) and i < len(tokens) and tokens[i].upper() in _NOTE_UNITS:
                        group.append(tokens[i])
                        i += 1
                elif is_num and i < len(tokens) and tokens[i].upper() in _NOTE_UNITS:
                    group.append(tokens[i])
                    i += 1
                values.append(" ".join(group))
            else:
                cur.append(t)
                i += 1
        if cur:
            values.append(" ".join(cur))
    return values


def split_note(note: str, first: int = 80) -> tuple[str, str]:
    """The note cut between values: as many whole values as fit in ``first`` characters (SV101-7 /
    SV202-7), and the rest (an NTE). A value is never cut."""
    head: list[str] = []
    rest: list[str] = []
    for value in (clean(v, 1000) for v in note_values(note)):
        if not value:
            continue
        if not rest and len(" ".join([*head, value])) <= first:
            head.append(value)
        else:
            rest.append(value)
    return " ".join(head), " ".join(rest)


def lab_value(value: Any) -> str:
    """A hemoglobin/hematocrit result as Medicare asks for it (MM5699; Palmetto GBA "Reporting
    HCT/HGB levels"): one decimal, further decimals dropped, no leading zeros (26.25 -> 26.2,
    28 -> 28.0)."""
    from decimal import ROUND_DOWN

    d = Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_DOWN)
    return format(d, "f")


def line_test_result(line: Any) -> Optional[tuple[str, str]]:
    """(MEA02 code, value) of the line's ``test_result`` (the ESA rules put the most recent
    hemoglobin or hematocrit on the line: ``code`` R1 hemoglobin / R2 hematocrit, ``value``);
    None without one. A result whose code is neither is an error, not a guess."""
    tr = getattr(line, "test_result", None)
    if tr is None:
        return None
    code = getattr(tr, "code", None)
    if code is None:  # a result given by kind
        code = {"hemoglobin": "R1", "hematocrit": "R2"}.get(str(getattr(tr, "kind", "")))
    if code not in ("R1", "R2"):
        raise X12Error(f"line {line.line} ({line.code}): test result code {code!r} is neither R1 (hemoglobin) nor R2 (hematocrit)")
    try:
        return code, lab_value(tr.value)
    except Exception:  # noqa: BLE001
        raise X12Error(f"line {line.line} ({line.code}): test result value {tr.value!r} is not a number") from None


def _name_elements(p: _Person) -> list[str]:
    return [clean(p.last, 60), clean(p.first, 35), clean(p.middle, 25), "", clean(p.suffix, 10)]


def to_837(claim: Claim, enc: Encounter, cfg: Optional[X12Config] = None, kind: Optional[str] = None, *,
           zero_charges: bool = False, placeholders: bool = False) -> str:
    """The claim as one 005010 837 interchange. ``kind`` is ``"P"`` (837P) or ``"I"`` (837I);
    by default the encounter's setting decides (office -> P, facility -> I).

    Refuses (X12Error) a line without a charge unless ``zero_charges``, and a claim without the
    patient's demographics or the rendering/attending provider unless ``placeholders``."""
    cfg = cfg or X12Config()
    kind = kind or ("I" if claim.setting == "facility" else "P")
    if kind not in ("P", "I"):
        raise X12Error(f"unknown 837 kind {kind!r} (P or I)")
    version = "005010X222A1" if kind == "P" else "005010X223A2"
    if cfg.created == "now":
        created = dt.datetime.now().replace(second=0, microsecond=0)
    else:
        created = dt.datetime.fromisoformat(cfg.created) if cfg.created else dt.datetime.combine(enc.date_of_service, dt.time())
    ctl = cfg.control_number
    dxs = claim_diagnoses(claim, enc)
    if len(dxs) > 12:
        raise X12Error(f"the claim has {len(dxs)} diagnoses; an 837 carries at most 12 in one HI segment")
    revenue = {**revenue_map(claim), **cfg.revenue_codes}
    charges = line_charges(claim, cfg, zero_charges)
    # a line that draws on several NDCs is one 2400 loop per NDC (``_service_lines``)
    service = list(_service_lines(claim.lines, charges, cfg))
    out_lines, charges = [ln for ln, _c in service], [c for _ln, c in service]
    patient = _patient(enc, cfg, placeholders)
    provider, provider_npi = _provider(enc, cfg, kind, placeholders)

    w = _Writer()
    isa = [
        "ISA", "00", " " * 10, "00", " " * 10,
        cfg.sender_qualifier[:2].ljust(2), clean(cfg.sender_id, 15).ljust(15),
        cfg.receiver_qualifier[:2].ljust(2), clean(cfg.receiver_id, 15).ljust(15),
        created.strftime("%y%m%d"), created.strftime("%H%M"), REPETITION, "00501", f"{ctl:09d}", "0", cfg.usage, COMPONENT,
    ]
    w.segments.append(ELEMENT.join(isa))
    w.seg("GS", "HC", clean(cfg.sender_id, 15), clean(cfg.receiver_id, 15), created.strftime("%Y%m%d"), created.strftime("%H%M"), ctl, "X", version)
    st_index = len(w.segments)
    w.seg("ST", "837", "0001", version)
    w.seg("BHT", "0019", "00", clean(claim.encounter, 30) or "CLAIM", created.strftime("%Y%m%d"), created.strftime("%H%M"), "CH")
    # 1000A submitter, 1000B receiver
    w.seg("NM1", "41", "2", clean(cfg.submitter_name, 60), "", "", "", "", "46", clean(cfg.submitter_id, 80))
    w.seg("PER", "IC", clean(cfg.submitter_contact, 60), "TE", re.sub(r"[^0-9]", "", cfg.submitter_phone) or "0000000000")
    w.seg("NM1", "40", "2", clean(cfg.receiver_name, 60), "", "", "", "", "46", clean(cfg.receiver_id, 80))
    # 2000A / 2010AA billing provider
    w.seg("HL", "1", "", "20", "1")
    w.seg("NM1", "85", "2", clean(cfg.billing_name, 60), "", "", "", "", "XX", clean(cfg.billing_npi, 10))
    w.seg("N3", clean(cfg.billing_address, 55))
    w.seg("N4", clean(cfg.billing_city, 30), clean(cfg.billing_state, 2), clean(cfg.billing_zip, 15))
    w.seg("REF", "EI", clean(cfg.billing_tax_id, 9))
    # 2000B subscriber (the patient), 2010BA, 2010BB payer
    payer_type = enc.payer.type if enc.payer and enc.payer.type else "commercial"
    w.seg("HL", "2", "1", "22", "0")
    w.seg("SBR", "P", "18", "", "", "", "", "", "", _FILING[(kind, payer_type)])
    w.seg("NM1", "IL", "1", *_name_elements(patient["name"]), "MI", clean(patient["member"], 80))
    lines_ = [clean(x, 55) for x in patient["lines"] if clean(x, 55)] or ["UNKNOWN"]
    w.seg("N3", *lines_[:2])
    w.seg("N4", clean(patient["city"], 30), clean(patient["state"], 2), re.sub(r"[^0-9A-Z]", "", clean(patient["zip"], 15)))
    w.seg("DMG", "D8", clean(patient["dob"], 8), clean(patient["sex"], 1))
    payer_name = cfg.payer_name or (enc.payer.name if enc.payer and enc.payer.name else "PAYER")
    w.seg("NM1", "PR", "2", clean(payer_name, 60), "", "", "", "", "PI", clean(cfg.payer_id, 80))

    # 2300 claim
    total = sum(charges, Decimal(0))
    claim_id = clean(claim.encounter, 38) or "CLAIM"
    notes: list[tuple[Any, str, str]] = []  # (line, SV1/SV2 description, the rest)
    for ln in out_lines:
        head, rest = split_note(ln.note, 80) if ln.note else ("", "")
        notes.append((ln, head, rest))
    if kind == "P":
        w.seg("CLM", claim_id, _amount(total), "", "", COMPONENT.join(["11", "B", "1"]), "Y", "A", "Y", "Y")
    else:
        w.seg("CLM", claim_id, _amount(total), "", "", COMPONENT.join(["13", "A", "1"]), "", "A", "Y", "Y")
        day = enc.date_of_service.strftime("%Y%m%d")
        last = max([ln.date for ln in claim.lines], default=enc.date_of_service).strftime("%Y%m%d")
        w.seg("DTP", "434", "RD8", f"{day}-{last}")
        # CL101 priority (type) of visit, CL103 patient status (UB-04 FL14, FL17)
        w.seg("CL1", cfg.admission_type, "", cfg.patient_status)
    nct = trial_number(claim)
    if nct:
        w.seg("REF", "P4", nct)
    if kind == "I":  # 837I has no line NTE: what does not fit in SV202-7 goes into the claim's billing note
        rests = [f"LINE {ln.line} {rest}" for ln, _head, rest in notes if rest]
        if rests:
            text = " ".join(rests)
            if len(text) > 80:
                raise X12Error(f"the line descriptions do not fit: '{text}' is longer than the 80 characters of the "
                               "837I billing note (NTE02), and a value is never cut")
            w.seg("NTE", "ADD", text)
    hi = [COMPONENT.join(["ABK" if i == 0 else "ABF", _dx(code)]) for i, code in enumerate(dxs)]
    if kind == "P":
        w.seg("HI", *hi)
    else:  # 837I: the principal diagnosis has its own HI segment, the others follow in another
        w.seg("HI", hi[0])
        if hi[1:]:
            w.seg("HI", *hi[1:])
    if kind == "I":
        # value codes 48 (hemoglobin) / 49 (hematocrit): the most recent result on an ESA line (MM5699)
        values = []
        for ln in claim.lines:
            tr = line_test_result(ln)
            if tr is not None:
                vc = COMPONENT.join(["BE", "48" if tr[0] == "R1" else "49", "", "", tr[1]])
                if vc not in values:
                    values.append(vc)
        if values:
            w.seg("HI", *values[:12])
    ccs = condition_codes(claim)
    if ccs and kind == "I":
        w.seg("HI", *[COMPONENT.join(["BG", c]) for c in ccs[:12]])
    if kind == "I":  # 2310A attending
        w.seg("NM1", "71", "1", *_name_elements(provider), "XX", clean(provider_npi, 10))
    else:  # 2310B rendering
        w.seg("NM1", "82", "1", *_name_elements(provider), "XX", clean(provider_npi, 10))

    # 2400 service lines
    for lx, ((ln, head, rest), charge) in enumerate(zip(notes, charges), start=1):
        w.seg("LX", lx)
        proc = ["HC", ln.code, *[clean(m, 2) for m in ln.modifiers[:4]]]
        if head:
            proc += [""] * (6 - len(proc)) + [head]
        if kind == "P":
            pointers = [str(dxs.index(d) + 1) for d in ln.diagnoses if d in dxs][:4] or ["1"]
            w.seg("SV1", COMPONENT.join(proc), _amount(charge), "UN", ln.units, "", "", COMPONENT.join(pointers))
        else:
            rev = revenue.get(ln.code)
            if rev is None:
                raise X12Error(
                    f"line {ln.line} ({ln.code}): no revenue code. The engine maps only IV administration and drug lines "
                    f"(encodings/claim/revenue.lp); give this code one under revenue_codes in the config file"
                )
            w.seg("SV2", rev, COMPONENT.join(proc), _amount(charge), "UN", ln.units)
        w.seg("DTP", "472", "D8", ln.date.strftime("%Y%m%d"))
        tr = line_test_result(ln)
        if kind == "P" and tr is not None:  # 2400 MEA test result: TR, R1 hemoglobin / R2 hematocrit
            w.seg("MEA", "TR", tr[0], tr[1])
        if kind == "P" and rest:
            if len(rest) > 80:
                raise X12Error(f"line {ln.line} ({ln.code}): the description does not fit in SV101-7 and the line note "
                               f"(80 characters each) without cutting a value: '{rest}' is left over")
            w.seg("NTE", "ADD", rest)
        if ln.ndc:
            w.seg("LIN", "", "N4", ln.ndc)
            if ln.ndc_quantity is None:
                raise X12Error(f"line {ln.line} ({ln.code}): an NDC without a quantity cannot be reported in loop 2410")
            qty = Decimal(str(ln.ndc_quantity.value))
            if ln.ndc_quantity.unit == "UN" and qty != qty.to_integral_value():
                raise X12Error(
                    f"line {ln.line} ({ln.code}): NDC quantity {_num(qty)} UN is a fraction of an item; UN counts whole items "
                    "(vials, syringes), a volume is reported in ML (the NDC quantity rules, docs/formats.md)"
                )
            w.seg("CTP", "", "", "", _num(qty), ln.ndc_quantity.unit)
    count = len(w.segments) - st_index + 1
    w.seg("SE", count, "0001")
    w.seg("GE", "1", ctl)
    w.seg("IEA", "1", f"{ctl:09d}")
    return SEGMENT.join(w.segments) + SEGMENT + "\n"


# ---------------------------------------------------------------------------------------------
# reading a posted 837 (what the audit needs: the service lines)


@dataclass
class PostedLine:
    code: str
    modifiers: list[str]
    units: int
    date: Optional[dt.date] = None
    ndc: Optional[str] = None
    revenue: Optional[str] = None


@dataclass
class PostedClaim:
    claim_id: str
    diagnoses: list[str]
    lines: list[PostedLine]


def split_segments(text: str) -> list[list[str]]:
    """Segments of an interchange as lists of elements, using the delimiters its ISA declares."""
    body = text.lstrip("\ufeff \r\n\t")
    if not body.startswith("ISA") or len(body) < 106:
        raise X12Error("not an X12 interchange (it must start with a 106-character ISA segment)")
    el, term = body[3], body[105]
    segs = []
    for raw in body.split(term):
        raw = raw.strip("\r\n ")
        if raw:
            segs.append(raw.split(el))
    return segs


def parse_837(text: str) -> list[PostedClaim]:
    """The claims of an 837P or 837I interchange: claim id, diagnoses and service lines."""
    body = text.lstrip("\ufeff \r\n\t")
    segs = split_segments(body)
    comp = body[104]
    claims: list[PostedClaim] = []
    cur: Optional[PostedClaim] = None
    line: Optional[PostedLine] = None
    for s in segs:
        tag = s[0]
        if tag == "CLM":
            cur = PostedClaim(claim_id=s[1] if len(s) > 1 else "", diagnoses=[], lines=[])
            claims.append(cur)
            line = None
        elif cur is None:
            continue
        elif tag == "HI":
            for comp_el in s[1:]:
                parts = comp_el.split(comp)
                if len(parts) >= 2 and parts[0] in ("ABK", "ABF", "BK", "BF"):
                    code = parts[1]
                    cur.diagnoses.append(code[:3] + ("." + code[3:] if len(code) > 3 else ""))
        elif tag in ("SV1", "SV2"):
            proc = (s[1] if tag == "SV1" else s[2]) if len(s) > 2 else ""
            parts = proc.split(comp)
            if len(parts) < 2:
                raise X12Error(f"{tag} segment without a procedure code: {el_join(s)}")
            units_el = s[4] if tag == "SV1" else (s[5] if len(s) > 5 else "")
            try:
                units = int(Decimal(units_el or "0"))
            except Exception:  # noqa: BLE001
                raise X12Error(f"{tag}: units {units_el!r} are not a number") from None
            line = PostedLine(code=parts[1], modifiers=[m for m in parts[2:6] if m], units=units,
                              revenue=s[1] if tag == "SV2" else None)
            cur.lines.append(line)
        elif tag == "DTP" and line is not None and len(s) > 3 and s[1] == "472":
            try:
                line.date = dt.datetime.strptime(s[3][:8], "%Y%m%d").date()
            except ValueError:
                pass
        elif tag == "LIN" and line is not None and len(s) > 3 and s[2] == "N4":
            line.ndc = s[3]
    if not claims:
        raise X12Error("the interchange holds no claim (no CLM segment)")
    return claims


def el_join(s: list[str]) -> str:
    return ELEMENT.join(s)

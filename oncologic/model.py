"""The contract as pydantic models: the encounter oncologic reads and the claim it writes.

This module is the executable form of ``shared/spec/encounter-format.md``. Every field named
there is accepted under its name. Validation here is about the *shape* of the input (types,
formats, times in order, unique ids); whether a code exists in the reference data is checked in
:mod:`oncologic.load`, and every coding decision is made by the encodings.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_serializer, model_validator

# ---------------------------------------------------------------------------------------------
# value formats

_NDC_PATTERNS = {
    (4, 4, 2): (1, 0, 0),
    (5, 3, 2): (0, 1, 0),
    (5, 4, 1): (0, 0, 1),
    (5, 4, 2): (0, 0, 0),
}
_ICD_RE = re.compile(r"^([A-TV-Z][0-9][0-9A-Z])\.?([0-9A-Z]{0,4})$")
_HCPCS_RE = re.compile(r"^(?:[A-V][0-9]{4}|[0-9]{4}[0-9A-Z])$")
_TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_CLOCK_OFFSET_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])(Z|[+-][0-9]{2}:[0-9]{2})$")
_NCT_RE = re.compile(r"^(?:NCT)?([0-9]{8})$")


def normalize_ndc(value: str) -> str:
    """Return the 11-digit 5-4-2 form of an NDC given hyphenated (4-4-2, 5-3-2, 5-4-1, 5-4-2) or as 11 digits."""
    text = value.strip()
    if re.fullmatch(r"[0-9]{11}", text):
        return text
    parts = text.split("-")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        shape = tuple(len(p) for p in parts)
        if shape in _NDC_PATTERNS:
            pads = _NDC_PATTERNS[shape]
            return "".join("0" * pad + part for part, pad in zip(parts, pads))
    if re.fullmatch(r"[0-9]{10}", text):
        raise ValueError(
            "a 10-digit NDC without hyphens is ambiguous (4-4-2, 5-3-2 or 5-4-1?); give it with hyphens or as 11 digits"
        )
    raise ValueError("an NDC must be 11 digits or hyphenated as 4-4-2, 5-3-2, 5-4-1 or 5-4-2")


def normalize_icd10(value: str) -> str:
    """Return an ICD-10-CM code upper-cased with its dot after the third character."""
    text = value.strip().upper()
    match = _ICD_RE.fullmatch(text)
    if not match:
        raise ValueError("not an ICD-10-CM code (a letter, two characters, optional dot and up to 4 more)")
    head, tail = match.groups()
    return f"{head}.{tail}" if tail else head


def _icd10_list(values: list) -> list:
    """Normalise a list of ICD-10-CM codes; a bad one is reported with its index in the path."""
    out = []
    for i, x in enumerate(values):
        if not isinstance(x, (str, int)) or isinstance(x, bool):
            out.append(x)  # pydantic reports the wrong type with its index
            continue
        try:
            out.append(normalize_icd10(str(x)))
        except ValueError as exc:
            raise PathError((i,), f"{x!r}: {exc}") from None
    return out


class Strict(BaseModel):
    """Base: unknown fields are kept aside (and reported as warnings by the loader)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)


Unit = Literal["mg", "mcg", "g", "units", "mL", "mCi", "uCi"]


class Amount(Strict):
    value: Decimal = Field(ge=0)
    unit: Unit

    @field_validator("value", mode="before")
    @classmethod
    def _no_float_noise(cls, v: Any) -> Any:
        # 0.1 as a float must mean 0.1, not 0.1000000000000000055...
        if isinstance(v, float):
            return Decimal(repr(v))
        return v


class Container(Strict):
    type: Literal["single_dose", "multi_dose"]
    size: Optional[Amount] = None
    count: Optional[int] = Field(default=None, ge=1)


class SourceCode(Strict):
    """The medication code a record carries in its own code system (RxNorm, a local code...):
    mapped to HCPCS/NDC through the site formulary (docs/site.md)."""

    system: str = Field(min_length=1)
    code: str = Field(min_length=1)

    @field_validator("code", mode="before")
    @classmethod
    def _code(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


class Drug(Strict):
    hcpcs: Optional[str] = None
    ndc: Optional[str] = None
    name: Optional[str] = None
    manufacturer: Optional[str] = None
    dose: Optional[Amount] = None
    container: Optional[Container] = None
    discarded: Optional[Amount] = None
    supplied_by: Literal["practice", "sponsor", "patient", "free_of_charge"] = "practice"
    kind: Optional[Literal["chemotherapy", "hormonal_antineoplastic", "therapeutic", "hydration"]] = None
    code: Optional[SourceCode] = None
    dose_basis: Optional[str] = None  # how the dose was derived (e.g. strength x volume infused)
    # bought at the 340B price (true), not (false), not said (None: the site configuration's
    # acquired_340b applies); decides TB/JG on Medicare drug lines (encodings/drugs/b340.lp)
    acquired_340b: Optional[bool] = None

    @field_validator("hcpcs")
    @classmethod
    def _hcpcs(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        v = v.strip().upper()
        if not _HCPCS_RE.fullmatch(v):
            raise ValueError("not an HCPCS/CPT code (a letter and 4 digits, or 5 characters)")
        return v

    @field_validator("ndc")
    @classmethod
    def _ndc(cls, v: Optional[str]) -> Optional[str]:
        return None if v is None else normalize_ndc(v)


Route = Literal[
    "iv_infusion",
    "iv_push",
    "subcutaneous",
    "intramuscular",
    "subcutaneous_infusion",
    "intralesional",
    "intra_arterial_push",
    "intra_arterial_infusion",
    "intrathecal",
    "intraperitoneal",
    "intrapleural",
    "on_body_injector",
    "implant",
    "port_flush",
    "pump_refill",
]


class Administration(Strict):
    id: str = Field(min_length=1)
    route: Route
    access: str = "main"
    start: str
    stop: Optional[str] = None
    drugs: list[Drug] = Field(default_factory=list)
    purpose: Optional[Literal["hydration", "vehicle", "kvo"]] = None
    primary_reason: bool = False
    separate_access_reason: Optional[str] = None
    discontinued: Optional[str] = None
    pump: Optional[Literal["portable", "implantable"]] = None
    research: Optional[Literal["investigational", "routine"]] = None
    lesions: Optional[int] = Field(default=None, ge=1)

    @field_validator("start", "stop", mode="before")
    @classmethod
    def _time(cls, v: Any) -> Any:
        if v is None:
            return v
        if isinstance(v, dt.datetime):
            return v.isoformat(timespec="minutes")
        if isinstance(v, int) and not isinstance(v, bool):  # YAML 1.1 reads 09:00 as sexagesimal 540
            return f"{v // 60:02d}:{v % 60:02d}"
        if not isinstance(v, str):
            raise ValueError('a time is "HH:MM" or an ISO datetime "2026-03-04T23:40"')
        if _TIME_RE.fullmatch(v.strip()) or _CLOCK_OFFSET_RE.fullmatch(v.strip()):
            return v.strip()
        try:
            dt.datetime.fromisoformat(v.strip())
        except ValueError:
            raise ValueError('a time is "HH:MM" or an ISO datetime "2026-03-04T23:40"') from None
        return v.strip()


class Payer(Strict):
    name: Optional[str] = None
    # absent when the sender does not say (a finding, PAYER_TYPE_UNKNOWN); required in native input
    type: Optional[Literal["medicare", "medicare_advantage", "medicaid", "commercial"]] = None
    member_id: Optional[str] = None
    coverage_start: Optional[dt.date] = None
    coverage_end: Optional[dt.date] = None


class Service(Strict):
    code: str
    separately_identifiable: bool = False

    @field_validator("code", mode="before")
    @classmethod
    def _code(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            v = f"{v:05d}"
        if isinstance(v, str):
            v = v.strip().upper()
            if not _HCPCS_RE.fullmatch(v):
                raise ValueError("not a CPT/HCPCS code")
        return v


class GridItem(Strict):
    item: str
    payer: Literal["sponsor", "insurance"]


class ClinicalTrial(Strict):
    nct: Optional[str] = None
    qualifying: bool = True
    billing_grid: list[GridItem] = Field(default_factory=list)

    @field_validator("nct")
    @classmethod
    def _nct(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        if not _NCT_RE.fullmatch(v.strip().upper()):
            raise ValueError("an NCT number is NCT followed by 8 digits")
        return v.strip().upper()


class PlanModification(Strict):
    date: Optional[dt.date] = None
    reason: Optional[str] = None
    change: Optional[str] = None


class TreatmentPlan(Strict):
    id: Optional[str] = None
    regimen: Optional[str] = None
    drugs: list[str] = Field(default_factory=list)
    cycle: Optional[int] = Field(default=None, ge=1)
    planned_cycles: Optional[int] = Field(default=None, ge=1)
    diagnoses: list[str] = Field(default_factory=list)
    modifications: list[PlanModification] = Field(default_factory=list)

    @field_validator("diagnoses", mode="before")
    @classmethod
    def _dx(cls, v: Any) -> Any:
        return _icd10_list(v) if isinstance(v, list) else v


class Evidence(Strict):
    kind: str
    name: Optional[str] = None
    value: Optional[str] = None
    outcome: Optional[str] = None
    # laboratory results (hemoglobin, hematocrit: kind "lab", or kind "hemoglobin"/"hematocrit"):
    # the unit of value ("g/dL", "g/L", "%") and when the sample was taken (a date, or an ISO
    # datetime / "HH:MM" on the date of service when the time matters)
    unit: Optional[str] = None
    date: Optional[dt.date] = None
    time: Optional[str] = None

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, v: Any) -> Any:
        # "2026-03-04T08:10" gives the date and the time
        if isinstance(v, dt.datetime):
            return v.date()
        if isinstance(v, str) and "T" in v:
            return v.split("T", 1)[0]
        return v

    @model_validator(mode="before")
    @classmethod
    def _datetime(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("time") is None:
            v = data.get("date")
            if isinstance(v, dt.datetime):
                data = {**data, "time": v.strftime("%H:%M")}
            elif isinstance(v, str) and "T" in v:
                data = {**data, "time": v.split("T", 1)[1][:5]}
        return data

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):  # YAML 1.1 reads 08:10 as sexagesimal
            return f"{v // 60:02d}:{v % 60:02d}"
        if v is not None and (not isinstance(v, str) or not _TIME_RE.fullmatch(v.strip())):
            raise ValueError('a time is "HH:MM"')
        return None if v is None else v.strip()

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, v: Any) -> Any:
        return None if v is None else str(v)


class Authorization(Strict):
    number: str
    codes: list[str] = Field(default_factory=list)
    start: Optional[dt.date] = None
    end: Optional[dt.date] = None
    units: Optional[int] = Field(default=None, ge=0)
    units_used: Optional[int] = Field(default=None, ge=0)


class NotAdministered(Strict):
    """A medication record that is not a completed administration: kept on the claim as not
    billed (status not_done, entered_in_error, ...) or, for orders and statements, as the
    evidence that administrations are missing."""

    id: str = Field(min_length=1)
    status: Literal["not_done", "entered_in_error", "on_hold", "in_progress", "unknown", "ordered", "recorded"]
    reason: Optional[str] = None
    drug: Optional[str] = None


_NPI_RE = re.compile(r"^[0-9]{10}$")


def npi_valid(value: str) -> bool:
    """Whether a 10-digit NPI carries a valid check digit (Luhn over the prefix 80840 + the first 9
    digits, as CMS's NPI check-digit standard defines it)."""
    if not _NPI_RE.fullmatch(value):
        return False
    digits = [int(c) for c in "80840" + value[:9]]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return (10 - total % 10) % 10 == int(value[9])


class PersonName(Strict):
    last: str = Field(min_length=1)
    first: Optional[str] = None
    middle: Optional[str] = None
    suffix: Optional[str] = None


class Address(Strict):
    lines: list[str] = Field(min_length=1)
    city: str = Field(min_length=1)
    state: str
    postal_code: str

    @field_validator("state")
    @classmethod
    def _state(cls, v: str) -> str:
        v = v.strip().upper()
        if not re.fullmatch(r"[A-Z]{2}", v):
            raise ValueError("a two-letter state or territory code (MD, PR...)")
        return v

    @field_validator("postal_code", mode="before")
    @classmethod
    def _zip(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            v = f"{v:05d}"
        if isinstance(v, str):
            digits = v.strip().replace("-", "").replace(" ", "")
            if not re.fullmatch(r"[0-9]{5}(?:[0-9]{4})?", digits):
                raise ValueError("a US ZIP code: 5 digits, or ZIP+4 (21201-1234)")
            return digits
        return v


_SEX = {"f": "F", "female": "F", "m": "M", "male": "M", "u": "U", "unknown": "U", "other": "U"}


class Patient(Strict):
    """The patient's demographics, for the claim (837 NM1*IL, N3, N4, DMG); never reach the rules."""

    name: PersonName
    birth_date: dt.date
    sex: Literal["F", "M", "U"] = "U"
    address: Optional[Address] = None
    member_id: Optional[str] = None  # e.g. the Medicare number; the 837 uses payer.member_id first

    @field_validator("sex", mode="before")
    @classmethod
    def _sex(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() in _SEX:
            return _SEX[v.strip().lower()]
        return v


class Provider(Strict):
    """A rendering (837P) or attending (837I) provider: a person with an NPI."""

    npi: str
    name: PersonName

    @field_validator("npi", mode="before")
    @classmethod
    def _npi(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        if isinstance(v, str):
            v = v.strip()
            if not npi_valid(v):
                raise ValueError("not an NPI (10 digits with a valid check digit)")
        return v


def _zone_name(v: Optional[str]) -> Optional[str]:
    if v is None:
        return v
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{v!r} is not an IANA time zone name (e.g. America/New_York)") from None
    return v


class Encounter(Strict):
    id: str = Field(min_length=1)
    time_zone: Optional[str] = None  # the clinic's IANA zone: times with an offset are converted to it
    setting: Literal["office", "facility"]
    date_of_service: dt.date
    payer: Optional[Payer] = None
    patient: Optional[Patient] = None  # demographics for the 837 (never read by the rules)
    rendering_provider: Optional[Provider] = None  # 837P loop 2310B; default: the X12 config
    attending_provider: Optional[Provider] = None  # 837I loop 2310A; default: the X12 config
    diagnoses: list[str] = Field(min_length=1)
    administrations: list[Administration] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    clinical_trial: Optional[ClinicalTrial] = None
    treatment_plan: Optional[TreatmentPlan] = None
    evidence: list[Evidence] = Field(default_factory=list)
    authorizations: list[Authorization] = Field(default_factory=list)
    not_administered: list[NotAdministered] = Field(default_factory=list)

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, v: Optional[str]) -> Optional[str]:
        return _zone_name(v)

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> Any:
        return str(v) if isinstance(v, (int,)) and not isinstance(v, bool) else v

    @field_validator("diagnoses", mode="before")
    @classmethod
    def _dx(cls, v: Any) -> Any:
        if not isinstance(v, list):
            return v
        return _icd10_list(v)

    @model_validator(mode="after")
    def _consistency(self, info: ValidationInfo) -> "Encounter":
        site_zone = (info.context or {}).get("time_zone") if info is not None else None
        self._localize(self.time_zone or site_zone)
        seen: dict[str, int] = {}
        for i, adm in enumerate(self.administrations):
            if adm.id in seen:
                raise PathError(
                    ("administrations", i, "id"),
                    f"duplicate id {adm.id!r} (first used at administrations[{seen[adm.id]}])",
                )
            seen[adm.id] = i
        for i, adm in enumerate(self.administrations):
            start = absolute_time(self.date_of_service, adm.start)
            if adm.stop is not None:
                stop = absolute_time(self.date_of_service, adm.stop)
                if stop < start:
                    hint = ""
                    if _TIME_RE.fullmatch(adm.stop) and _TIME_RE.fullmatch(adm.start):
                        hint = "; a stop on the next day needs an ISO datetime such as 2026-03-05T01:10"
                    raise PathError(("administrations", i, "stop"), f"stop {adm.stop} is before start {adm.start}{hint}")
            for j, drug in enumerate(adm.drugs):
                for field in ("dose", "discarded"):
                    amount = getattr(drug, field)
                    if amount is not None and amount.value.as_tuple().exponent < -6:  # type: ignore[operator]
                        raise PathError(("administrations", i, "drugs", j, field, "value"), "more than 6 decimals")
        if self.patient is not None and self.patient.birth_date > self.date_of_service:
            raise PathError(("patient", "birth_date"),
                            f"{self.patient.birth_date} is after the date of service {self.date_of_service}")
        if self.payer and self.payer.coverage_start and self.payer.coverage_end:
            if self.payer.coverage_end < self.payer.coverage_start:
                raise PathError(("payer", "coverage_end"), "coverage ends before it starts")
        return self


    def _localize(self, zone_name: Optional[str]) -> None:
        """Times with a UTC offset become the clinic's local clock time (the encounter's or the
        site's time_zone); without a known zone an offset is an error, never dropped."""
        zone = None
        for i, adm in enumerate(self.administrations):
            for name in ("start", "stop"):
                value = getattr(adm, name)
                if value is None or _TIME_RE.fullmatch(value):
                    continue
                text = f"{self.date_of_service.isoformat()}T{value}" if _CLOCK_OFFSET_RE.fullmatch(value) else value
                moment = dt.datetime.fromisoformat(text)
                if moment.tzinfo is None:
                    continue
                if zone_name is None:
                    raise PathError(("administrations", i, name), f"{value!r} carries a UTC offset but the clinic's time zone "
                                    "is unknown: give time_zone (an IANA name such as America/New_York) on the encounter or "
                                    "in the site file (--site), or write the local clock time without an offset")
                if zone is None:
                    from zoneinfo import ZoneInfo

                    zone = ZoneInfo(zone_name)
                local = moment.astimezone(zone).replace(tzinfo=None)
                setattr(adm, name, local.isoformat(timespec="minutes"))


class PathError(ValueError):
    """A validation error that knows the exact field path it belongs to."""

    def __init__(self, loc: tuple[Union[str, int], ...], message: str):
        super().__init__(message)
        self.loc = loc
        self.message = message


def absolute_time(day: dt.date, value: str) -> dt.datetime:
    """An input time ("HH:MM" on the date of service, or an ISO datetime) as a naive datetime."""
    match = _TIME_RE.fullmatch(value)
    if match:
        return dt.datetime(day.year, day.month, day.day, int(match.group(1)), int(match.group(2)))
    parsed = dt.datetime.fromisoformat(value)
    return parsed.replace(tzinfo=None, second=0, microsecond=0)


# ---------------------------------------------------------------------------------------------
# output: the claim


class Why(BaseModel):
    rule: str
    text: str
    # "from" is a Python keyword: the JSON name is kept by the alias.
    from_: list[str] = Field(alias="from", serialization_alias="from")

    model_config = ConfigDict(populate_by_name=True, defer_build=True)


class TestResult(BaseModel):
    """The most recent hemoglobin (R1) or hematocrit (R2) result an ESA line reports: the
    837's loop 2400 MEA segment (MEA01 TR, MEA02 code, MEA03 value NN.N)."""

    model_config = ConfigDict(defer_build=True)
    code: Literal["R1", "R2"]
    value: str
    unit: str
    date: dt.date
    evidence: str


class NdcQuantity(BaseModel):
    model_config = ConfigDict(defer_build=True)
    value: Union[int, float, Decimal]
    unit: Literal["UN", "ML", "GR", "ME", "F2"]


class AspLimit(BaseModel):
    model_config = ConfigDict(defer_build=True)
    """The Medicare Part B payment limit of a drug line: per billing unit and for the line."""

    per_unit: str
    total: str
    quarter: str


class NdcItem(BaseModel):
    """One NDC of a line that draws on several (issue #13): its share of the line's billing units
    and its own quantity in the unit of its package."""

    model_config = ConfigDict(defer_build=True)
    ndc: str
    units: int
    quantity: Optional[NdcQuantity] = None


class Payment(BaseModel):
    """The expected Medicare payment of a line (or the sum over a claim's lines): money as decimal
    strings with 2 decimals ("123.45"); an amount is None when it cannot be computed, and
    ``basis`` says why (docs/formats.md, "Money on the claim")."""

    model_config = ConfigDict(defer_build=True)
    allowed: Optional[str] = None
    coinsurance: Optional[str] = None
    program_payment: Optional[str] = None
    sequestration: Optional[str] = None
    basis: str


class AtStake(BaseModel):
    """The lines an error finding rests on (what will be denied or returned as the claim stands)."""

    model_config = ConfigDict(defer_build=True)
    lines: list[int] = Field(default_factory=list)
    allowed: str = "0.00"  # the expected allowed amount of those lines that are priced
    unpriced: list[int] = Field(default_factory=list)  # lines at stake with no expected payment
    charge: Optional[str] = None
    findings: list[str] = Field(default_factory=list)


class Line(BaseModel):
    model_config = ConfigDict(defer_build=True)
    line: int
    code: str
    modifiers: list[str] = Field(default_factory=list)
    units: int
    date: dt.date
    diagnoses: list[str] = Field(default_factory=list)
    ndc: Optional[str] = None
    ndc_quantity: Optional[NdcQuantity] = None
    # every NDC of a line that draws on more than one (the first is ``ndc``); absent otherwise
    ndc_items: Optional[list[NdcItem]] = None
    note: Optional[str] = None
    asp_limit: Optional[AspLimit] = None
    test_result: Optional[TestResult] = None
    # the site's charge for the line: charge master per-unit charge x units, a decimal string with
    # 2 decimals ("1520.00"); None when the site gives no charge for the code (a finding says so)
    charge: Optional[str] = None
    payment: Optional[Payment] = None
    why: Why

    @model_serializer(mode="wrap")
    def _drop_empty_items(self, handler):
        data = handler(self)
        if data.get("ndc_items") is None:
            data.pop("ndc_items", None)
        return data


class NotBilled(BaseModel):
    model_config = ConfigDict(defer_build=True)
    subject: str
    candidate: str
    why: Why


class Finding(BaseModel):
    model_config = ConfigDict(defer_build=True)
    code: str
    severity: Literal["error", "warning", "info"]
    subject: str
    message: str
    why: Why


class Claim(BaseModel):
    model_config = ConfigDict(defer_build=True)
    encounter: str
    setting: Literal["office", "facility"]
    lines: list[Line] = Field(default_factory=list)
    not_billed: list[NotBilled] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    claim_data: dict[str, list[str]] = Field(default_factory=dict)
    # the sum of the lines' charges (decimal string, 2 decimals); None unless every line has one
    total_charge: Optional[str] = None
    payment: Optional[Payment] = None  # the lines' expected payment added up
    at_stake: Optional[AtStake] = None
    clean: bool

"""The site configuration: what a clinic knows about itself that no encounter says.

``oncologic solve|batch|explain|report --site SITE.toml`` (Python: ``load_site(path)`` and the
``site=`` argument of :func:`oncologic.load.load_file`, :func:`oncologic.load.validate` and
:func:`oncologic.formats.fhir.load_bundle`). See docs/site.md.

The file is TOML, read strictly: an unknown key or a value of the wrong type is an
:class:`~oncologic.load.InputError` naming the key path (``payers."Acme Health".type``), exit
status 2. Each section is its own model, so a new section is one field on :class:`Site` and one
small model::

    time_zone = "America/New_York"      # IANA name: the clinic's local time
    formulary = "formulary.csv"         # relative to this file
    charges = "charges.csv"             # charge master: code,charge (per billing unit)
    fee_schedule = "fees.csv"           # the site's Physician Fee Schedule amounts: code,allowed

    [payers]                            # payer name or identifier -> contract payer type
    "Acme Medicare Advantage" = { type = "medicare_advantage", plan = "Acme Gold" }
    "Medicare Part B" = "medicare"

    [locations]                         # location/department identifier or type -> setting
    "ONC-INF-3" = "facility"
"""

from __future__ import annotations

import csv
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

PayerType = Literal["medicare", "medicare_advantage", "medicaid", "commercial"]
Setting = Literal["office", "facility"]
FORMULARY_HEADER = ("system", "code", "hcpcs", "ndc", "name", "container_type", "container_size", "container_unit",
                    "charge_per_unit")
# short names of the code systems a formulary row may use -> the FHIR system URI
SYSTEMS = {
    "rxnorm": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "ndc": "http://hl7.org/fhir/sid/ndc",
    "local": "local",
}


ProviderType = Literal["critical_access", "rural_sole_community", "childrens", "pps_exempt_cancer",
                       "other"]


class SiteSection(BaseModel):
    """Base of every section: strict types, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)


class PayerEntry(SiteSection):
    type: PayerType
    plan: Optional[str] = None


class FormularyRow(SiteSection):
    """One formulary line: a medication code in some system -> the billing codes and container."""

    system: str
    code: str
    hcpcs: Optional[str] = None
    ndc: Optional[str] = None
    name: Optional[str] = None
    container_type: Optional[Literal["single_dose", "multi_dose"]] = None
    container_size: Optional[Decimal] = None
    container_unit: Optional[Literal["mg", "mcg", "g", "units", "mL", "mCi", "uCi"]] = None
    charge_per_unit: Optional[Decimal] = None
    row: int = 0  # line number in the CSV (1 = header)


class Site(SiteSection):
    time_zone: Optional[str] = None
    formulary: Optional[str] = None
    charges: Optional[str] = None  # charge master CSV "code,charge" (per billing unit)
    fee_schedule: Optional[str] = None  # the site's Physician Fee Schedule amounts, CSV "code,allowed"
    payers: dict[str, PayerEntry] = Field(default_factory=dict)
    locations: dict[str, Setting] = Field(default_factory=dict)
    # 340B (encodings/drugs/b340.lp): every drug of the site bought at the 340B price unless the
    # record says otherwise (drugs[].acquired_340b), and the hospital type that decides TB or JG
    acquired_340b: Optional[bool] = None
    provider_type: Optional[ProviderType] = None

    _root: Path = PrivateAttr(default_factory=Path)
    _source: str = PrivateAttr(default="")
    _formulary: dict[tuple[str, str], FormularyRow] = PrivateAttr(default_factory=dict)
    _by_ndc: dict[str, FormularyRow] = PrivateAttr(default_factory=dict)
    _charges: dict[str, "PriceRow"] = PrivateAttr(default_factory=dict)
    _fees: dict[str, "PriceRow"] = PrivateAttr(default_factory=dict)

    @field_validator("payers", mode="before")
    @classmethod
    def _payer_short(cls, v: Any) -> Any:
        """``"Name" = "medicare"`` is short for ``"Name" = { type = "medicare" }``."""
        if isinstance(v, dict):
            return {k: {"type": x} if isinstance(x, str) else x for k, x in v.items()}
        return v

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone name (e.g. America/New_York)") from None
        return v

    # -- lookups ---------------------------------------------------------------------------

    @property
    def source(self) -> str:
        return self._source

    def zone(self):
        """The site's time zone as a :class:`zoneinfo.ZoneInfo`, or None."""
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.time_zone) if self.time_zone else None

    def payer(self, key: str) -> Optional[PayerEntry]:
        """The payer entry for a name or identifier (exact, then case-insensitive)."""
        hit = self.payers.get(key)
        if hit is None:
            folded = {k.casefold(): v for k, v in self.payers.items()}
            hit = folded.get(key.casefold())
        return hit

    def location(self, key: str) -> Optional[str]:
        hit = self.locations.get(key)
        if hit is None:
            hit = {k.casefold(): v for k, v in self.locations.items()}.get(key.casefold())
        return hit

    def formulary_row(self, system: str, code: str) -> Optional[FormularyRow]:
        """The formulary row for a code in a system (a short name or a full URI)."""
        return self._formulary.get((SYSTEMS.get(system, system), code.strip()))

    def formulary_ndc(self, ndc: str) -> Optional[FormularyRow]:
        """The row for an NDC (11 digits): a row of system ``ndc``, else a row whose ndc column it is."""
        return self._formulary.get((SYSTEMS["ndc"], ndc)) or self._by_ndc.get(ndc)

    @property
    def has_formulary(self) -> bool:
        return bool(self._formulary)

    @property
    def charge_rows(self) -> dict[str, "PriceRow"]:
        """The charge master: HCPCS/CPT code -> its row (per-unit charge)."""
        return self._charges

    @property
    def fee_rows(self) -> dict[str, "PriceRow"]:
        """The site-supplied fee schedule: code -> its row (allowed amount per unit)."""
        return self._fees

    @property
    def has_charges(self) -> bool:
        return self.charges is not None

    @property
    def has_fee_schedule(self) -> bool:
        return self.fee_schedule is not None


class PriceRow(SiteSection):
    """One row of a charge master or fee schedule CSV: a code and an amount per billing unit."""

    code: str
    amount: Decimal
    row: int

    @property
    def mills(self) -> int:
        return int(self.amount * 1000)


def read_prices(path: Path, source: str, key: str, column: str) -> dict[str, PriceRow]:
    """The rows of a ``code,<column>`` CSV (charges or fee schedule) keyed by code; errors name
    the file, row and column. An amount is dollars with at most 3 decimals, not negative."""
    from ..load import InputError
    from ..model import _HCPCS_RE

    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError([(key, f"cannot read {path}: {exc.strerror}")], source) from None
    reader = csv.reader(text.splitlines())
    header = tuple(h.strip() for h in next(reader, ()))
    if header != ("code", column):
        raise InputError([(key, f"{path.name}: the header must be code,{column} (got {','.join(header)})")], source)
    rows: dict[str, PriceRow] = {}
    problems: list[tuple[str, str]] = []
    for n, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        where = f"{key} {path.name} row {n}"
        if len(cells) != 2:
            problems.append((where, f"{len(cells)} columns, 2 expected"))
            continue
        code, raw = cells[0].strip().upper(), cells[1].strip().replace("$", "").replace(",", "")
        if not _HCPCS_RE.fullmatch(code):
            problems.append((f"{where}.code", f"{cells[0].strip()!r} is not a CPT/HCPCS code"))
            continue
        try:
            amount = Decimal(raw)
        except InvalidOperation:
            problems.append((f"{where}.{column}", f"{cells[1].strip()!r} is not an amount in dollars"))
            continue
        if not amount.is_finite() or amount < 0 or amount.as_tuple().exponent < -3:  # type: ignore[operator]
            problems.append((f"{where}.{column}", f"{cells[1].strip()!r}: dollars, not negative, at most 3 decimals"))
            continue
        if amount * 1000 > 2**31 - 1:
            problems.append((f"{where}.{column}", f"{cells[1].strip()!r} is too large"))
            continue
        if code in rows:
            problems.append((where, f"{code} is listed twice (rows {rows[code].row} and {n})"))
            continue
        rows[code] = PriceRow(code=code, amount=amount, row=n)
    if problems:
        raise InputError(problems, source)
    return rows


def _problems(err: ValidationError) -> list[tuple[str, str]]:
    from ..load import fmt_path

    out = []
    for item in err.errors(include_url=False):
        loc = tuple(p for p in item.get("loc", ()) if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
        msg = item.get("msg", "invalid")
        if item.get("type") == "extra_forbidden":
            msg = "unknown key"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        path = ".".join(f'"{p}"' if isinstance(p, str) and not p.isidentifier() else str(p) for p in loc)
        out.append((path or fmt_path(loc), msg))
    return out


def read_formulary(path: Path, source: str) -> dict[tuple[str, str], FormularyRow]:
    """The rows of a formulary CSV keyed by (system URI, code); errors name the row and column."""
    from ..load import InputError
    from ..model import _HCPCS_RE, normalize_ndc

    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError([("formulary", f"cannot read {path}: {exc.strerror}")], source) from None
    reader = csv.reader(text.splitlines())
    header = tuple(h.strip() for h in next(reader, ()))
    if header != FORMULARY_HEADER:
        raise InputError([("formulary", f"{path.name}: the header must be {','.join(FORMULARY_HEADER)} (got {','.join(header)})")], source)
    rows: dict[tuple[str, str], FormularyRow] = {}
    problems: list[tuple[str, str]] = []
    for n, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        where = f"formulary {path.name} row {n}"
        if len(cells) != len(FORMULARY_HEADER):
            problems.append((where, f"{len(cells)} columns, {len(FORMULARY_HEADER)} expected"))
            continue
        raw = {k: (v.strip() or None) for k, v in zip(FORMULARY_HEADER, cells)}
        try:
            for key in ("container_size", "charge_per_unit"):
                if raw[key] is not None:
                    raw[key] = Decimal(raw[key])
            if raw["ndc"]:
                raw["ndc"] = normalize_ndc(raw["ndc"])
            if raw["system"] in ("ndc", SYSTEMS["ndc"]) and raw["code"]:
                raw["code"] = normalize_ndc(raw["code"])
            if raw["hcpcs"]:
                raw["hcpcs"] = raw["hcpcs"].upper()
                if not _HCPCS_RE.fullmatch(raw["hcpcs"]):
                    raise ValueError(f"hcpcs {raw['hcpcs']!r} is not an HCPCS code")
            row = FormularyRow(**raw, row=n)
        except (InvalidOperation, ValueError) as exc:
            msgs = _problems(exc) if isinstance(exc, ValidationError) else [("", str(exc) or "not a number")]
            problems += [(f"{where}{'.' + p if p else ''}", m) for p, m in msgs]
            continue
        problems += _row_checks(row, where)
        key = (SYSTEMS.get(row.system, row.system), row.code)
        if key in rows:
            problems.append((where, f"{row.system}|{row.code} is listed twice (rows {rows[key].row} and {n})"))
        rows[key] = row
    if problems:
        raise InputError(problems, source)
    return rows


def _row_checks(row: FormularyRow, where: str) -> list[tuple[str, str]]:
    out = []
    if row.system not in SYSTEMS and "://" not in row.system and not row.system.startswith("urn:"):
        out.append((f"{where}.system", f"{row.system!r}: rxnorm, ndc, local or a full code-system URI"))
    if not row.code:
        out.append((f"{where}.code", "required"))
    if row.hcpcs is None and row.ndc is None:
        out.append((where, "give hcpcs or ndc (the billing code the medication maps to)"))
    if (row.container_size is None) != (row.container_unit is None):
        out.append((where, "container_size and container_unit go together"))
    if row.container_size is not None and row.container_size <= 0:
        out.append((f"{where}.container_size", "must be more than 0"))
    return out


def parse_site(data: Any, root: Path = Path("."), source: str = "") -> Site:
    """A validated :class:`Site` from the parsed TOML mapping (``root``: the folder of the file)."""
    from ..load import InputError

    if not isinstance(data, dict):
        raise InputError([("(site)", "a site file is a TOML table")], source)
    try:
        site = Site.model_validate(data)
    except ValidationError as err:
        raise InputError(_problems(err), source) from None
    site._root = root
    site._source = source
    if site.formulary:
        site._formulary = read_formulary(root / site.formulary, source)
        for row in site._formulary.values():
            if row.ndc:
                site._by_ndc.setdefault(row.ndc, row)
    if site.charges:
        site._charges = read_prices(root / site.charges, source, "charges", "charge")
    if site.fee_schedule:
        site._fees = read_prices(root / site.fee_schedule, source, "fee_schedule", "allowed")
    return site


def load_site(path: Union[str, Path, None]) -> Optional[Site]:
    """Read SITE.toml (None gives None). Bad files raise :class:`~oncologic.load.InputError`."""
    if path is None:
        return None
    import tomllib

    from ..load import InputError

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError([("(file)", f"cannot read: {exc.strerror}")], str(p)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError([("(document)", f"invalid TOML: {exc}")], str(p)) from None
    return parse_site(data, p.resolve().parent, str(p))

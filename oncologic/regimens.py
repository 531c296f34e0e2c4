"""A seeded generator of realistic oncology infusion encounters (benchmark and property-test input).

    python benchmarks/generator.py 1000 --seed 7 > enc.jsonl
    python -m oncologic.regimens 1000 --seed 7 --regimen folfox --setting facility > folfox.jsonl

Every encounter is a plain dict in the input contract (docs/encounter-format.md). The
hypothesis strategy :func:`oncologic.testing.regimen_encounters` draws from it with parameters
(regimen, setting, payer type and name, diagnoses, date). ``REGIMEN_NAMES`` lists the regimens.
Regimens follow common published schedules (doses per m^2 times a body surface area drawn from
1.5-2.3 m^2, AUC dosing for carboplatin as a flat dose range):

==================  ==========================================================  ======
regimen             drugs (HCPCS)                                               share
==================  ==========================================================  ======
FOLFOX              oxaliplatin J9263, leucovorin J0640, 5-FU bolus + 46 h pump   22 %
                    J9190
R-CHOP              rituximab J9312, cyclophosphamide J9071, doxorubicin J9000,   14 %
                    vincristine J9370
carboplatin +       paclitaxel J9267, carboplatin J9045                           20 %
paclitaxel
pembrolizumab       J9271 200 mg or 400 mg                                        18 %
nivolumab           J9299 240 mg or 480 mg                                         6 %
bevacizumab         J9035 5-15 mg/kg (with FOLFOX-like premeds)                    5 %
support visit       zoledronic acid J3489 or hydration only                        8 %
cisplatin           cisplatin J9060 with pre- and post-hydration                    7 %
==================  ==========================================================  ======

Pre-medications (dexamethasone J1100, ondansetron J2405, palonosetron J2469, diphenhydramine
J1200), hydration (normal saline J7030/J7050), port flushes (heparin J1644), E/M visits, several
access sites (port, PICC, peripheral; ~3 % a second site with a documented reason), clinical
trials (~4 %), prior authorizations (~75 % of non-Medicare payers) and single-dose containers
with package sizes from the NDC crosswalk (``facts/ndc_*.lp``) appear in realistic proportions.
Every HCPCS code used is checked against the reference data at import time; NDCs and package sizes
are read from the generated facts, never invented. ``bad_rate`` makes that share of encounters
invalid (stop before start, unknown route, missing unit) so a batch also exercises error records.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Optional

_NDC = re.compile(r'^ndc\("[^"]*","([0-9]{11})","([A-Z0-9]{5})",([0-9]+),([a-z]+)\)\.', re.M)

# code -> (name, kind of dose: "m2" | "kg" | "flat", dose, unit)
DRUGS: dict[str, tuple[str, str, float, str]] = {
    "J9263": ("oxaliplatin", "m2", 85, "mg"),
    "J0640": ("leucovorin calcium", "m2", 400, "mg"),
    "J9190": ("fluorouracil", "m2", 400, "mg"),
    "J9312": ("rituximab", "m2", 375, "mg"),
    "J9071": ("cyclophosphamide", "m2", 750, "mg"),
    "J9000": ("doxorubicin", "m2", 50, "mg"),
    "J9370": ("vincristine", "m2", 1.4, "mg"),
    "J9267": ("paclitaxel", "m2", 175, "mg"),
    "J9045": ("carboplatin", "flat", 500, "mg"),
    "J9271": ("pembrolizumab", "flat", 200, "mg"),
    "J9299": ("nivolumab", "flat", 240, "mg"),
    "J9035": ("bevacizumab", "kg", 5, "mg"),
    "J9060": ("cisplatin", "m2", 75, "mg"),
    "J3489": ("zoledronic acid", "flat", 4, "mg"),
    "J1100": ("dexamethasone", "flat", 12, "mg"),
    "J2405": ("ondansetron", "flat", 16, "mg"),
    "J2469": ("palonosetron", "flat", 0.25, "mg"),
    "J1200": ("diphenhydramine", "flat", 50, "mg"),
    "J7030": ("sodium chloride 0.9% 1000 mL", "flat", 1000, "mL"),
    "J7050": ("sodium chloride 0.9% 250 mL", "flat", 250, "mL"),
    "J1644": ("heparin", "flat", 500, "units"),
}

REGIMENS = [
    ("folfox", 22, ["C18.7", "C18.2", "C19", "C20"]),
    ("rchop", 14, ["C83.30", "C83.38"]),
    ("carbo_pacli", 20, ["C34.11", "C34.90", "C56.9"]),
    ("pembrolizumab", 18, ["C34.11", "C34.90", "C43.9"]),
    ("nivolumab", 6, ["C34.90", "C43.9"]),
    ("bevacizumab", 5, ["C18.7", "C34.90"]),
    ("support", 8, ["C50.911", "C34.90"]),
    ("cisplatin", 7, ["C34.11", "C56.9"]),
]
REGIMEN_NAMES = tuple(r[0] for r in REGIMENS)
PAYERS = [("medicare", 48), ("medicare_advantage", 20), ("commercial", 26), ("medicaid", 6)]
ACCESS = [("port", 55), ("picc", 15), ("peripheral", 30)]


@lru_cache(maxsize=1)
def ndc_packages() -> dict[str, list[tuple[str, int, str]]]:
    """HCPCS code -> [(NDC11, package amount in the facts' small unit, dim)] from facts/ndc_*.lp.
    Only NDCs filed under exactly one code (so the input stays unambiguous)."""
    rows: dict[str, list[tuple[str, str, int, str]]] = {}
    from . import refdata

    for path in sorted(refdata.FACTS.glob("ndc_*.lp")):
        for ndc, code, amount, dim in _NDC.findall(path.read_text()):
            rows.setdefault(ndc, []).append((ndc, code, int(amount), dim))
    out: dict[str, list[tuple[str, int, str]]] = {}
    for ndc, items in sorted(rows.items()):
        if len({c for _, c, _, _ in items}) == 1:
            _, code, amount, dim = items[0]
            out.setdefault(code, []).append((ndc, amount, dim))
    return out


def check_codes() -> None:
    """Every code above is known to the reference data (run once by the benchmark and the tests)."""
    from . import refdata

    missing = sorted(set(DRUGS) - refdata.known_hcpcs())
    if missing:
        raise SystemExit(f"generator uses codes the reference data does not know: {missing}")


def _pick(rng: random.Random, table):
    total = sum(w for _, w, *_ in table)
    x = rng.uniform(0, total)
    for row in table:
        x -= row[1]
        if x <= 0:
            return row
    return table[-1]


def _fmt(value: float) -> float | int:
    v = round(value, 1) if value < 10 else round(value)
    return int(v) if float(v).is_integer() else v


class _Enc:
    def __init__(self, rng: random.Random, day: dt.date):
        self.rng = rng
        self.day = day
        self.admins: list[dict] = []
        self.t = dt.datetime.combine(day, dt.time(rng.choice([7, 8, 8, 9, 9, 10, 11, 13]), rng.choice([0, 15, 30, 45])))
        self.access = _pick(rng, ACCESS)[0]
        self.bsa = rng.uniform(1.5, 2.3)
        self.kg = rng.uniform(48, 115)

    def clock(self, t: dt.datetime) -> str:
        return t.strftime("%H:%M") if t.date() == self.day else t.strftime("%Y-%m-%dT%H:%M")

    def drug(self, code: str, scale: float = 1.0, container: bool = True) -> dict:
        name, how, dose, unit = DRUGS[code]
        amount = dose * (self.bsa if how == "m2" else self.kg if how == "kg" else 1.0) * scale
        if code == "J9370":
            amount = min(amount, 2.0)
        amount = _fmt(amount)
        d: dict = {"hcpcs": code, "name": name, "dose": {"value": amount, "unit": unit}}
        packs = ndc_packages().get(code, [])
        rng = self.rng
        if packs and rng.random() < 0.9:
            ndc, size, dim = rng.choice(packs)
            if rng.random() < 0.5:
                d["ndc"] = ndc
            if container and unit == "mg" and dim == "mcg":
                size_mg = size / 1000
                count = max(1, -int(-amount // size_mg))
                if count <= 20:
                    d["container"] = {"type": "single_dose", "size": {"value": _fmt(size_mg), "unit": "mg"}, "count": count}
                    if rng.random() < 0.9:
                        d["discarded"] = {"value": _fmt(max(0.0, count * size_mg - amount)), "unit": "mg"}
        if rng.random() < 0.01:
            d["supplied_by"] = "free_of_charge"
        return d

    def give(self, route: str, drugs: list[dict], minutes: Optional[int], gap: int = 0, **extra) -> dict:
        start = self.t + dt.timedelta(minutes=gap)
        a = {"id": f"a{len(self.admins) + 1}", "route": route, "access": self.access, "start": self.clock(start), "drugs": drugs}
        if minutes is not None:
            a["stop"] = self.clock(start + dt.timedelta(minutes=minutes))
            self.t = start + dt.timedelta(minutes=minutes)
        else:
            self.t = start + dt.timedelta(minutes=5)
        a.update(extra)
        self.admins.append(a)
        return a

    def concurrent(self, route: str, drugs: list[dict], minutes: int, **extra) -> dict:
        """Same start as the previous administration (a second bag hung alongside)."""
        prev = self.admins[-1]
        a = {"id": f"a{len(self.admins) + 1}", "route": route, "access": self.access, "start": prev["start"], "drugs": drugs}
        start = dt.datetime.fromisoformat(prev["start"]) if "T" in prev["start"] else dt.datetime.combine(
            self.day, dt.time.fromisoformat(prev["start"])
        )
        a["stop"] = self.clock(start + dt.timedelta(minutes=minutes))
        a.update(extra)
        self.admins.append(a)
        return a

    def premeds(self, heavy: bool = False) -> None:
        rng = self.rng
        r = rng.random()
        if r < 0.45:
            self.give("iv_infusion", [self.drug("J1100"), self.drug("J2405")], rng.choice([15, 20, 30, 30]))
        elif r < 0.75:
            self.give("iv_push", [self.drug("J2469")], None)
            self.give("iv_push", [self.drug("J1100")], None, gap=2)
        elif r < 0.9:
            self.give("iv_infusion", [self.drug("J1100")], rng.choice([15, 30]))
        if heavy:
            self.give("iv_push", [self.drug("J1200")], None, gap=rng.choice([0, 2, 5]))

    def hydration(self, minutes: int) -> None:
        code = "J7030" if minutes >= 60 else "J7050"
        self.give("iv_infusion", [self.drug(code)], minutes, purpose="hydration")


def encounter(rng: random.Random, n: int, bad_rate: float = 0.0, *, regimen: Optional[str] = None,
              setting: Optional[str] = None, payer_type: Optional[str] = None, payer_name: Optional[str] = None,
              diagnoses: Optional[list[str]] = None, day: Optional[dt.date] = None) -> dict:
    """One encounter. Every parameter left None is drawn (the same draws as without parameters, so
    a seed gives the same encounters as before); a given one replaces the draw: ``regimen`` one of
    REGIMEN_NAMES, ``setting`` office | facility, ``payer_type`` medicare | medicare_advantage |
    medicaid | commercial, ``payer_name`` the payer's name, ``diagnoses`` the
    cancer diagnoses to choose from (Z51.11 is added for chemotherapy as usual), ``day`` the date
    of service."""
    drawn_day = dt.date(2025, 10, 1) + dt.timedelta(days=rng.randrange(0, 92))
    day = day or drawn_day
    drawn_regimen, _w, dxs = _pick(rng, REGIMENS)
    if regimen is not None:
        if regimen not in REGIMEN_NAMES:
            raise ValueError(f"regimen {regimen!r}: one of {', '.join(REGIMEN_NAMES)}")
        dxs = next(r[2] for r in REGIMENS if r[0] == regimen)
    regimen = regimen or drawn_regimen
    if diagnoses:
        dxs = list(diagnoses)
    drawn_payer = _pick(rng, PAYERS)[0]
    payer_type = payer_type or drawn_payer
    drawn_setting = "office" if rng.random() < 0.6 else "facility"
    setting = setting or drawn_setting
    e = _Enc(rng, day)
    r = rng.random
    if regimen == "folfox":
        e.premeds()
        ox = e.give("iv_infusion", [e.drug("J9263")], rng.choice([120, 120, 125, 130]))
        e.concurrent("iv_infusion", [e.drug("J0640")], rng.choice([120, 120, 90]))
        e.give("iv_push", [e.drug("J9190")], None)
        if r() < 0.85:
            e.give("iv_infusion", [e.drug("J9190", scale=6.0)], 46 * 60, gap=5, pump="portable")
        ox["primary_reason"] = setting == "office"
    elif regimen == "rchop":
        e.premeds(heavy=True)
        e.give("iv_infusion", [e.drug("J9312")], rng.choice([90, 180, 240, 255]), gap=rng.choice([0, 15, 30]))
        e.give("iv_infusion", [e.drug("J9071")], rng.choice([30, 60, 60]))
        e.give("iv_push", [e.drug("J9000")], None)
        e.give("iv_push", [e.drug("J9370")], None, gap=3)
    elif regimen == "carbo_pacli":
        e.premeds(heavy=r() < 0.7)
        e.give("iv_infusion", [e.drug("J9267")], rng.choice([180, 180, 185, 60]))
        e.give("iv_infusion", [e.drug("J9045", scale=rng.uniform(0.8, 1.5))], rng.choice([30, 30, 45, 60]))
    elif regimen == "pembrolizumab":
        e.give("iv_infusion", [e.drug("J9271", scale=2.0 if r() < 0.25 else 1.0)], rng.choice([30, 30, 31, 35, 45]))
    elif regimen == "nivolumab":
        e.give("iv_infusion", [e.drug("J9299", scale=2.0 if r() < 0.3 else 1.0)], rng.choice([30, 30, 60]))
    elif regimen == "bevacizumab":
        e.premeds()
        e.give("iv_infusion", [e.drug("J9035", scale=rng.choice([1, 1, 2, 3]))], rng.choice([30, 60, 90]))
    elif regimen == "support":
        if r() < 0.6:
            e.give("iv_infusion", [e.drug("J3489")], rng.choice([15, 16, 20, 30]))
        else:
            e.hydration(rng.choice([45, 60, 90, 120]))
    else:  # cisplatin with pre- and post-hydration
        e.hydration(rng.choice([60, 60, 90]))
        e.premeds()
        e.give("iv_infusion", [e.drug("J9060")], rng.choice([60, 60, 120]))
        e.hydration(rng.choice([30, 60, 60, 90]))
    if r() < 0.25:
        e.give("port_flush", [e.drug("J1644", container=False)], None, gap=5)
    if r() < 0.03 and len(e.admins) > 1:
        a = e.admins[-1]
        a["access"] = "peripheral" if e.access != "peripheral" else "port"
        a["separate_access_reason"] = "infusion site incompatible with the agent"
    if r() < 0.02 and e.admins[-1].get("stop"):
        e.admins[-1]["discontinued"] = "infusion reaction"
    admins = e.admins
    rng.shuffle(admins)  # input order does not matter
    enc: dict = {
        "id": f"ENC-{day:%Y%m%d}-{n:07d}",
        "setting": setting,
        "date_of_service": day.isoformat(),
        "payer": {"type": payer_type, "member_id": f"M{rng.randrange(10**8):08d}"},
        "diagnoses": ["Z51.11", rng.choice(dxs)] if regimen not in ("support",) else [rng.choice(dxs)],
        "administrations": admins,
    }
    if payer_type == "medicare":
        enc["payer"]["name"] = "Medicare Part B"
    if payer_name:
        enc["payer"]["name"] = payer_name
    if r() < 0.3:
        enc["services"] = [{"code": rng.choice(["99213", "99214", "99215"]), "separately_identifiable": r() < 0.8}]
    if r() < 0.04:
        grid = [{"item": a["id"], "payer": rng.choice(["sponsor", "insurance"])} for a in admins[:2]]
        enc["clinical_trial"] = {"nct": f"NCT0{rng.randrange(10**7):07d}", "qualifying": r() < 0.9, "billing_grid": grid}
        enc["diagnoses"].append("Z00.6")
    if payer_type != "medicare" and r() < 0.75:
        codes = sorted({d["hcpcs"] for a in admins for d in a["drugs"] if d["hcpcs"].startswith("J9")})
        if codes:
            start = day - dt.timedelta(days=rng.randrange(1, 120))
            auth = {"number": f"PA-{rng.randrange(10**6):06d}", "codes": codes, "start": start.isoformat(),
                    "end": (start + dt.timedelta(days=180 if r() < 0.92 else 20)).isoformat()}
            if r() < 0.5:
                auth["units"] = rng.choice([400, 800, 2000, 5000])
            enc["authorizations"] = [auth]
    if r() < 0.7:
        enc["treatment_plan"] = {"regimen": regimen, "cycle": rng.randrange(1, 7), "planned_cycles": 6,
                                 "drugs": sorted({d["hcpcs"] for a in admins for d in a["drugs"] if d["hcpcs"].startswith("J9")})}
    if bad_rate and r() < bad_rate:
        _spoil(rng, enc)
    return enc


def _spoil(rng: random.Random, enc: dict) -> None:
    """One realistic input mistake."""
    kind = rng.randrange(4)
    admins = enc["administrations"]
    if kind == 0 and admins:
        admins[0]["route"] = "iv_drip"
    elif kind == 1 and admins and admins[0]["drugs"] and "dose" in admins[0]["drugs"][0]:
        del admins[0]["drugs"][0]["dose"]["unit"]
    elif kind == 2:
        enc["setting"] = "home"
    else:
        del enc["diagnoses"]


def generate(n: int, seed: int = 1, bad_rate: float = 0.002, **params) -> Iterator[dict]:
    """``n`` encounters, deterministic for a seed (``params``: see :func:`encounter`)."""
    rng = random.Random(seed)
    for i in range(1, n + 1):
        yield encounter(rng, i, bad_rate, **params)


def pathological(n_admins: int = 3000, seed: int = 1) -> dict:
    """One encounter with thousands of administrations (a malformed export, a runaway pump log)."""
    rng = random.Random(seed)
    enc = encounter(rng, 0)
    enc["id"] = "ENC-PATHOLOGICAL"
    base = dt.datetime.combine(dt.date.fromisoformat(enc["date_of_service"]), dt.time(6, 0))
    enc["administrations"] = [
        {"id": f"p{i}", "route": "iv_push", "access": "port",
         "start": (base + dt.timedelta(minutes=i % 900)).strftime("%Y-%m-%dT%H:%M"),
         "drugs": [{"hcpcs": "J2405", "name": "ondansetron", "dose": {"value": 4, "unit": "mg"}}]}
        for i in range(n_admins)
    ]
    return enc


def write_jsonl(path: str | Path, n: int, seed: int = 1, bad_rate: float = 0.002) -> Path:
    path = Path(path)
    with open(path, "w", encoding="utf-8") as fh:
        for enc in generate(n, seed, bad_rate):
            fh.write(json.dumps(enc, separators=(",", ":")) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bad-rate", type=float, default=0.002)
    ap.add_argument("-o", "--out", default="-")
    ap.add_argument("--regimen", choices=REGIMEN_NAMES, default=None)
    ap.add_argument("--setting", choices=("office", "facility"), default=None)
    ap.add_argument("--payer-type", choices=tuple(p[0] for p in PAYERS), default=None)
    args = ap.parse_args(argv)
    check_codes()
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")
    params = {k: v for k, v in (("regimen", args.regimen), ("setting", args.setting), ("payer_type", args.payer_type)) if v}
    for enc in generate(args.n, args.seed, args.bad_rate, **params):
        out.write(json.dumps(enc, separators=(",", ":")) + "\n")
    out.flush()


if __name__ == "__main__":
    main()

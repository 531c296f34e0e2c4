"""CMS HCPCS Level II alpha-numeric file: the zip as published (fixed-width TXT plus its record
layout), or the TXT with the record layout beside it. The field positions are read from the record
layout itself, so a release that moves a field is read right, and one that drops a needed field is
rejected. Kept: when each code (and modifier) was added and its termination date (the last date
it may be used), which decide a code's validity on a date of service, and the billing unit a long
descriptor clearly ends with (", 50 mg"), for codes that no ASP pricing file lists. Descriptor
text is not kept (a descriptor change does not change validity)."""

from __future__ import annotations

import io
import re
import zipfile

from .core import NUM, OPEN_END, Rejected, Table, quarter_of, to_small

_TAIL = re.compile(rf",\s*({NUM})\s*([A-Za-z]+)\s*$")
# ", per millicurie", ", per 10 mg": a billing unit given after "per" (1 when no number is given)
_PER = re.compile(rf",\s*per\s+(?:({NUM})\s*)?([A-Za-z]+)\s*$", re.I)

FIELDS = {
    "code": "Healthcare Common Procedure Coding System Code",
    "modifier": "HCPCS Modifier Code",
    "ric": "HCPCS Record Identification Code",
    "added": "HCPCS Code Added Date",
    "action_date": "HCPCS Action Effective Date",
    "term": "HCPCS Termination Date",
    "action": "HCPCS Action Code",
    "long": "HCPCS Long Description",
}
_FIELD = re.compile(r"^\s*\d+\.\s+(.+?)\s*(?:CHAR|NUM|GRP)?\s*$")
_POS = re.compile(r"^\s+(\d+)\s+(\d+)\s+(\d+)\s+(?:CHAR|NUM|GRP|DATE)\s*$")


def is_layout(text: str) -> bool:
    return "HCPCS Contractor Record" in text and "HCPCS Termination Date" in text


def layout_positions(text: str, name: str) -> dict[str, tuple[int, int]]:
    """Field name -> (begin, end), 1-based inclusive, from the record layout's 'LENGTH BEG END' lines."""
    found: dict[str, tuple[int, int]] = {}
    current = None
    for line in text.splitlines():
        m = _FIELD.match(line)
        if m:
            current = m.group(1).strip()
            continue
        p = _POS.match(line)
        if p and current and current not in found:
            found[current] = (int(p.group(2)), int(p.group(3)))
    out = {}
    for key, label in FIELDS.items():
        if label not in found:
            raise Rejected(name, None, f"the record layout has no field {label!r} (changed layout?)")
        out[key] = found[label]
    return out


def _date(text: str, name: str, line: int, what: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not re.fullmatch(r"(19|20)\d{6}", text):
        raise Rejected(name, line, f"{what} {text!r} is not a date YYYYMMDD")
    return int(text)


def read_hcpcs_txt(text: str, layout: str, name: str) -> Table:
    pos = layout_positions(layout, name)

    def field(line: str, key: str) -> str:
        b, e = pos[key]
        return line[b - 1:e]

    recs = []
    longs: dict[str, list[str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        ric = field(line, "ric")
        if ric not in "3478" or not ric:
            raise Rejected(name, n, f"record identification code {ric!r} is not 3, 4, 7 or 8")
        if ric in "37":
            recs.append((n, ric, line))
        if ric in "34":
            longs.setdefault(field(line, "code").strip(), []).append(field(line, "long").strip())
    if not recs:
        raise Rejected(name, None, "no procedure or modifier records")
    latest = max(d for n, _r, line in recs if (d := _date(field(line, "action_date"), name, n, "action date")))
    start = latest // 100 * 100 + 1  # the first day of the month of the newest action
    V = quarter_of(start)
    t = Table("hcpcs", f"CMS HCPCS Level II file (newest action {latest}): when each code was added and terminated",
              V, start, OPEN_END)
    t.declare("table/4", "hcpcs_added/3", "hcpcs_term/3", "hcpcs_modifier_added/3", "hcpcs_modifier_term/3",
              "hcpcs_unit_descriptor/4")
    t.fact("table", V, _const("hcpcs"), start, OPEN_END)
    for n, ric, line in recs:
        t.rows_read += 1
        added = _date(field(line, "added"), name, n, "added date")
        term = _date(field(line, "term"), name, n, "termination date")
        if ric == "3":
            code = field(line, "code").strip()
            if not re.fullmatch(r"[A-Z0-9]{5}", code):
                raise Rejected(name, n, f"HCPCS code {code!r} is not 5 characters")
            pred = "hcpcs"
        else:
            code = field(line, "modifier").strip()
            if not re.fullmatch(r"[A-Z0-9]{2}", code):
                raise Rejected(name, n, f"modifier {code!r} is not 2 characters")
            pred = "hcpcs_modifier"
        if added:
            t.fact(f"{pred}_added", V, code, added)
        if term:
            t.fact(f"{pred}_term", V, code, term)
        if ric == "3" and code[0].isalpha():
            _descriptor_unit(t, code, " ".join(longs.get(code, ())))
    return t


def _descriptor_unit(t: Table, code: str, text: str) -> None:
    """The billing unit of a long descriptor that clearly ends with ', <number> <unit>'
    ("Injection, asparaginase (erwinaze), 1,000 iu") or ', per [<number>] <unit>' ("Strontium
    sr-89 chloride, therapeutic, per millicurie" = 1 millicurie); a word that is not a unit of the
    unit table ("per diem", "per vial", "per treatment dose") gives nothing."""
    m = _TAIL.search(text) or _PER.search(text)
    if not m:
        return
    amount, dim, _why = to_small(m.group(1) or "1", m.group(2))
    if amount is not None:
        t.fact("hcpcs_unit_descriptor", t.version, code, amount, _const(dim))


def _const(text: str):
    from .core import Const

    return Const(text)


def read_hcpcs_zip(data: bytes, name: str) -> Table:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise Rejected(name, None, f"not a readable zip: {exc}") from None
    texts = {}
    for info in zf.infolist():
        if info.filename.lower().endswith(".txt"):
            texts[info.filename] = zf.read(info).decode("latin-1")
    layout = next((t for t in texts.values() if is_layout(t)), None)
    if layout is None:
        raise Rejected(name, None, "the zip holds no HCPCS record layout (a .txt naming 'HCPCS Contractor Record')")
    pos = layout_positions(layout, name)
    data_name = next((k for k, v in texts.items() if v is not layout and _looks_fixed(v, pos)), None)
    if data_name is None:
        raise Rejected(name, None, "the zip holds no fixed-width HCPCS data file matching its record layout")
    return read_hcpcs_txt(texts[data_name], layout, f"{name}:{data_name}")


def _looks_fixed(text: str, pos: dict) -> bool:
    first = text.split("\n", 1)[0]
    b, e = pos["ric"]
    return len(first) >= pos["action"][1] and first[b - 1:e] in ("3", "4", "7", "8")

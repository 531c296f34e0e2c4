"""HTML report: DOM/string checks on the self-contained file, and a real render in headless
Chromium with a screenshot that must show the timeline (skipped, with the reason, when the
system has no Chromium)."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from oncologic.cli import main
from oncologic.load import load_file
from oncologic.report import code_sessions, dollars_at_risk, single_report

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples/seed_session.yaml"


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def dom(text: str) -> _Dom:
    d = _Dom()
    d.feed(text)
    return d


def assert_self_contained(text: str) -> None:
    d = dom(text)
    assert not any(tag in ("script", "link", "img", "iframe") for tag, _ in d.elements)
    for _tag, attrs in d.elements:
        for name, value in attrs.items():
            if name in ("src", "href") and value:
                assert value.startswith("#"), f"external reference {name}={value}"
    assert "@import" not in text and "url(http" not in text


def test_single_timeline_has_a_bar_per_administration_with_its_codes() -> None:
    loaded = load_file(str(SEED))
    [s] = code_sessions([loaded])
    text = single_report(s)
    assert_self_contained(text)
    bars = [a for tag, a in dom(text).elements if tag == "g" and a.get("class") == "bar"]
    assert sorted(b["data-admin"] for b in bars) == sorted(a.id for a in loaded.encounter.administrations)
    admin_ids = {a.id for a in loaded.encounter.administrations}
    on_bars = " ".join(b["data-codes"] for b in bars)
    for ln in s.claim.lines:
        if ln.why.from_ and ln.why.from_[0].split(".")[0] in admin_ids:
            assert ln.code in on_bars, f"{ln.code} is not written on any bar"
    # each lane is an access site
    for access in {a.access for a in loaded.encounter.administrations}:
        assert f">{access}</text>" in text
    # excluded time is shaded when the rules rejected a remainder of an administration
    if any(nb.subject in admin_ids for nb in s.claim.not_billed):
        assert 'class="excluded"' in text and "Time not counted" in text
    for ln in s.claim.lines:
        assert ln.why.rule in text


def test_concurrency_is_stacked_in_rows() -> None:
    loaded = load_file(str(SEED))
    [s] = code_sessions([loaded])
    for lane in s.lanes:
        bars = [b for b in s.bars if b.access == lane]
        for i, a in enumerate(bars):
            for b in bars[i + 1:]:
                if a.stop and b.stop and a.start < b.stop and b.start < a.stop:
                    assert a.row != b.row


def _batch_file(tmp_path: Path) -> tuple[Path, list]:
    import yaml

    seed = yaml.safe_load(SEED.read_text())
    seed["date_of_service"] = str(seed["date_of_service"])
    seed["payer"]["coverage_start"] = str(seed["payer"]["coverage_start"])
    second = json.loads(json.dumps(seed))
    second["id"] = "ENC-NO-STOP"
    del second["administrations"][1]["stop"]
    third = json.loads(json.dumps(seed))
    third["id"] = "ENC-SHORT"
    third["administrations"] = third["administrations"][:1]
    docs = [seed, second, third]
    path = tmp_path / "batch.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    return path, docs


def test_batch_summary(tmp_path: Path) -> None:
    path, docs = _batch_file(tmp_path)
    out = tmp_path / "batch.html"
    r = CliRunner().invoke(main, ["report", str(path), "-o", str(out)])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert_self_contained(text)
    from oncologic.load import validate

    sessions = code_sessions([validate(d) for d in docs])
    clean = sum(1 for s in sessions if s.claim.clean)
    assert f"{100 * clean / len(docs):.0f}%" in text and f"({clean} of {len(docs)})" in text
    assert any(not s.claim.clean for s in sessions), "the stop-less infusion must make a claim not clean"
    risk = sum(dollars_at_risk(s.claim) for s in sessions)
    assert f"${risk:.2f}" in text
    for s in sessions:
        for f in s.claim.findings:
            assert f"<td>{f.code}</td>" in text
    links = re.findall(r'href="#(enc-\d+)"', text)
    ids = {a.get("id") for _t, a in dom(text).elements}
    assert links and all(link in ids for link in links)
    # the worst encounter is listed first
    first = re.search(r'<table id="worst">.*?<a href="#enc-(\d+)">', text, re.S).group(1)
    assert not sessions[int(first) - 1].claim.clean


def test_bad_batch_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text('{"id": "x"}\nnot json\n')
    r = CliRunner().invoke(main, ["report", str(path), "-o", str(tmp_path / "o.html")])
    assert r.exit_code == 2 and "line 1" in r.output and "line 2" in r.output and "Traceback" not in r.output


# ---------------------------------------------------------------------------------------------
# a real browser

def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA PNG (what Chromium writes) into rows of pixels."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line) if bpp == 3 else bytes(v for k, v in enumerate(line) if k % 4 != 3))
        prev = line
    return width, height, rows


@pytest.mark.skipif(_chromium() is None, reason="no Chromium on this machine (Debian package chromium; .ci/run installs it)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    r = CliRunner().invoke(main, ["report", str(SEED), "-o", str(out)])
    assert r.exit_code == 0, r.output
    png = tmp_path / "shot.png"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900", f"--screenshot={png}", out.as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert png.exists(), "Chromium wrote no screenshot"
    width, height, rows = read_png(png)
    assert (width, height) == (1280, 900)
    pixels = [row[x:x + 3] for row in rows[::3] for x in range(0, len(row), 9)]
    non_white = sum(1 for p in pixels if min(p) < 235)
    assert non_white / len(pixels) > 0.03, "the page rendered (almost) blank"
    [s] = code_sessions([load_file(str(SEED))])
    from oncologic.report import FAMILY_COLOURS

    for family in {b.family for b in s.bars if b.family}:
        want = bytes.fromhex(FAMILY_COLOURS[family][1:])
        close = sum(1 for p in pixels if all(abs(p[k] - want[k]) < 12 for k in range(3)))
        assert close > 30, f"no {family} bar visible in the screenshot"


# ---------------------------------------------------------------------------------------------
# a 46-hour pump next to a two-hour chair session (issue 14): the axis is broken, labels never overlap

FOLFOX = ROOT / "examples/folfox_facility.yaml"


class _Texts(HTMLParser):
    """The <text> elements of the timeline: (class, x, y, font size, anchor, content)."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[dict] = []
        self._cur: dict | None = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "text":
            self._cur = {**a, "content": ""}
        elif tag == "title" and self._cur is not None:
            self._depth += 1

    def handle_endtag(self, tag):
        if tag == "title" and self._depth:
            self._depth -= 1
        elif tag == "text" and self._cur is not None:
            self.items.append(self._cur)
            self._cur = None

    def handle_data(self, data):
        if self._cur is not None and not self._depth:
            self._cur["content"] += data


def _boxes(svg: str) -> list[tuple[str, float, float, float, float]]:
    p = _Texts()
    p.feed(svg)
    out = []
    for t in p.items:
        size = float(t.get("font-size", 11))
        w = len(t["content"]) * size * 0.6  # generous for the sans-serif fonts used
        x = float(t["x"]) - (w / 2 if t.get("text-anchor") == "middle" else 0)
        y = float(t["y"])
        out.append((t["content"], x, y - size, x + w, y))
    return out


def test_long_pump_next_to_a_chair_session_breaks_the_axis_and_labels_do_not_overlap() -> None:
    [s] = code_sessions([load_file(str(FOLFOX))])
    pump = next(b for b in s.bars if b.stop is not None and b.stop - b.start > 40 * 60)
    chair = [b for b in s.bars if b is not pump and b.stop is not None]
    assert chair and max(b.stop for b in chair) - min(b.start for b in chair) <= 180
    text = single_report(s)
    svg = text[text.index("<svg", text.index("session timeline") - 200):]
    svg = svg[:svg.index("</svg>") + 6]
    breaks = [a for tag, a in dom(svg).elements if tag == "g" and a.get("class") == "axis-break"]
    assert len(breaks) == 1 and int(breaks[0]["data-minutes"]) > 40 * 60
    # the two-hour chair infusion keeps a readable scale (at one scale for 48 hours it would be ~50 px)
    rects = {}
    current = None
    for tag, a in dom(svg).elements:
        if tag == "g" and a.get("class") == "bar":
            current = a["data-admin"]
        elif tag == "rect" and a.get("class") == "bar-body":
            rects[current] = (float(a["x"]), float(a["width"]))
    two_hours = next(b for b in chair if b.stop - b.start >= 120)
    assert rects[two_hours.admin][1] >= 300
    # the pump bar starts after the chair session and runs across the break to its end
    px, pw = rects[pump.admin]
    bx = float(re.search(r'<g class="axis-break"[^>]*>\s*<rect x="([0-9.]+)"', svg).group(1))
    assert px < bx < px + pw
    # no two labels (axis clock times, codes, the break's duration) overlap
    boxes = _boxes(svg)
    assert any("+2d" in b[0] for b in boxes), "the pump's stop day is on the axis"
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            overlap = a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]
            assert not overlap, f"labels overlap: {a[0]!r} and {b[0]!r}"


@pytest.mark.skipif(_chromium() is None, reason="no Chromium on this machine (Debian package chromium; .ci/run installs it)")
def test_broken_axis_screenshot_shows_the_chair_session_at_a_readable_scale(tmp_path: Path) -> None:
    out = tmp_path / "folfox.html"
    r = CliRunner().invoke(main, ["report", str(FOLFOX), "-o", str(out)])
    assert r.exit_code == 0, r.output
    png = tmp_path / "folfox.png"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,420", f"--screenshot={png}", out.as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert png.exists(), "Chromium wrote no screenshot"
    _w, _h, rows = read_png(png)
    from oncologic.report import FAMILY_COLOURS

    def count(colour: str) -> int:
        want = bytes.fromhex(colour[1:])
        return sum(1 for row in rows[::2] for x in range(0, len(row), 6)
                   if all(abs(row[x + k] - want[k]) < 12 for k in range(3)))

    # the therapeutic bars (premed, 30 min; leucovorin, 2 h) cover ~150 x 28 px at a readable scale;
    # on one scale for the whole 48 hours they would be ~60 x 28 px
    assert count(FAMILY_COLOURS["ther"]) > 1200
    assert count(FAMILY_COLOURS["chemo"]) > 1200  # oxaliplatin and the pump

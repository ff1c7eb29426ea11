"""The simulation's report (sim/report.py): one HTML file that parses, every plot in it as
an embedded PNG with its reading, and every figure printed equal to summary.json."""

from __future__ import annotations

import base64
import dataclasses
import json
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from qingsuan.money import format_fen
from qingsuan.sim import report
from qingsuan.sim.scenario import load_scenario
from qingsuan.sim.simulate import Options, Result, simulate

NATIONAL_DAY = Path(str(resources.files("qingsuan") / "scenarios" / "national-day.yaml"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """Collects the images, the figures' readings and the cells tied to summary keys."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []
        self.cells: list[tuple[str, str, str]] = []
        self.captions: list[str] = []
        self.stack: list[str] = []
        self._cell: tuple[str, str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.images.append(a)
        if tag in ("img", "meta", "br"):  # void elements: no end tag
            return
        self.stack.append(tag)
        if tag == "td" and a.get("data-key"):
            self._cell = (str(a["data-key"]), str(a["data-kind"]))
        self._text = []

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()
        if tag == "td" and self._cell is not None:
            self.cells.append((*self._cell, "".join(self._text)))
            self._cell = None
        if tag == "figcaption":
            self.captions.append("".join(self._text))

    def handle_data(self, data: str) -> None:
        self._text.append(data)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    sc = load_scenario(NATIONAL_DAY)
    assert sc.traffic is not None
    sc = dataclasses.replace(sc, traffic=dataclasses.replace(sc.traffic,
                                                             settlement_liquidity=0.05))
    result = simulate(sc, Options(days=2, seed=4, scale=3e-4))
    out = tmp_path_factory.mktemp("report")
    result.write(out)
    return result, out


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.stack == [], "unclosed tags"
    return page


def test_the_report_parses_and_every_plot_is_an_embedded_png(written: tuple[Result, Path]
                                                             ) -> None:
    _, out = written
    page = _parse(out / "report.html")
    # profile, queues, liquidity, funds in transit, costs, historical regimes
    assert len(page.images) == 6 == len(page.captions)
    for img in page.images:
        src = str(img["src"])
        assert src.startswith("data:image/png;base64,")  # nothing fetched from elsewhere
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png.startswith(PNG_SIGNATURE) and len(png) > 5_000
        assert img["alt"]
    assert all(len(c) > 20 for c in page.captions)


def test_every_number_printed_equals_summary_json(written: tuple[Result, Path]) -> None:
    _, out = written
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    page = _parse(out / "report.html")
    # per system at least 5, per participant 4 figures and 5 costs, per regime 5
    assert len(page.cells) >= 3 * 5 + 9 * (4 + 5) + 5 * 5
    for key, kind, text in page.cells:
        value: Any = summary
        for part in key.split("."):
            value = value[part]
        # amounts are printed with their thousands grouped: 1,234.50
        printed = text.replace(",", "")
        expected = (format_fen(value) if kind == "fen" else str(value))
        assert printed == expected, key
    hv = summary["systems"]["HVPS"]
    queues = next(c for c in page.captions if c.startswith("HVPS:"))
    assert f"{hv['delayed_items']:,} payments settled late" in queues
    assert f"queue time {hv['queue_time_s']:,.1f} s" in queues


def test_without_a_chinese_font_the_labels_are_english_and_the_page_says_so(
        written: tuple[Result, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    result, _ = written
    monkeypatch.setattr(report, "cjk_font", lambda: None)
    with pytest.warns(UserWarning, match="no font for Chinese"):
        page = report.render(result.summary, result.tables)
    assert "English labels only" in page and "日内" not in page


def test_a_run_with_payroll_days_shows_its_credits(written: tuple[Result, Path],
                                                   tmp_path: Path) -> None:
    result, _ = written
    summary = {**result.summary, "payroll": {"days": [10, 25], "share_ppm": 1_000_000,
                                             "mean_fen": 800_000, "sigma_ppm": 600_000,
                                             "generated_items": 1_395}}
    path = tmp_path / "report.html"
    path.write_text(report.render(summary, result.tables), encoding="utf-8")
    cells = {key: text for key, _, text in _parse(path).cells}
    assert cells["payroll.generated_items"] == "1,395"
    assert cells["payroll.mean_fen"] == "8,000.00"
    # a run without a payroll block shows no payroll table
    assert "payroll credits" not in report.render(result.summary, result.tables)

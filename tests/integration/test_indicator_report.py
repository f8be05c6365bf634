"""The analysts' indicator report, rendered from a built month and read in headless chromium."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from tests.integration.test_auditor_report import browse, chromium, visible_text  # noqa: F401 - fixture
from tests.simulated import simulate

pytestmark = pytest.mark.integration

MONTH = dt.date(2026, 11, 1)


def test_indicator_report_draws_every_indicator_by_county_and_over_months(warehouse, tmp_path, chromium,  # noqa: F811
                                                                          monkeypatch):
    from ruralwatch import pipeline
    from ruralwatch.orchestration.runner import feeds_with_deliveries

    monkeypatch.setenv("RURALWATCH_REPORTS", str(tmp_path / "reports"))
    landing = simulate(tmp_path / "city", persons=400, months="2026-10:2026-11", seed=4, defects="none")
    for month in (dt.date(2026, 10, 1), MONTH):
        for feed in feeds_with_deliveries(landing, month):
            pipeline.load_feed(feed, month, landing)
            pipeline.gate_feed(feed)
    pipeline.build_warehouse()

    path = pipeline.publish_indicator_report(MONTH)
    assert path and path.endswith("202611/indicator_report.html")
    dom = browse(chromium, tmp_path, Path(path), "--dump-dom").stdout
    text = visible_text(dom)
    assert "2026年11月 防返贫动态监测指标报告" in text
    sections = re.findall(r'<section id="(I\d\d)"', dom)
    assert sections == [f"I{n:02d}" for n in range(1, 24)], sections
    # Every section draws a bar per county with a value and a line over the two months.
    bars = re.findall(r'<rect [^>]*class="bar-rect"', dom)
    points = re.findall(r'<circle [^>]*class="line-point"', dom)
    assert len(bars) >= 23 * 3, len(bars)
    assert len(points) >= 2 * 10, len(points)
    assert "全市" in text and "分子" in text and "分母" in text

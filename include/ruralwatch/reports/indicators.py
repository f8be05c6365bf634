"""The indicator report (监测指标报告): one HTML page per data month, in Chinese, for analysts.

Every indicator of indicators.md with its numerator and denominator for the city, a bar chart of it by
county for the month, and a line chart of the city's value over every month the warehouse holds.
Charts are inline SVG drawn here: the page needs no script, no network and prints as it shows.
It reads the analysts' published view when it exists (small village counts already suppressed) —
and shows county level and above only, where no count is small enough to identify a household.
"""
from __future__ import annotations

import datetime as dt
import html
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import jinja2
import psycopg
from psycopg.rows import dict_row

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")
BAR_WIDTH, BAR_GAP, CHART_HEIGHT = 46, 14, 180


@dataclass
class IndicatorSection:
    indicator_id: str
    name: str
    kind: str
    city: list[dict]
    counties: list[dict]
    history: list[dict]
    bar_svg: str
    line_svg: str


def report_path(reports_dir: Path, month: dt.date) -> Path:
    return reports_dir / f"{month:%Y%m}" / "indicator_report.html"


def _source(conn: psycopg.Connection) -> str:
    for relation in ("published.mart_indicator_values", "marts.mart_indicator_values"):
        if conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]:
            return relation
    raise LookupError("mart_indicator_values is not built yet: run the build_warehouse DAG (ruralwatch build)")


def _number(value) -> float | None:
    return None if value is None else float(value)


def _fmt(value, kind: str = "") -> str:
    number = _number(value)
    if number is None:
        return "—"
    if kind == "ratio":
        return f"{number * 100:.1f}%"
    return f"{number:,.0f}" if number.is_integer() else f"{number:,.2f}"


def bar_chart(rows: list[dict], kind: str) -> str:
    """Counties side by side; the bar's height is its value against the tallest."""
    values = [(_number(r["value"]), r["area_name"]) for r in rows]
    present = [v for v, _ in values if v is not None]
    if not present:
        return '<p class="empty">本月无县级数据</p>'
    top = max(max(present), 1e-9)
    width = len(values) * (BAR_WIDTH + BAR_GAP) + BAR_GAP
    parts = [f'<svg class="chart bar" role="img" viewBox="0 0 {width} {CHART_HEIGHT + 40}" width="{width}" '
             f'height="{CHART_HEIGHT + 40}" xmlns="http://www.w3.org/2000/svg">']
    for i, (value, name) in enumerate(values):
        x = BAR_GAP + i * (BAR_WIDTH + BAR_GAP)
        if value is not None:
            height = max(1.0, CHART_HEIGHT * value / top) if value > 0 else 1.0
            y = CHART_HEIGHT - height + 14
            parts.append(f'<rect x="{x}" y="{y:.1f}" width="{BAR_WIDTH}" height="{height:.1f}" class="bar-rect">'
                         f'<title>{html.escape(name)}：{_fmt(value, kind)}</title></rect>')
            parts.append(f'<text x="{x + BAR_WIDTH / 2}" y="{y - 3:.1f}" class="bar-value">'
                         f'{html.escape(_fmt(value, kind))}</text>')
        parts.append(f'<text x="{x + BAR_WIDTH / 2}" y="{CHART_HEIGHT + 32}" class="bar-label">'
                     f'{html.escape(name[:6])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(history: list[dict], kind: str) -> str:
    """The city's value month by month."""
    points = [(r["period"], _number(r["value"])) for r in history if _number(r["value"]) is not None]
    if not points:
        return '<p class="empty">尚无历史数据</p>'
    width = max(220, 70 * len(points) + 40)
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    span = (high - low) or max(abs(high), 1.0)
    coords = []
    for i, (_, value) in enumerate(points):
        x = 30 + i * ((width - 60) / max(1, len(points) - 1))
        y = 14 + (CHART_HEIGHT - 28) * (1 - (value - low) / span) if high != low else CHART_HEIGHT / 2
        coords.append((x, y))
    parts = [f'<svg class="chart line" role="img" viewBox="0 0 {width} {CHART_HEIGHT + 40}" width="{width}" '
             f'height="{CHART_HEIGHT + 40}" xmlns="http://www.w3.org/2000/svg">',
             '<polyline class="line-path" fill="none" points="'
             + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords) + '"/>']
    for (x, y), (period, value) in zip(coords, points, strict=True):
        label = period.strftime("%Y-%m") if hasattr(period, "strftime") else str(period)
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" class="line-point">'
                     f'<title>{label}：{_fmt(value, kind)}</title></circle>')
        parts.append(f'<text x="{x:.1f}" y="{CHART_HEIGHT + 32}" class="bar-label">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


MEASURE_LABELS = {"households": "按户", "persons": "按人", "total": "合计", "completion": "完工率",
                  "disbursement": "拨付率", "open": "未整改", "resolution": "整改率", "全部门": "全部门"}


def _measure_label(row: dict) -> str:
    value = row.get("breakdown_value") or row.get("measure") or ""
    return MEASURE_LABELS.get(value, value)


def _headline(rows: list[dict]) -> str:
    """The measure charted for an indicator: its total (no breakdown, or the 'total'/全部门 row)."""
    for row in rows:
        if not row.get("breakdown_type") or row.get("breakdown_value") in {"total", "全部门"}:
            return row["measure_code"]
    return rows[0]["measure_code"]


def build_sections(conn: psycopg.Connection, month: dt.date) -> list[IndicatorSection]:
    source = _source(conn)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"select * from {source} where area_level in ('市', '县') "  # noqa: S608 - a constant relation
            "order by indicator_id, measure_code, area_code, period").fetchall()
    by_indicator: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_indicator[row["indicator_id"]].append(row)
    sections = []
    for indicator_id in sorted(by_indicator):
        items = by_indicator[indicator_id]
        headline = _headline(items)
        chart_rows = [r for r in items if r["measure_code"] == headline]
        this_month = [r for r in chart_rows if r["period"] == month]
        city_rows = [r for r in items if r["period"] == month and r["area_level"] == "市"]
        counties = [r for r in this_month if r["area_level"] == "县"]
        history = [r for r in chart_rows if r["area_level"] == "市"]
        kind = items[0].get("value_kind") or ""
        name = items[0].get("indicator_name") or indicator_id
        sections.append(IndicatorSection(indicator_id, name, kind, city_rows, counties, history,
                                         bar_chart(counties, kind), line_chart(history, kind)))
    return sections


def write_indicator_report(conn: psycopg.Connection, reports_dir: Path, month: dt.date) -> Path:
    sections = build_sections(conn, month)
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    environment.filters["fmt"] = _fmt
    environment.filters["measure"] = _measure_label
    page = environment.get_template("indicator_report.html").render(
        month=month, sections=sections, generated_at=dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"))
    path = report_path(reports_dir, month)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    log.info("indicator report written: %s", path)
    return path

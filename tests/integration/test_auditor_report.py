"""The auditor's report opened in a real headless browser (Debian's chromium): what a reader sees."""
from __future__ import annotations

import datetime as dt
import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.deliveries import sample_rows, write_csv
from tests.integration.test_quality_escalations import PEOPLE, claims, deaths, run_month

pytestmark = pytest.mark.integration

NOVEMBER = dt.date(2026, 11, 1)
AS_OF = dt.datetime(2026, 12, 10, 9, tzinfo=dt.timezone(dt.timedelta(hours=8)))
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium, installed with apt-get when this machine (a clean CI box) lacks it."""
    if not CHROMIUM.exists():
        if shutil.which("apt-get") is None:
            pytest.fail("chromium is needed to read the auditor report and /usr/bin/chromium is missing; "
                        "this machine has no apt-get to install it (install Debian's `chromium` package)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                pytest.fail(f"could not install chromium with `{' '.join(command)}` (exit {done.returncode}); "
                            f"install Debian's `chromium` package by hand:\n{done.stderr[-2000:]}")
    if not CHROMIUM.exists():
        pytest.fail("apt-get installed chromium but /usr/bin/chromium is still missing")
    return CHROMIUM


def browse(chromium: Path, tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    command = [str(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", *args, page.as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def visible_text(dom: str) -> str:
    """The page's text as a reader sees it: no tags, no styles, entities decoded, spaces squeezed."""
    dom = re.sub(r"(?s)<(style|script)[^>]*>.*?</\1>", " ", dom)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


def test_auditor_report_reads_right_in_a_browser_and_prints_in_landscape(warehouse, tmp_path, chromium):
    from ruralwatch import pipeline, settings

    landing = tmp_path / "landing"
    roster = sample_rows()
    bad_id = roster[6]["身份证号"][:-1] + "1"          # a wrong check character: one unusable row of 13
    roster[6]["身份证号"] = bad_id
    write_csv(landing / "rural_roster" / "rural_roster_202611.csv", roster, mtime=AS_OF.timestamp() - 8 * 86400)
    write_csv(landing / "health_medical_claims" / "health_medical_claims_202611.csv", claims(False),
              mtime=AS_OF.timestamp() - 7 * 86400)
    write_csv(landing / "civil_affairs_deaths" / "civil_affairs_deaths_202611.csv", deaths(False),
              mtime=AS_OF.timestamp() - 6 * 86400)
    run_month(landing, NOVEMBER, ["rural_roster", "health_medical_claims", "civil_affairs_deaths"])
    # The roster is corrected: its escalations resolve, and the report shows them as resolved.
    write_csv(landing / "rural_roster" / "rural_roster_202611_v2.csv", sample_rows(), mtime=AS_OF.timestamp() - 86400)
    run_month(landing, NOVEMBER, ["rural_roster"])

    report = Path(pipeline.publish_auditor_report(NOVEMBER, as_of=AS_OF))
    reports = settings.reports_dir()
    assert report == reports / "202611" / "auditor_report.html"
    docs = reports / "data_docs" / "index.html"
    assert docs.exists() and list((reports / "data_docs" / "validations" / "rural_roster").rglob("*.html"))
    # A month's build renders that month's runs only: October (no runs) renders none of November's
    # stored runs again, November renders all of them.
    from ruralwatch import db
    from ruralwatch.quality import data_docs

    pages = sorted((reports / "data_docs" / "validations").rglob("*.html"))
    for page in pages:
        page.unlink()
    with db.connect(autocommit=True) as conn:
        data_docs.build_data_docs(conn, reports, dt.date(2026, 10, 1))
        assert not list((reports / "data_docs" / "validations").rglob("*.html"))
        data_docs.build_data_docs(conn, reports, NOVEMBER)
    assert sorted((reports / "data_docs" / "validations").rglob("*.html")) == pages

    dom = browse(chromium, tmp_path, report, "--dump-dom").stdout
    text = visible_text(dom)
    assert "2026年11月数据质量审计报告" in text
    for department in ("乡村振兴局", "医保局", "民政局", "水务局"):
        assert department in text
    with psycopg.connect(warehouse) as conn:
        deliveries = conn.execute("select count(*) from raw.deliveries where data_month = %s", (NOVEMBER,)).fetchone()[0]
        opened, resolved = conn.execute(
            "select count(*) filter (where status <> 'resolved'), count(*) filter (where status = 'resolved') "
            "from dq.escalations").fetchone()
        checks, passed = conn.execute("select count(*), count(*) filter (where success) from dq.check_results").fetchone()
    assert deliveries == 4 and resolved >= 2 and opened >= 3
    assert re.search(rf'id="summary-deliveries">\s*{deliveries}\s*<', dom)
    assert re.search(rf'id="summary-open">\s*{opened}\s*<', dom)
    assert f"{100 * passed / checks:.1f}%" in text
    assert f"本月涉及 {opened + resolved} 个，已销号 {resolved} 个" in text
    for heading in ("各部门质量校验情况", "数据报送及时性", "问题整改台账", "逾期未报", "报送文件被拒收", "复核通过"):
        assert heading in text
    assert "医疗总费用须等于基本医保支付" in text and "出院日期不得早于就诊日期" in text
    # The failing ID appears masked in the ledger's sample, and no resident ID appears whole anywhere.
    assert bad_id[:6] + "*" * 8 + bad_id[-4:] in text
    ids = {bad_id} | {r["身份证号"] for r in sample_rows()} | {r["户主身份证号"] for r in sample_rows()} | {p[0] for p in PEOPLE}
    leaked = [i for i in ids if i in dom]
    assert leaked == []
    for page in reports.rglob("*.html"):
        content = page.read_text(encoding="utf-8", errors="replace")
        assert not [i for i in ids if i in content], f"a full resident ID in {page}"

    # Printable: chromium prints it on A4 landscape pages (the @page rule), more wide than high.
    pdf = tmp_path / "auditor_report.pdf"
    browse(chromium, tmp_path, report, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf.read_bytes())
    assert boxes, "the PDF has no page"
    width, height = (float(v) for v in boxes[0])
    assert (round(width), round(height)) == (842, 595)

    # Regenerated every run, one folder per month.
    october = Path(pipeline.publish_auditor_report(dt.date(2026, 10, 1), as_of=AS_OF))
    assert october == reports / "202610" / "auditor_report.html" and report.exists()
    assert "2026年10月数据质量审计报告" in october.read_text(encoding="utf-8")

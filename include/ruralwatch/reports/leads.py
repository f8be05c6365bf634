"""Per-town lists of new early-warning leads (预警线索推送清单), one XLSX per town and data month.

The warehouse decides what a lead is, its 线索编号, push date and response deadline
(marts.mart_warning_leads, built by dbt); this module only writes the lists a town receives:
`<reports>/<YYYYMM>/leads/<town code>.xlsx`. A lead is pushed in the month it opened and in no
other, so writing a month again rewrites the same lists with the same numbers (never a second
push). A lead that cannot be placed in a town (a ticket filed at county level, a worker with no area)
goes on the list of the nearest area above it, named by that area's code, so someone still answers it.

What a town reads is masked (feeds.md): a person outside the roster appears as a masked ID, never
the ID or a name.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

log = logging.getLogger(__name__)

HEADERS = ("线索编号", "预警对象类型", "户编号/对象", "所在区划", "预警规则", "预警依据", "推送日期", "反馈截止日期")
SUBJECT_LABELS = {"household": "户", "person": "个人（名册外）", "ticket": "热线工单"}
COLUMN_WIDTHS = (26, 14, 22, 24, 36, 60, 12, 14)

LEADS_QUERY = """
select
    leads.lead_id,
    leads.lead_key_type,
    leads.subject_reference,
    coalesce(leads.town_code, counties.area_code, city.area_code) as list_area_code,
    coalesce(towns.area_name, counties.area_name, city.area_name) as list_area_name,
    coalesce(villages.area_name, '') as area_name,
    leads.rule_id,
    leads.rule_name,
    leads.evidence,
    leads.pushed_date,
    leads.response_deadline_date
from marts.mart_warning_leads as leads
cross join (select area_code, area_name from marts.dim_area where area_level = '市') as city
left join marts.dim_area as villages on villages.area_code = leads.area_code
left join marts.dim_area as towns on towns.area_code = leads.town_code
left join marts.dim_area as counties on counties.area_code = leads.county_code
where leads.pushed_month = %(month)s
order by list_area_code, leads.rule_id, leads.lead_id
"""


@dataclass(frozen=True)
class LeadList:
    area_code: str
    area_name: str
    path: Path
    leads: int

    def as_dict(self) -> dict:
        return {"area_code": self.area_code, "area_name": self.area_name, "path": str(self.path),
                "leads": self.leads}


def lists_folder(reports_dir: Path, month: dt.date) -> Path:
    return reports_dir / f"{month:%Y%m}" / "leads"


def write_lead_lists(conn: psycopg.Connection, month: dt.date, reports_dir: Path) -> list[LeadList]:
    """Write the month's lists; returns one entry per list. Lists of an earlier run of the same month
    that no town has any more (the month's data were corrected) are removed, so the folder always
    shows exactly what the warehouse pushes for the month."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(LEADS_QUERY, {"month": month}).fetchall()
    by_area: dict[str, list[dict]] = {}
    for row in rows:
        by_area.setdefault(row["list_area_code"], []).append(row)
    folder = lists_folder(reports_dir, month)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for area_code, leads in sorted(by_area.items()):
        path = folder / f"{area_code}.xlsx"
        _write_list(path, month, leads[0]["list_area_name"], leads)
        written.append(LeadList(area_code, leads[0]["list_area_name"], path, len(leads)))
    keep = {w.path.name for w in written}
    for stale in folder.glob("*.xlsx"):
        if stale.name not in keep:
            stale.unlink()
    log.info("%s: %s leads on %s lists in %s", f"{month:%Y-%m}", len(rows), len(written), folder)
    return written


def _write_list(path: Path, month: dt.date, area_name: str, leads: list[dict]) -> None:
    import openpyxl
    from openpyxl.styles import Alignment, Font

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "预警线索"
    sheet.append([f"{area_name} {month.year}年{month.month}月 预警线索推送清单（请于反馈截止日期前核实并反馈）"])
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.append(list(HEADERS))
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for lead in leads:
        sheet.append([
            lead["lead_id"],
            SUBJECT_LABELS.get(lead["lead_key_type"], lead["lead_key_type"]),
            lead["subject_reference"],
            lead["area_name"],
            f"{lead['rule_id']} {lead['rule_name']}",
            lead["evidence"],
            lead["pushed_date"],
            lead["response_deadline_date"],
        ])
    for index, width in enumerate(COLUMN_WIDTHS, start=1):
        sheet.column_dimensions[openpyxl.utils.get_column_letter(index)].width = width
    for row in sheet.iter_rows(min_row=3):
        row[5].alignment = Alignment(wrap_text=True, vertical="top")
        row[6].number_format = row[7].number_format = "yyyy-mm-dd"
    sheet.freeze_panes = "A3"
    # The workbook says when the list was pushed, not when this file was last written.
    pushed = dt.datetime.combine(leads[0]["pushed_date"], dt.time(9, 0))
    workbook.properties.created = workbook.properties.modified = pushed
    workbook.properties.creator = "防返贫动态监测平台"
    workbook.properties.title = f"{area_name}{month.year}年{month.month}月预警线索推送清单"
    tmp = path.with_suffix(".xlsx.part")
    workbook.save(tmp)
    tmp.replace(path)

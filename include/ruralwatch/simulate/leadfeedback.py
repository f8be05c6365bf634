"""Towns answering the warehouse's pushed leads: lead_feedback/lead_feedback_<YYYYMM>_<town>.xlsx.

The generate command does not write these (it cannot know the platform's 线索编号); the warehouse's
tests push leads, then call write_lead_feedback with them to get the towns' answers.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import names, periods
from .defects import PRESETS
from .deliver import Chunk, Mark, Renderer, choose_style
from .geography import geography
from .rng import stream
from .schema import FEEDS
from .writers import XlsxSink

RESULTS = ("已纳入监测", "已落实帮扶", "不符合纳入条件", "信息有误")
_ANSWERS = {  # share of each result, by rule: how often a signal turns out to be right
    "W01": (0.30, 0.20, 0.40, 0.10), "W02": (0.35, 0.35, 0.20, 0.10), "W03": (0.05, 0.70, 0.10, 0.15),
    "W04": (0.05, 0.60, 0.20, 0.15), "W05": (0.05, 0.50, 0.20, 0.25), "W06": (0.40, 0.05, 0.40, 0.15),
    "W07": (0.00, 0.30, 0.00, 0.70), "W08": (0.00, 0.80, 0.00, 0.20), "W09": (0.25, 0.45, 0.25, 0.05),
}
_NOTES = {
    "已纳入监测": ("经入户核实，家庭收入骤减，已按程序纳入监测", "因病支出较大，已识别为突发严重困难户"),
    "已落实帮扶": ("已落实临时救助并跟踪帮扶", "已安排公益性岗位", "已协调医疗救助报销", "已劝返复学", "已补发工资"),
    "不符合纳入条件": ("经核实家庭人均纯收入高于监测范围", "家庭有稳定务工收入，不存在返贫致贫风险"),
    "信息有误": ("部门数据未及时更新，已反馈相关部门", "身份信息比对有误，经核实非本村人员", "该户已于上月销户"),
}
_KEYS = {
    "id": ("线索编号", "lead_id", "id"),
    "town": ("town", "town_code", "镇", "所属镇", "镇代码"),
    "rule": ("rule", "rule_id", "规则", "预警规则"),
}


def _get(lead: Mapping[str, Any], what: str) -> Any:
    for key in _KEYS[what]:
        if key in lead and lead[key] not in (None, ""):
            return lead[key]
    raise KeyError(f"a lead needs one of {', '.join(_KEYS[what])}: {dict(lead)!r}")


def write_lead_feedback(leads: Iterable[Mapping[str, Any]], month: int | str, out_dir: str | Path, seed: int = 0, *,
                        answer_share: float = 0.85, unknown_leads: int = 0) -> list[dict[str, Any]]:
    """Write each town's answers for `month` under out_dir/lead_feedback/ and say what was written.

    leads: dicts with 线索编号, the 12-digit town code ("town"), the rule ("rule", W01-W09) and the
    household or person key (kept only for the record). About `answer_share` of them get an answer,
    dated within the month; `unknown_leads` extra rows carry a 线索编号 the warehouse never pushed (a
    flagged row). Returns one record per file: file, town, answered (线索编号 -> 核实结果),
    unanswered, unknown, arrival, and the accepted spellings planted.
    """
    m = periods.parse_month(month) if isinstance(month, str) else int(month)
    out = Path(out_dir)
    by_town: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for lead in leads:
        town = str(_get(lead, "town"))
        if len(town) != 12 or not town.isdigit():
            raise ValueError(f"town codes are 12 digits: {town!r}")
        by_town[town].append(lead)
    rng = stream(seed, "lead_feedback", m)
    towns = sorted(by_town)
    extra = defaultdict(int)
    for k in range(unknown_leads):
        extra[towns[k % len(towns)] if towns else "990101101000"] += 1
    records = []
    for town in sorted(set(towns) | set(extra)):
        records.append(_write_town(town, by_town.get(town, []), extra.get(town, 0), m, out, rng, answer_share))
    summary = out / "_truth" / f"lead_feedback_{periods.label(m)}.json"
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(json.dumps(records, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return records


def _write_town(town: str, leads: list[Mapping[str, Any]], unknown: int, month: int, out: Path,
                rng: np.random.Generator, answer_share: float) -> dict[str, Any]:
    first = periods.to_days(periods.first_day(month))
    days = periods.days_in(month)
    answered = [lead for lead in leads if rng.random() < answer_share]
    rows = []
    for lead in answered:
        rule = str(_get(lead, "rule"))
        result = RESULTS[int(rng.choice(4, p=_ANSWERS.get(rule, (0.25, 0.25, 0.25, 0.25))))]
        rows.append((str(_get(lead, "id")), result))
    for k in range(unknown):
        rows.append((f"XS{periods.label(month)}{town[-6:]}9{k:03d}", RESULTS[int(rng.integers(4))]))
    order = rng.permutation(len(rows)).tolist()
    rows = [rows[i] for i in order]
    n = len(rows)
    surnames = names.draw_surnames(rng, n)
    given1, given2 = names.draw_given(rng, n)
    checkers = names.render(surnames, given1, given2, rng.random(n) < 0.6)
    checked = first + rng.integers(0, days, n)
    chunk = Chunk(n=n, data={
        "线索编号": [r[0] for r in rows], "核实结果": [r[1] for r in rows],
        "核实说明": [_NOTES[r[1]][int(rng.integers(len(_NOTES[r[1]])))] for r in rows],
        "核实人": [f"{c}（驻村工作队）" if rng.random() < 0.4 else str(c) for c in checkers],
        "核实日期": checked.astype(np.int64) if n else np.array([], dtype=np.int64),
    })
    pushed = {str(_get(lead, "id")) for lead in leads}
    chunk.marks = [Mark(i, "线索编号", "unknown_lead") for i, r in enumerate(rows) if r[0] not in pushed]
    spec = FEEDS["lead_feedback"]
    style = choose_style(spec, "xlsx", None, rng, month, drift=False)
    last = int(checked.max()) if n else first + days - 1
    arrival = dt.datetime.combine(periods.from_days(last + 1), dt.time(17, 30), periods.CST)
    path = out / "lead_feedback" / f"lead_feedback_{periods.label(month)}_{town}.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    renderer = Renderer(spec, style, PRESETS["none"], rng, month, len(style.title_rows) + 1)
    sink = XlsxSink(path, arrival, f"{geography().name_of().get(int(town), town)}人民政府")
    place = geography().name_of().get(int(town), "")
    sink.title([place + t if k == 0 else t.replace("示范市镇(办)", f"示范市{place}") for k, t in enumerate(style.title_rows)])
    sink.header([style.headers[c] for c in style.columns])
    if n:
        sink.rows(renderer.render(chunk))
    sink.close()
    os.utime(path, (arrival.timestamp(), arrival.timestamp()))
    answers = {r[0]: r[1] for r in rows}
    return {
        "file": path.relative_to(out).as_posix(), "town": town, "arrival": arrival.isoformat(),
        "answered": {k: v for k, v in answers.items() if k in pushed},
        "unanswered": sorted(pushed - set(answers)),
        "unknown": sorted(k for k in answers if k not in pushed),
        "defects": [{"file": path.relative_to(out).as_posix()} | d for d in renderer.defects],
        "accepted": [{"file": path.relative_to(out).as_posix()} | a for a in renderer.accepted],
        "header_row": len(style.title_rows) + 1,
    }


__all__ = ["RESULTS", "write_lead_feedback"]

"""The generate command: a city, moved month by month, delivering every feed, with the truth of each month."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import periods
from .defects import DEFAULT_STRUCTURAL, FOLLOWED_BY_CORRECTION, QUARANTINE_ID_RATE, STRUCTURAL, Preset
from .defects import preset as make_preset
from .deliver import Renderer, api_style, choose_style
from .feeds import BUILDERS, XLSX_MAX_ROWS, Context, estimated_rows
from .geography import write_area_reference
from .population import build_city
from .rng import stream
from .schema import FEEDS, MONTHLY
from .selfcheck import compare
from .timeline import advance
from .truth import INTERPRETATIONS, PLATFORM_DEPENDENT, Oracle, Thresholds
from .writers import CsvSink, XlsxSink, corrupt

MANIFEST_FORMAT = "ruralwatch-simulate-truth/1"
_STRUCTURAL_FEEDS = tuple(f for f in MONTHLY if f != "hrss_employment")


@dataclass
class Options:
    out: Path
    persons: int = 1_000
    months: list[int] = field(default_factory=lambda: [periods.month_of(2026, 11)])
    seed: int = 0
    defects: str = "default"
    rates: dict[str, float] = field(default_factory=dict)          # --rate CLASS=R
    late: dict[str, int] = field(default_factory=dict)             # --late FEED[=DAYS]
    breaks: list[tuple[str, str | None]] = field(default_factory=list)  # --break CLASS[=FEED]
    thresholds: Thresholds = field(default_factory=Thresholds)
    progress: Callable[[str], None] | None = None


@dataclass
class _Written:
    record: dict[str, Any]
    defects: list[dict[str, Any]]
    accepted: list[dict[str, Any]]
    path: Path


def generate(options: Options) -> list[Path]:
    """Write every month's deliveries and manifests under options.out; returns the manifest paths."""
    preset = check(options)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    write_area_reference(out / "_reference" / "area_codes.csv")
    say = options.progress or (lambda _message: None)
    say(f"building a city of {options.persons:,} persons")
    city = build_city(options.persons, options.seed, options.months[0])
    oracle = Oracle(out, options.thresholds)
    run = _Run(options, preset, city, out)
    manifests = []
    for month in options.months:
        say(f"{periods.iso(month)}: the month passes")
        advance(city, month)
        written = run.month(month, say)
        say(f"{periods.iso(month)}: computing the truth")
        truth = oracle.evaluate(month, [w.path for w in written])
        manifests.append(run.manifest(month, written, truth))
    return manifests


def check(options: Options) -> Preset:
    """The preset the options ask for; ValueError if an option names something that does not exist."""
    preset = make_preset(options.defects, options.rates)
    unknown_feeds = {f for f in options.late if f not in MONTHLY} | {f for _, f in options.breaks if f and f not in MONTHLY}
    if unknown_feeds:
        raise ValueError(f"unknown feed: {', '.join(sorted(unknown_feeds))}")
    unknown_breaks = {c for c, _ in options.breaks if c not in STRUCTURAL}
    if unknown_breaks:
        raise ValueError(f"unknown structural break: {', '.join(sorted(unknown_breaks))}")
    for cls, feed in options.breaks:
        if feed == "hrss_employment":
            raise ValueError("hrss_employment comes by API: whole-file breaks are planted on file feeds")
        if cls == "header_only_snapshot" and feed and FEEDS[feed].event:
            raise ValueError(f"{feed} is an event feed: a header-only file is a valid empty month there")
    if not options.months:
        raise ValueError("no month to generate")
    return preset


class _Run:
    def __init__(self, options: Options, preset: Preset, city, out: Path) -> None:
        self.options = options
        self.preset = preset
        self.city = city
        self.out = out
        self.previous_live: dict[str, str] = {}
        self.shas: dict[str, set[str]] = {}

    # -- a month ---------------------------------------------------------------------------------------
    def month(self, month: int, say: Callable[[str], None]) -> list[_Written]:
        events = self._structural_events(month)
        written: list[_Written] = []
        for index, feed in enumerate(MONTHLY):
            say(f"{periods.iso(month)}: {feed}")
            if feed == "hrss_employment":
                written += self._employment(month, index)
            else:
                written += self._feed(feed, month, index, events.get(feed))
        return written

    def _structural_events(self, month: int) -> dict[str, str]:
        rng = stream(self.options.seed, "structural", month)
        first = month == self.options.months[0]
        chosen: dict[str, str] = {}

        def eligible(cls: str) -> list[str]:
            feeds = [f for f in _STRUCTURAL_FEEDS if f not in chosen]
            if cls == "header_only_snapshot":
                feeds = [f for f in feeds if not FEEDS[f].event]
            if cls == "unreadable_file":
                feeds = [f for f in feeds if any(fmt == "xlsx" for fmt, _ in FEEDS[f].formats)
                         and estimated_rows(f, self.city, month) <= XLSX_MAX_ROWS]
            if cls == "undecodable_file":
                feeds = [f for f in feeds if any(fmt.startswith("csv") for fmt, _ in FEEDS[f].formats)]
            return feeds

        classes: list[tuple[str, str | None]] = list(self.options.breaks)
        if self.preset.every_structural:
            classes += [(c, None) for c in STRUCTURAL]
        else:
            for chance in self.preset.structural:
                if rng.random() < chance:
                    classes.append((str(rng.choice(DEFAULT_STRUCTURAL)), None))
        for cls, feed in classes:
            if cls == "resent_last_month" and first:
                continue
            if feed is None:
                feeds = eligible(cls)
                if not feeds:
                    continue
                feed = str(rng.choice(feeds))
            chosen[feed] = cls
        return chosen

    def _feed(self, feed: str, month: int, index: int, event: str | None) -> list[_Written]:
        spec = FEEDS[feed]
        rng = stream(self.options.seed, "plan", feed, month)
        fmt, encoding = _pick_format(spec.formats, rng)
        if fmt == "xlsx" and estimated_rows(feed, self.city, month) > XLSX_MAX_ROWS:
            fmt, encoding = "csv", "utf-8-sig"
        if event == "unreadable_file":
            fmt, encoding = "xlsx", None
        elif event == "undecodable_file" and fmt == "xlsx":
            fmt, encoding = "csv", "gb18030"
        ext = "xlsx" if fmt == "xlsx" else "csv"
        label = periods.label(month)
        redeliver = event is None and rng.random() < self.preset.redelivery_rate
        steps = 2 if (event or redeliver) and event != "folder_name_mismatch" else 1
        arrivals = self._arrivals(feed, month, index, steps, rng)
        base = f"{feed}_{label}"
        out: list[_Written] = []
        if event == "resent_last_month" and feed in self.previous_live:
            previous = self.out / self.previous_live[feed]
            target = self.out / feed / f"{base}{previous.suffix}"
            out.append(self._copy(previous, target, arrivals[0], feed, month, "resent_last_month", 1))
            out.append(self._write(feed, month, 2, fmt, encoding, arrivals[1]))
        elif event in FOLLOWED_BY_CORRECTION:
            broken = self._write(feed, month, 1, fmt, encoding, arrivals[0], structural=event)
            out += [broken, self._write(feed, month, 2, fmt, encoding, arrivals[1])]
        elif event == "unparseable_name":
            y, m = periods.year_month(month)
            odd = [f"{feed}_{y}年{m}月.{ext}", f"{base}_最终版.{ext}", f"{feed}-{label}.{ext}"][int(rng.integers(3))]
            out.append(self._write(feed, month, 1, fmt, encoding, arrivals[0], name=odd, structural=event))
            out.append(self._write(feed, month, 1, fmt, encoding, arrivals[1]))
        elif event == "duplicate_bytes_v2":
            first = self._write(feed, month, 1, fmt, encoding, arrivals[0])
            target = self.out / feed / f"{base}_v2.{ext}"
            out += [first, self._copy(first.path, target, arrivals[1], feed, month, event, 2)]
        elif event == "folder_name_mismatch":
            good = self._write(feed, month, 1, fmt, encoding, arrivals[0])
            others = [f for f in MONTHLY if f != feed]
            folder = others[int(rng.integers(len(others)))]
            target = self.out / folder / good.path.name
            out += [good, self._copy(good.path, target, arrivals[0] - 1800, feed, month, event, 1)]
        elif redeliver:
            out.append(self._write(feed, month, 1, fmt, encoding, arrivals[0]))
            out.append(self._write(feed, month, 2, fmt, encoding, arrivals[1], corrected=True))
        else:
            out.append(self._write(feed, month, 1, fmt, encoding, arrivals[0]))
        return out

    def _employment(self, month: int, index: int) -> list[_Written]:
        """The API's month (the preferred channel) and, some months, the CSV fallback as well."""
        rng = stream(self.options.seed, "plan", "hrss_employment", month)
        api_missing = rng.random() < self.preset.api_missing_rate
        with_file = api_missing or month == self.options.months[0] or rng.random() < 0.3
        arrivals = self._arrivals("hrss_employment", month, index, 2, rng)
        out = []
        if not api_missing:
            out.append(self._write("hrss_employment", month, 1, "jsonl", "utf-8", arrivals[0], api=True))
        if with_file:
            fmt, encoding = _pick_format(FEEDS["hrss_employment"].formats, rng)
            out.append(self._write("hrss_employment", month, 1, fmt, encoding, arrivals[1]))
        return out

    def _arrivals(self, feed: str, month: int, index: int, steps: int, rng: np.random.Generator) -> list[float]:
        """Arrival times: within the first five days of the next month, or after the due day if late."""
        due = periods.due(month)
        start = dt.datetime.combine(periods.first_day(month + 1), dt.time(8, 30), periods.CST)
        late = self.options.late.get(feed, 0)
        if not late and rng.random() < self.preset.late_rate:
            late = int(rng.integers(1, 11))
        if late:
            final = due + dt.timedelta(days=late, hours=-14 + float(rng.uniform(0, 8)))
            times = [final - dt.timedelta(days=steps - 1 - k, hours=float(rng.uniform(0, 3))) for k in range(steps)]
            times[-1] = final
        else:
            span = (due - dt.timedelta(hours=7) - start).total_seconds() - (steps - 1) * 86_400
            first = start + dt.timedelta(seconds=float(rng.uniform(0, span)))
            times = [first + dt.timedelta(days=k, hours=float(rng.uniform(-2, 2)) if k else 0) for k in range(steps)]
        # Distinct seconds for every file keeps the arrival order total.
        return [int(t.timestamp()) + index * 7 + k for k, t in enumerate(times)]

    # -- writing -----------------------------------------------------------------------------------------
    def _write(self, feed: str, month: int, version: int, fmt: str, encoding: str | None, arrival: float, *,
               name: str | None = None, structural: str | None = None, corrected: bool = False,
               api: bool = False) -> _Written:
        """Write one delivery. The same bytes as an earlier delivery of the feed would make it a duplicate
        (an empty event file looks the same every month), so such a file is spelt anew unless planted."""
        for attempt in range(20):
            written = self._write_once(feed, month, version, fmt, encoding, arrival, name=name,
                                       structural=structural, corrected=corrected, api=api, attempt=attempt)
            seen = self.shas.setdefault(feed, set())
            if written.record["sha256"] not in seen or attempt == 19:
                seen.add(written.record["sha256"])
                return written
            written.path.unlink()
        raise AssertionError("unreachable")

    def _write_once(self, feed: str, month: int, version: int, fmt: str, encoding: str | None, arrival: float, *,
                    name: str | None, structural: str | None, corrected: bool, api: bool, attempt: int) -> _Written:
        spec = FEEDS[feed]
        seed = self.options.seed
        variant = "api" if api else f"v{version}{'-odd' if name else ''}{'-' + structural if structural else ''}"
        rng = stream(seed, "render", feed, month, variant, *([attempt] if attempt else []))
        preset = self.preset.scaled(0.3) if corrected else self.preset
        if structural == "quarantined_batch":
            preset = replace(preset, rates=preset.rates | {"id_bad_check": QUARANTINE_ID_RATE}, unusable_cap=None)
        if api:
            style = api_style(spec, rng)
            path = self.out / "_api" / f"{feed}_{periods.label(month)}.jsonl"
        else:
            drift = rng.random() < preset.drift_rate
            style = choose_style(spec, fmt, encoding, rng, month, drift)
            suffix = f"_v{version}" if version > 1 else ""
            ext = "xlsx" if fmt == "xlsx" else "csv"
            path = self.out / feed / (name or f"{feed}_{periods.label(month)}{suffix}.{ext}")
        path.parent.mkdir(parents=True, exist_ok=True)
        defects: list[dict[str, Any]] = []
        header_row = 0 if api else len(style.title_rows) + 1
        if structural == "missing_required_column":
            required = [c for c in spec.required if c in style.columns]
            dropped = required[int(rng.integers(len(required)))]
            style.columns.remove(dropped)
            defects.append({"row": header_row, "data_row": None, "column": dropped, "class": structural})
        for extra in [c for c in style.columns if c not in {x.name for x in spec.columns}]:
            defects.append({"row": header_row, "data_row": None, "column": extra, "class": "extra_unknown_column",
                            "severity": "warning", "value": style.headers[extra]})
        renderer = Renderer(spec, style, preset, rng, month, header_row)
        created = dt.datetime.fromtimestamp(arrival, periods.CST)
        sink = _open_sink(path, style, created, spec)
        if style.fmt == "xlsx":
            sink.title(style.title_rows)
        if style.fmt != "jsonl":
            sink.header([style.headers[c] for c in style.columns])
        if structural != "header_only_snapshot":
            ctx = Context(self.city, month, preset, stream(seed, "defects", feed, month, variant),
                          unusable_cap=preset.unusable_cap)
            for chunk in BUILDERS[feed](ctx):
                sink.rows(renderer.render(chunk))
        else:
            defects.append({"row": header_row, "data_row": None, "column": None, "class": structural})
        sink.close()
        if structural in ("unreadable_file", "undecodable_file"):
            path.write_bytes(corrupt(path.read_bytes(), structural))
            defects.append({"row": None, "data_row": None, "column": None, "class": structural})
        if structural == "unparseable_name":
            defects.append({"row": None, "data_row": None, "column": None, "class": structural})
        corrupted = structural in ("unreadable_file", "undecodable_file")
        if structural == "quarantined_batch":
            defects.append({"row": None, "data_row": None, "column": None, "class": structural,
                            "unusable_rows": renderer.unusable_rows, "data_rows": renderer.data_rows})
        if not corrupted:  # a corrupted file's cells cannot be found any more
            defects += renderer.defects
        os.utime(path, (arrival, arrival))
        record = self._record(path, feed, month, version, style, arrival, header_row,
                              None if corrupted else renderer.data_rows, structural)
        record["planted_unusable_rows"] = None if corrupted else renderer.unusable_rows
        record["corrected_redelivery"] = corrected
        if style.fmt != "jsonl" and not structural:
            record["forms"] = style.forms()
            record["headers"] = [style.headers[c] for c in style.columns]
            record["units"] = style.units
        rel = record["file"]
        tag = {"feed": feed, "file": rel}
        return _Written(record, [tag | d for d in defects],
                        [] if corrupted else [tag | a for a in renderer.accepted], path)

    def _copy(self, source: Path, target: Path, arrival: float, feed: str, month: int, cls: str,
              version: int) -> _Written:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        os.utime(target, (arrival, arrival))
        record = self._record(target, feed, month, version, None, arrival, None, None, cls)
        record["copy_of"] = source.relative_to(self.out).as_posix()
        defect = {"feed": feed, "file": record["file"], "row": None, "data_row": None, "column": None, "class": cls,
                  "copy_of": record["copy_of"]}
        return _Written(record, [defect], [], target)

    def _record(self, path: Path, feed: str, month: int, version: int, style, arrival: float,
                header_row: int | None, data_rows: int | None, structural: str | None) -> dict[str, Any]:
        when = dt.datetime.fromtimestamp(arrival, periods.CST)
        fmt = path.suffix.lstrip(".")
        return {
            "feed": feed, "file": path.relative_to(self.out).as_posix(),
            "channel": "api" if path.parent.name == "_api" else "file", "format": fmt,
            "encoding": style.encoding if style is not None and fmt == "csv" else ("utf-8" if fmt == "jsonl" else None),
            "version": version, "title_rows": len(style.title_rows) if style is not None else None,
            "header_row": header_row, "data_rows": data_rows, "arrival": when.isoformat(),
            "due": periods.due(month).isoformat(), "on_time": when <= periods.due(month),
            "sha256": _sha256(path), "structural": structural,
        }

    # -- the manifest ------------------------------------------------------------------------------------
    def manifest(self, month: int, written: list[_Written], truth: dict[str, Any]) -> Path:
        status = {d["file"]: d for d in truth.pop("deliveries")}
        deliveries = []
        for w in written:
            record = dict(w.record)
            found = status[record["file"]]
            record.update({"status": found["status"], "status_reason": found["reason"],
                           "status_detail": found["detail"], "duplicate_of": found["duplicate_of"],
                           "unusable_rows": found["unusable_rows"]})
            deliveries.append(record)
        defects = [d for w in written for d in w.defects]
        accepted = [a for w in written for a in w.accepted]
        live = {d["file"] for d in deliveries if d["status"] == "live"}
        checks = compare(truth.pop("parsed"), defects, accepted, live)
        self.previous_live.update({d["feed"]: d["file"] for d in deliveries
                                   if d["status"] == "live" and d["channel"] == "file"})
        manifest = {
            "format": MANIFEST_FORMAT, "month": periods.iso(month),
            "period_end": periods.last_day(month).isoformat(), "seed": self.options.seed,
            "persons": self.options.persons, "defects_preset": self.preset.name,
            "parameters": self.options.thresholds.as_dict() | {"due_day": periods.DUE_DAY, "timezone": "+08:00"},
            "deliveries": deliveries,
            "defects": defects,
            "accepted": [a for a in accepted if a["class"] != "id_15_digit"],
            "notes": [a for a in accepted if a["class"] == "id_15_digit"],
            "population": truth["population"],
            "leads": truth["leads"],
            "rules_evaluated": truth["rules_evaluated"],
            "rules_not_evaluated": truth["rules_not_evaluated"],
            "feeds_without_live_delivery": truth["feeds_without_live_delivery"],
            "timeliness": truth["timeliness"],
            "indicators": truth["indicators"],
            "platform_dependent": list(PLATFORM_DEPENDENT),
            "exact": {"indicators": "all listed, under every preset", "rules": "all evaluated rules"},
            "interpretations": list(INTERPRETATIONS),
            "self_check": checks,
        }
        path = self.out / "_truth" / f"{periods.label(month)}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_dumps(manifest), encoding="utf-8")
        return path


def _dumps(manifest: dict[str, Any]) -> str:
    """Readable and compact: one line per top-level scalar, per list item and per indicator."""
    def one(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, default=_json_default)

    parts = []
    for key, value in manifest.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            body = "[\n  " + ",\n  ".join(one(v) for v in value) + "\n ]"
        elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            body = "{\n  " + ",\n  ".join(f"{one(k)}: {one(v)}" for k, v in value.items()) + "\n }"
        else:
            body = one(value)
        parts.append(f" {one(key)}: {body}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(type(value))


def _sha256(path: Path) -> str:
    """The file's SHA-256, read in blocks (a million-person roster is 150 MB)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _pick_format(formats: tuple[tuple[str, float], ...], rng: np.random.Generator) -> tuple[str, str | None]:
    weights = np.array([w for _, w in formats])
    choice = formats[int(rng.choice(len(formats), p=weights / weights.sum()))][0]
    if choice == "xlsx":
        return "xlsx", None
    return "csv", choice.split(":", 1)[1]


def _open_sink(path: Path, style, created: dt.datetime, spec):
    if style.fmt == "xlsx":
        return XlsxSink(path, created, f"示范市{spec.department}")
    if style.fmt == "jsonl":
        return _JsonlSink(path, style.columns)
    return CsvSink(path, style.encoding or "utf-8")


class _JsonlSink:
    """The data-sharing platform's items, one JSON object a line, in the order the API pages them."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self._handle = path.open("w", encoding="utf-8", newline="\n")
        self._columns = columns

    def rows(self, rows: list) -> None:
        for row in rows:
            self._handle.write(json.dumps(dict(zip(self._columns, row, strict=True)), ensure_ascii=False) + "\n")

    def close(self) -> None:
        self._handle.close()

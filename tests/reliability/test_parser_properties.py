"""Hostile values against the util.* SQL parsers, property by property (hypothesis).

The parsers stay plain SQL so they are cheap on millions of rows; the price is that one value a
function cannot take fails a whole staging model or gate. So: for ANY text, no function may raise,
and whatever a parser accepts must be right by an independent Python reading of the spec (GB 11643
for IDs, the calendar for dates, exact decimals for amounts). Each hypothesis example is a list of
values evaluated in one query, so hundreds of values cost one round trip.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.integration

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROVINCES = yaml.safe_load((PROJECT_ROOT / "dbt_project" / "dbt_project.yml").read_text(encoding="utf-8"))[
    "vars"]["id_province_codes"]
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
EXCEL_EPOCH = dt.date(1899, 12, 30)
PROPERTY = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.data_too_large])

# Values that broke or could break a cast: huge numbers, exponents, unicode digits, control characters.
HOSTILE = [
    "99999999999999999999", "1e999", "-1e-999", "9" * 200_000, "1." + "1" * 20_000, "1" * 131_073 + ".5",
    "NaN", "Infinity", "-", "--", "+-1", "0x1F", "１２３４", "٢٠٢٦-١١-٠٥", "२०२६-११-०५", "²⁰²⁶", "2026-11-05\x01",
    "\x7f\x1b[31m", "\u200b610102199001011234", "610102199001011234\u202e", "'); drop table raw.deliveries; --",
    "$$", '"', "\\", "2026-02-30", "2026-13-01", "0000-00-00", "99999999", "2026年13月", "20261", "6.10102E+17",
    " ６１０１０２１９９００１０１１２３ｘ ", "2026-11-05 garbage", "2026-11-05 99:99", "NULL", "nUlL", "无", "/",
]

ALL_FUNCTIONS = [
    "util.clean_text(v)", "util.normalize_resident_id(v)", "util.resident_id_problem(v)",
    "util.resident_id_problem(v, true)", "util.resident_id_was_15_digit(v)",
    "util.resident_id_birth_date(util.normalize_resident_id(v))", "util.resident_id_gender(util.normalize_resident_id(v))",
    "util.parse_date(v)", "util.parse_date(v, true)", "util.date_problem(v)", "util.date_problem(v, true)",
    "util.parse_month(v)", "util.parse_amount(v)", "util.parse_integer(v)", "util.parse_yesno(v)",
    "util.parse_year(v)", "util.parse_school_year(v)", "util.area_code_problem(v)",
    "util.area_code_problem(v, 'village')", "util.area_code_problem(v, 'town_or_village')", "util.area_level(v)",
    "util.mask_resident_id(v)", "util.mask_phone(v)", "util.mask_name(v)",
]


@pytest.fixture(scope="module")
def sql(server_url):
    """A database with only the util.* functions, exactly as prepare_warehouse installs them."""
    from ruralwatch import db
    from ruralwatch.transform import udf_sql

    database = f"ruralwatch_parsers_{os.getpid()}"
    base = server_url.rsplit("/", 1)[0]
    with psycopg.connect(server_url, autocommit=True) as admin:
        db.create_database(admin, database, replace=True)
    conn = psycopg.connect(f"{base}/{database}", autocommit=True)
    conn.execute(udf_sql()[1])

    def evaluate(expressions: list[str], values: list[str]) -> list[tuple]:
        query = f"select v, {', '.join(expressions)} from unnest(%s::text[]) with ordinality as t(v, n) order by n"
        return conn.execute(query, (values,)).fetchall()

    yield evaluate
    conn.close()
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{database}" with (force)')


# -- independent readings of the spec ------------------------------------------------------------------
def check_char(body17: str) -> str:
    return "10X98765432"[sum(int(c) * w for c, w in zip(body17, WEIGHTS, strict=True)) % 11]


def is_valid_gb11643(value: str) -> bool:
    """GB 11643-1999: 17 ASCII digits and a check character, a province code, a real birth date."""
    if not re.fullmatch(r"[0-9]{17}[0-9X]", value, flags=re.ASCII) or value[:2] not in PROVINCES:
        return False
    try:
        dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return value[17] == check_char(value[:17])


def trimmed(value: str) -> str:
    return value.strip(" \t\r\n\u3000")


def normalized_by_spec(value: str) -> str:
    """feeds.md: trim; full-width digits and Ｘ to half-width; x to X; a 15-digit ID to 18."""
    text = trimmed(value).translate(str.maketrans("０１２３４５６７８９Ｘｘx", "0123456789XXX"))
    if re.fullmatch(r"[0-9]{15}", text, flags=re.ASCII):
        body = text[:6] + "19" + text[6:]
        return body + check_char(body)
    return text


# -- strategies ------------------------------------------------------------------------------------------
hostile_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
digit_soup = st.text(st.sampled_from("0123456789０１２３４５６７８９-/年月日.,元 Xx+e:"), max_size=30)
huge_numbers = st.integers(min_value=10**15, max_value=10**400).map(str)


@st.composite
def valid_ids(draw) -> str:
    birth = draw(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2026, 12, 31)))
    body = (draw(st.sampled_from(PROVINCES)) + draw(st.from_regex(r"[0-9]{4}", fullmatch=True))
            + birth.strftime("%Y%m%d") + draw(st.from_regex(r"[0-9]{3}", fullmatch=True)))
    return body + check_char(body)


@st.composite
def spelled(draw, resident_id: str) -> str:
    """An ID as departments spell it: spaces around, full-width digits, a lower-case x."""
    text = resident_id
    if draw(st.booleans()):
        text = text.translate(FULL_WIDTH)
    if draw(st.booleans()):
        text = text.replace("X", "x").replace("Ｘ", "ｘ")
    pad = st.text(st.sampled_from(" \t\u3000"), max_size=3)
    return draw(pad) + text + draw(pad)


@st.composite
def legacy_ids(draw) -> tuple[str, str]:
    birth = draw(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(1999, 12, 31)))
    address = draw(st.sampled_from(PROVINCES)) + draw(st.from_regex(r"[0-9]{4}", fullmatch=True))
    sequence = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    body18 = address + birth.strftime("%Y%m%d") + sequence
    return address + birth.strftime("%y%m%d") + sequence, body18 + check_char(body18)


@st.composite
def damaged_ids(draw) -> str:
    """A valid ID with one character changed or two neighbours swapped: MOD 11-2 catches both."""
    value = draw(valid_ids())
    position = draw(st.integers(0, 16))
    if draw(st.booleans()) and value[position] != value[position + 1]:
        return value[:position] + value[position + 1] + value[position] + value[position + 2:]
    replacement = draw(st.sampled_from([c for c in "0123456789X" if c != value[position]] if position == 17
                                       else [c for c in "0123456789" if c != value[position]]))
    return value[:position] + replacement + value[position + 1:]


@st.composite
def rendered_dates(draw) -> tuple[str, dt.date | None]:
    year, month, day = draw(st.integers(1000, 9999)), draw(st.integers(0, 99)), draw(st.integers(0, 99))
    form = draw(st.sampled_from(["iso", "slash", "compact", "cn"]))
    text = {"iso": f"{year:04d}-{month:02d}-{day:02d}", "slash": f"{year}/{month}/{day}",
            "compact": f"{year:04d}{month:02d}{day:02d}", "cn": f"{year}年{month}月{day}日"}[form]
    if form != "compact":
        text += draw(st.sampled_from(["", " 0:00", " 10:30:00", " 23:59:59.5"]))
    try:
        expected = dt.date(year, month, day) if 1900 <= year <= 2999 else None
    except ValueError:
        expected = None
    return text, expected


# -- never a crash -------------------------------------------------------------------------------------------
@PROPERTY
@given(st.lists(st.one_of(hostile_text, digit_soup, huge_numbers, st.sampled_from(HOSTILE)), min_size=1,
                max_size=40))
@example(HOSTILE)
def test_no_text_makes_a_parser_fail(sql, values):
    """No value breaks a parser.

    Tried: every util.* function (IDs, dates, months, amounts, integers, yes/no, years, area codes, masks) on
    hypothesis-generated text: any unicode but NUL, digit soups, numbers up to 400 digits, and fixed hostile
    values (20-digit and 200,000-digit numbers, 1e999, unicode digits, control characters, SQL).
    Held: one query per list, never an SQL error (a huge number used to overflow numeric in parse_amount and
    in parse_date's serial branch, failing the whole model).
    """
    rows = sql(ALL_FUNCTIONS, values)
    assert [r[0] for r in rows] == values


# -- resident IDs --------------------------------------------------------------------------------------------
@PROPERTY
@given(st.lists(st.one_of(hostile_text, digit_soup, valid_ids(), damaged_ids(), legacy_ids().map(lambda p: p[0])),
                min_size=1, max_size=40))
@example(HOSTILE)
def test_every_accepted_id_passes_an_independent_gb11643_check(sql, values):
    """Accepted resident IDs are real GB 11643 IDs.

    Tried: resident_id_problem and normalize_resident_id on hypothesis text, valid, damaged and 15-digit IDs.
    Held: every ID with no problem normalises to 18 characters that pass a Python GB 11643 check (province,
    calendar birth date, MOD 11-2 check character) and equal the spec's own normalisation of the input.
    """
    for value, problem, normalized in sql(["util.resident_id_problem(v)", "util.normalize_resident_id(v)"], values):
        if problem is None:
            assert is_valid_gb11643(normalized), (value, normalized)
            assert normalized == normalized_by_spec(value), value


@PROPERTY
@given(st.lists(valid_ids().flatmap(lambda i: st.tuples(st.just(i), spelled(i))), min_size=1, max_size=40),
       st.lists(legacy_ids(), min_size=1, max_size=10), st.lists(damaged_ids(), min_size=1, max_size=20))
def test_valid_ids_in_every_spelling_are_accepted_and_damaged_ones_are_not(sql, spellings, legacy, damaged):
    """Valid IDs in every accepted spelling are accepted; a one-character error never is.

    Tried: valid IDs with spaces/ideographic spaces around, full-width digits, x/ｘ; 15-digit legacy IDs;
    valid IDs with one character changed or two neighbours swapped.
    Held: the spellings normalise to the ID; a 15-digit ID upgrades to its 18-digit form and is flagged;
    every damaged ID has a problem (format, birth date, address or check character).
    """
    rows = sql(["util.resident_id_problem(v)", "util.normalize_resident_id(v)", "util.resident_id_was_15_digit(v)"],
               [s for _, s in spellings] + [old for old, _ in legacy] + damaged)
    for (resident_id, _), (_, problem, normalized, was_15) in zip(spellings, rows, strict=False):
        assert (problem, normalized, was_15) == (None, resident_id, False)
    for (_, upgraded), (_, problem, normalized, was_15) in zip(legacy, rows[len(spellings):], strict=False):
        assert (problem, normalized, was_15) == (None, upgraded, True)
    for value, problem, _, _ in rows[len(spellings) + len(legacy):]:
        assert problem is not None, value


# -- dates and months -------------------------------------------------------------------------------------
@PROPERTY
@given(st.lists(st.one_of(hostile_text, digit_soup, rendered_dates().map(lambda p: p[0])), min_size=1, max_size=40))
@example(HOSTILE)
def test_every_parsed_date_is_the_calendar_date_of_its_digits(sql, values):
    """Parsed dates are real dates spelled by the input's own digits.

    Tried: parse_date on hypothesis text, digit soups and dates in every form with impossible parts.
    Held: a parsed value holds only digits, date separators and a time of day, and the date equals the
    year, month and day its digits spell (YYYYMMDD, or the first three digit groups).
    """
    for value, parsed in sql(["util.parse_date(v)"], values):
        if parsed is None:
            continue
        text = trimmed(value)
        assert re.fullmatch(r"[0-9\-/年月日 :.]+", text, flags=re.ASCII), value
        groups = re.findall(r"[0-9]+", text, flags=re.ASCII)
        y, m, d = (groups[0][:4], groups[0][4:6], groups[0][6:]) if len(groups[0]) == 8 else groups[:3]
        assert parsed == dt.date(int(y), int(m), int(d)), value


@PROPERTY
@given(st.lists(rendered_dates(), min_size=1, max_size=60))
def test_dates_in_every_accepted_form_parse_and_impossible_ones_do_not(sql, dates):
    """Every accepted date form parses to its date; impossible dates parse to nothing.

    Tried: years 1000-9999, months and days 0-99, as 2026-11-05, 2026/11/5, 20261105 and 2026年11月5日,
    with and without a time of day.
    Held: exactly the real dates from 1900 to 2999 parse, each to itself.
    """
    rows = sql(["util.parse_date(v)", "util.date_problem(v)"], [text for text, _ in dates])
    for (text, expected), (_, parsed, problem) in zip(dates, rows, strict=True):
        assert parsed == expected, text
        assert (problem is None) == (expected is not None), text


@PROPERTY
@given(st.lists(st.tuples(st.integers(-5, 3_000_000), st.sampled_from(["", ".0", ".5", ".999999"])), min_size=1,
                max_size=40), st.lists(hostile_text, max_size=20))
def test_excel_serials_count_days_from_1899_12_30_and_only_in_numeric_cells(sql, serials, texts):
    """Excel serial numbers are dates only in numeric cells.

    Tried: parse_date(v, is_numeric_cell) on serials -5 to 3,000,000 with fractions, and hypothesis text.
    Held: a numeric cell's serial n is 1899-12-30 + n days (the fraction is the time of day) when that day
    lies in 1900-2999, as for written dates; other numbers and any text in a numeric cell give no date (a
    serial of 500000, year 3268, used to be accepted); a serial in a text cell is no date either.
    """
    values = [f"{n}{fraction}" for n, fraction in serials] + texts
    rows = sql(["util.parse_date(v, true)", "util.parse_date(v, false)"], values)
    for (n, _), (value, numeric, text) in zip(serials, rows, strict=False):
        day = EXCEL_EPOCH + dt.timedelta(days=n) if -693_000 < n < 2_900_000 else None
        expected = day if day and dt.date(1900, 1, 1) <= day <= dt.date(2999, 12, 31) else None
        assert numeric == expected, value
        assert text is None or len(value) == 8, value   # only a YYYYMMDD-shaped serial reads as a date
    for value, numeric, _ in rows[len(serials):]:
        assert numeric is None or re.fullmatch(r"[0-9]{1,6}(\.[0-9]+)?", trimmed(value), flags=re.ASCII), value


@PROPERTY
@given(st.lists(st.one_of(hostile_text, digit_soup, st.tuples(st.integers(1000, 9999), st.integers(0, 99),
                                                               st.sampled_from(["{y}-{m:02d}", "{y}{m:02d}",
                                                                                "{y}年{m}月", "{y}/{m}",
                                                                                "{y}-{m}"])).map(
    lambda p: p[2].format(y=p[0], m=p[1]))), min_size=1, max_size=40))
@example(HOSTILE)
def test_every_parsed_month_is_the_month_its_digits_spell(sql, values):
    """Parsed months are the first day of the month the input's digits spell.

    Tried: parse_month on hypothesis text and on 2026-11, 202611, 2026年11月, 2026/11, 2026-1 with months 0-99.
    Held: a parsed value holds only digits and month separators; it is the 1st of that year and month, and
    every real month from 1900 to 2999 in those forms parses.
    """
    for value, parsed in sql(["util.parse_month(v)"], values):
        text = trimmed(value)
        groups = re.findall(r"[0-9]+", text, flags=re.ASCII)
        well_formed = re.fullmatch(r"([0-9]{4})[-/年]([0-9]{1,2})月?|([0-9]{4})([0-9]{2})", text, flags=re.ASCII)
        if parsed is None:
            if well_formed and len(groups[0]) == 4 and len(groups) == 2:
                assert not (1900 <= int(groups[0]) <= 2999 and 1 <= int(groups[1]) <= 12), value
            continue
        assert re.fullmatch(r"[0-9\-/年月]+", text, flags=re.ASCII), value
        y, m = (groups[0][:4], groups[0][4:]) if len(groups[0]) == 6 else groups[:2]
        assert parsed == dt.date(int(y), int(m), 1), value


# -- amounts, integers, years ----------------------------------------------------------------------------------
amount_texts = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2,
                           allow_nan=False, allow_infinity=False).flatmap(
    lambda d: st.tuples(st.just(d), st.sampled_from([f"{d}", f"{d:,.2f}", f"{d:.2f}元", f"{d:,}元"])))


@PROPERTY
@given(st.lists(st.one_of(hostile_text, digit_soup, huge_numbers, amount_texts.map(lambda p: p[1])), min_size=1,
                max_size=40), st.lists(amount_texts, min_size=1, max_size=20))
@example(HOSTILE, [(Decimal('1234.50'), '1,234.50元')])
def test_amounts_round_trip_exactly(sql, values, amounts):
    """Amounts are exact decimals of what was written.

    Tried: parse_amount on hypothesis text, numbers up to 400 digits, and decimals written as 1234.5,
    1,234.50 and 1234.50元.
    Held: a parsed amount equals Decimal(the text without thousands separators and 元), the text holds
    nothing else, and every written decimal parses back to itself; 400-digit numbers give null, not an error.
    """
    for value, parsed in sql(["util.parse_amount(v)"], values):
        if parsed is not None:
            text = trimmed(value)
            assert re.fullmatch(r"[-+]?[0-9,，]+(\.[0-9]+)?元?", text, flags=re.ASCII), value
            assert parsed == Decimal(text.replace(",", "").replace("，", "").replace("元", "")), value
    rows = sql(["util.parse_amount(v)"], [text for _, text in amounts])
    assert [parsed for _, parsed in rows] == [d for d, _ in amounts]


@PROPERTY
@given(st.lists(st.one_of(hostile_text, digit_soup, huge_numbers, st.integers(-10**16, 10**16).map(str),
                          st.integers(1000, 9999).map(lambda y: f"{y}-{y + 1}")), min_size=1, max_size=40))
@example(HOSTILE)
def test_integers_and_years_round_trip(sql, values):
    """Counts and years are the integers written.

    Tried: parse_integer, parse_year and parse_school_year on hypothesis text, integers to ±10^16 and
    2026-2027 school years.
    Held: a parsed integer equals int(text) (15 digits at most, a trailing .0 allowed); a year is four
    digits; a school year is YYYY or YYYY-(YYYY+1) and gives its first year.
    """
    rows = sql(["util.parse_integer(v)", "util.parse_year(v)", "util.parse_school_year(v)"], values)
    for value, integer, year, school_year in rows:
        text = trimmed(value)
        if integer is not None:
            assert re.fullmatch(r"[-+]?[0-9]{1,15}(\.0+)?", text, flags=re.ASCII), value
            assert integer == int(text.split(".")[0]), value
        if year is not None:
            assert re.fullmatch(r"[0-9]{4}", text, flags=re.ASCII) and year == int(text), value
        if school_year is not None:
            match = re.fullmatch(r"([0-9]{4})(?:-([0-9]{4}))?", text, flags=re.ASCII)
            assert match and school_year == int(match.group(1)), value
            assert match.group(2) is None or int(match.group(2)) == school_year + 1, value


# -- yes/no, area codes, masks ---------------------------------------------------------------------------------
@PROPERTY
@given(st.lists(st.one_of(hostile_text, st.sampled_from(["是", "否", "Y", "N", "y", "n", "1", "0", " 是 ", "YES",
                                                         "true", "对", "01", "是的"])), min_size=1, max_size=40))
@example(HOSTILE)
def test_yes_no_accepts_exactly_the_six_spellings(sql, values):
    """Yes/no accepts 是/否, Y/N, y/n, 1/0 and nothing else.

    Tried: parse_yesno on hypothesis text and near misses (YES, true, 对, 01, 是的).
    Held: true exactly for 是/Y/y/1, false exactly for 否/N/n/0 (after trimming), null for everything else.
    """
    for value, parsed in sql(["util.parse_yesno(v)"], values):
        text = trimmed(value)
        assert parsed == (True if text in {"是", "Y", "y", "1"} else False if text in {"否", "N", "n", "0"} else None), value


def area_level(code: str) -> str:
    if code[4:] == "00000000":
        return "市"
    if code[6:] == "000000":
        return "县"
    return "镇" if code[9:] == "000" else "村"


@PROPERTY
@given(st.lists(st.one_of(hostile_text, digit_soup, st.from_regex(r"99[0-9]{2}(0{8}|[0-9]{2}0{6}|[0-9]{5}0{3}|[0-9]{8})",
                                                                    fullmatch=True), huge_numbers), min_size=1,
                max_size=40))
@example(HOSTILE)
def test_area_codes_are_twelve_digits_at_the_level_required(sql, values):
    """Area codes are 12 digits, at the level a feed requires.

    Tried: area_code_problem at any, village and town-or-village level on hypothesis text and 12-digit
    codes at every level (city, county, town, village).
    Held: no problem only for 12 ASCII digits (or a null form); village level only for a village code;
    town-or-village only for a town or village code.
    """
    rows = sql(["util.area_code_problem(v)", "util.area_code_problem(v, 'village')",
                "util.area_code_problem(v, 'town_or_village')", "util.clean_text(v)"], values)
    for value, any_level, village, town_or_village, cleaned in rows:
        if cleaned is None:
            assert (any_level, village, town_or_village) == (None, None, None), value
            continue
        twelve = re.fullmatch(r"[0-9]{12}", cleaned, flags=re.ASCII) is not None
        assert (any_level is None) == twelve, value
        assert (village is None) == (twelve and area_level(cleaned) == "村"), value
        assert (town_or_village is None) == (twelve and area_level(cleaned) in {"镇", "村"}), value


@PROPERTY
@given(st.lists(st.one_of(hostile_text, valid_ids(), st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)), min_size=1,
                max_size=40))
@example(HOSTILE)
def test_sql_masks_agree_with_the_python_masks_and_hide_the_middle(sql, values):
    """The SQL masks and the Python masks (reports, samples, logs) are the same function.

    Tried: util.mask_resident_id / mask_phone / mask_name against ruralwatch.masking on hypothesis text,
    valid IDs and phone numbers.
    Held: identical results for every value; a masked 18-character ID keeps 6 + 4 characters and never
    contains the ID.
    """
    from ruralwatch import masking

    rows = sql(["util.mask_resident_id(v)", "util.mask_phone(v)", "util.mask_name(v)"], values)
    for value, resident_id, phone, name in rows:
        assert resident_id == masking.mask_resident_id(value), value
        assert phone == masking.mask_phone(value), value
        assert name == (masking.mask_name(value) if value != "" else "**"), value
        if is_valid_gb11643(value):
            assert resident_id == value[:6] + "********" + value[-4:] and value not in resident_id

"""The gate computes each parser call once per row: which calls are shared, and how checks read them."""
import pytest

from ruralwatch.feeds.registry import load_registry
from ruralwatch.quality import gate
from ruralwatch.quality.checks import checks_for, usable_row_parts
from ruralwatch.quality.shared_calls import SharedCalls

COLUMNS = {"resident_id", "birth_date", "household_code", "_numeric_cells", "_data_month"}


def test_one_column_per_call_however_the_column_is_quoted():
    calls = SharedCalls(COLUMNS)
    a = calls.rewrite('util.clean_text("household_code") is null')
    b = calls.rewrite("util.clean_text(household_code) = '户主'")
    assert a == "_call_1 is null"
    assert b == "_call_1 = '户主'"
    assert calls.select_list() == ', util.clean_text("household_code") as _call_1'


def test_different_arguments_are_different_calls():
    calls = SharedCalls(COLUMNS)
    calls.rewrite("util.resident_id_problem(resident_id) is null")
    calls.rewrite("util.resident_id_problem(resident_id, coalesce('resident_id' = any(_numeric_cells), false)) is null")
    assert list(calls.calls) == ["_call_1", "_call_2"]


def test_a_wrapping_call_keeps_its_function_and_shares_the_inner_call():
    calls = SharedCalls(COLUMNS)
    rewritten = calls.rewrite("util.resident_id_gender(util.normalize_resident_id(resident_id)) <> '男'")
    assert rewritten == "util.resident_id_gender(_call_1) <> '男'"
    assert calls.calls == {"_call_1": "util.normalize_resident_id(resident_id)"}


@pytest.mark.parametrize("sql", [
    "util.clean_text(ref.area_code) is null",                       # another relation's column
    "util.clean_text(area_name) is null",                           # not a column of the batch
    "util.clean_text((select max(household_code) from {batch}))",   # a subquery
    "case when birth_date ~ '^[0-9]+$' then util.make_date_or_null(birth_date::int, 1, 1) end",  # a cast
])
def test_a_call_reading_anything_but_the_batch_stays_as_written(sql):
    calls = SharedCalls(COLUMNS)
    assert calls.rewrite(sql) == sql
    assert not calls.shares_every_call(sql)
    assert calls.calls == {}


def test_literals_are_not_mistaken_for_calls_or_columns():
    calls = SharedCalls(COLUMNS)
    sql = "util.clean_text(household_code) = 'util.clean_text(x)' and util.parse_date(birth_date, false) > date '2026-01-01'"
    assert calls.rewrite(sql) == "_call_1 = 'util.clean_text(x)' and _call_2 > date '2026-01-01'"


def test_a_query_check_reading_another_relation_runs_as_written():
    calls = SharedCalls(COLUMNS)
    query = ("select _source_row from {batch} where util.clean_text(household_code) in "
             "(select util.clean_text(w.household_code) from raw.water_supply as w)")
    assert gate._reading_only_the_batch(query, calls) == query
    own = "select _source_row from {batch} where util.normalize_resident_id(resident_id) is distinct from util.normalize_resident_id(resident_id)"
    assert "util." not in gate._reading_only_the_batch(own, calls)


@pytest.mark.parametrize("feed", [f.name for f in load_registry()])
def test_every_feeds_row_checks_read_only_shared_columns(feed):
    """The verdicts are computed above the parallel parse: a parser left in them would run in one
    process. Every generated row check of every feed shares all its calls."""
    spec = load_registry()[feed]
    calls = SharedCalls({c.name for c in spec.columns} | gate.BATCH_COLUMNS)
    for check in checks_for(spec):
        if check.predicate and not check.query:
            assert calls.shares_every_call(check.predicate), (check.name, check.column)
            assert "util." not in calls.rewrite(check.predicate), (check.name, check.column)
    assert "util." not in calls.rewrite(usable_row_parts(spec)[0])

{#
  typed_feed(feed): the live rows of one feed, every declared column typed by the util.* parsers,
  plus `dq_flags` ('column:reason' for each value that did not parse) so nothing is dropped silently.

  The column list, types, units and area levels come from the source's meta, rendered from the feed
  registry (include/ruralwatch/feeds/registry.yml), so staging models never repeat them.
  Live rows: the batch that the quality gate let through for each month (raw.deliveries.is_live).
#}
{% macro typed_feed(feed) %}
    {%- set relation = source('raw', feed) -%}
    {%- set deliveries = source('raw', 'deliveries') -%}
    {%- set columns = feed_columns(feed) %}
    select
        parsed.batch_id, parsed.data_month, parsed.period_end_date, parsed.source_file, parsed.source_row,
        parsed.extra_columns
    {%- for name, meta in columns %},
        parsed.{{ name }}
        {%- if meta.type == 'resident_id' %}, parsed.{{ name }}_problem, parsed.{{ name }}_was_15_digit{% endif %}
    {%- endfor %},
        array_remove(array[
            null
        {%- for name, meta in columns %}
            {%- for flag in column_flags(name, meta) %},
            {{ flag }}
            {%- endfor %}
        {%- endfor %}
        ]::text[], null) as dq_flags,
        parsed._batch_month_rows
    from (

        -- Each value is parsed once, here; the flags above read the parsed values (and whether the cell
        -- held anything), not the raw text again: parsing them again cost as much as the parse itself.
        select
            raw_rows._batch_id as batch_id,
            raw_rows._data_month as data_month,
            (raw_rows._data_month + interval '1 month' - interval '1 day')::date as period_end_date,
            raw_rows._source_file as source_file,
            raw_rows._source_row as source_row,
            raw_rows._extra as extra_columns
        {%- for name, meta in columns %},
            {{ typed_column(name, meta) }}
            {%- for helper in _flag_inputs(name, meta) %},
            {{ helper }}
            {%- endfor %}
        {%- endfor %},
            -- A planner fence, not a figure: a subquery with a window function is not flattened into the
            -- query that reads it, so each parser above runs once per row, in parallel workers. Flattened,
            -- every later use of a column (a flag, a key check, the person_key, the repeated-key window)
            -- re-ran its parser: the roster parsed each resident ID seven times (6.9 s → 2.3 s for 43k
            -- rows). The window is partitioned by batch and month, so a filter on either still reaches
            -- the raw rows before any parser runs.
            count(*) over (partition by raw_rows._batch_id, raw_rows._data_month) as _batch_month_rows
        from {{ relation }} as raw_rows
        inner join {{ deliveries }} as batches
            on batches.batch_key = raw_rows._batch_key
            and batches.is_live

    ) as parsed
{% endmacro %}


{# The types a parser reads, and the flag of a delivered value it cannot read. #}
{% macro _invalid_value_flags() -%}
    {{ return({'date': 'invalid_date', 'event_date': 'invalid_date', 'month': 'invalid_month',
               'amount': 'invalid_amount', 'integer': 'invalid_integer', 'yesno': 'invalid_yesno',
               'year': 'invalid_year', 'school_year': 'invalid_school_year'}) }}
{%- endmacro %}


{#
  What a column's flags need besides its parsed value: whether the cell held anything (a value that
  does not parse is null once parsed, but it was delivered), and an area code's problem.
#}
{% macro _flag_inputs(name, meta) -%}
    {%- set col = 'raw_rows.' ~ adapter.quote(name) -%}
    {%- set t = meta.type -%}
    {%- set inputs = [] -%}
    {%- if t in _invalid_value_flags() -%}
        {%- do inputs.append("util.clean_text(" ~ col ~ ") is not null as _" ~ name ~ "_is_filled") -%}
    {%- elif t == 'area_code' -%}
        {%- do inputs.append("util.area_code_problem(" ~ col ~ ", '" ~ (meta.level or 'any') ~ "') as _" ~ name ~ "_area_problem") -%}
    {%- endif -%}
    {{ return(inputs) }}
{%- endmacro %}


{% macro _is_numeric_cell(name) -%}
    coalesce('{{ name }}' = any(raw_rows._numeric_cells), false)
{%- endmacro %}


{% macro _unit_factor(name, meta) -%}
    {#- The header names the unit; the declaration names the unit we store. -#}
    case coalesce(batches.column_units ->> '{{ name }}', '{{ meta.unit }}')
        when '{{ meta.unit }}' then 1
        when '万元' then 10000
        else 0.0001
    end
{%- endmacro %}


{% macro typed_column(name, meta) -%}
    {%- set col = 'raw_rows.' ~ adapter.quote(name) -%}
    {%- set t = meta.type -%}
    {%- if t == 'resident_id' -%}
        util.normalize_resident_id({{ col }}) as {{ name }},
        util.resident_id_problem({{ col }}, {{ _is_numeric_cell(name) }}) as {{ name }}_problem,
        util.resident_id_was_15_digit({{ col }}) as {{ name }}_was_15_digit
    {%- elif t in ('date', 'event_date') -%}
        util.parse_date({{ col }}, {{ _is_numeric_cell(name) }}) as {{ name }}
    {%- elif t == 'month' -%}
        util.parse_month({{ col }}) as {{ name }}
    {%- elif t == 'amount' -%}
        util.parse_amount({{ col }}) * {{ _unit_factor(name, meta) }} as {{ name }}
    {%- elif t == 'integer' -%}
        util.parse_integer({{ col }}) as {{ name }}
    {%- elif t == 'yesno' -%}
        util.parse_yesno({{ col }}) as {{ name }}
    {%- elif t == 'year' -%}
        util.parse_year({{ col }}) as {{ name }}
    {%- elif t == 'school_year' -%}
        util.parse_school_year({{ col }}) as {{ name }}
    {%- else -%}
        util.clean_text({{ col }}) as {{ name }}
    {%- endif -%}
{%- endmacro %}


{#
  Each flag expression is 'column:reason' or null, over typed_feed's parsed values: `parsed.<column>`,
  its `_<column>_is_filled` and `_<column>_area_problem` (_flag_inputs), and period_end_date.
#}
{% macro column_flags(name, meta) -%}
    {%- set value = 'parsed.' ~ name -%}
    {%- set filled = 'parsed._' ~ name ~ '_is_filled' -%}
    {%- set t = meta.type -%}
    {%- set flags = [] -%}
    {%- set invalid = _invalid_value_flags() -%}
    {%- if meta.required and t != 'resident_id' -%}
        {%- set missing = ('not ' ~ filled) if t in invalid else (value ~ ' is null') -%}
        {%- do flags.append("case when " ~ missing ~ " then '" ~ name ~ ":missing' end") -%}
    {%- endif -%}
    {%- if t == 'resident_id' -%}
        {%- set problem = value ~ '_problem' -%}
        {%- if meta.required -%}
            {%- do flags.append("'" ~ name ~ ":' || " ~ problem) -%}
        {%- else -%}
            {%- do flags.append("case when " ~ problem ~ " <> 'missing' then '" ~ name ~ ":' || " ~ problem ~ " end") -%}
        {%- endif -%}
        {%- do flags.append("case when " ~ value ~ "_was_15_digit then '" ~ name ~ ":was_15_digit' end") -%}
    {%- elif t in invalid -%}
        {%- do flags.append("case when " ~ filled ~ " and " ~ value ~ " is null then '" ~ name ~ ":" ~ invalid[t] ~ "' end") -%}
        {%- if t == 'event_date' -%}
            {%- do flags.append("case when " ~ value ~ " > parsed.period_end_date then '" ~ name ~ ":future_date' end") -%}
        {%- elif t in ('amount', 'integer') -%}
            {%- do flags.append("case when " ~ value ~ " < 0 then '" ~ name ~ ":negative' end") -%}
        {%- endif -%}
    {%- elif t == 'enum' -%}
        {%- set quoted = [] -%}
        {%- for v in meta['values'] -%}{%- do quoted.append("'" ~ v ~ "'") -%}{%- endfor -%}
        {%- do flags.append("case when " ~ value ~ " not in (" ~ quoted | join(', ') ~ ") then '" ~ name ~ ":not_allowed' end") -%}
    {%- elif t == 'area_code' -%}
        {%- do flags.append("'" ~ name ~ ":' || parsed._" ~ name ~ "_area_problem") -%}
    {%- endif -%}
    {{ return(flags) }}
{%- endmacro %}

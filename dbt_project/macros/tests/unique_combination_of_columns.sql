{#
  The grain test dbt_utils would give us; the dbt hub is out of reach, so it lives here.

  newest_month_of: a feed; only the rows of its newest live month are tested. For the staging views:
  their grain is a property of their SQL (the raw rows are unique by batch and row, and a join that
  fanned rows out would do so in every month), while testing every month of a view parsed the feed's
  whole history again at each build (the roster: 4 s a month at a million persons, growing monthly).
  The month is a literal, so the filter reaches the raw rows before the view parses them.
#}
{% test unique_combination_of_columns(model, columns, newest_month_of=none) %}
    select {{ columns | join(', ') }}, count(*) as row_count
    from {{ model }}
    {%- if newest_month_of %}
    where data_month = {{ newest_live_month(newest_month_of) }}
    {%- endif %}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}


{# The newest data month with a live batch of the feed, as a date literal (null::date when none). #}
{% macro newest_live_month(feed) %}
    {#- source() before the return, so that parsing records the test's dependency on the ledger. -#}
    {%- set deliveries = source('raw', 'deliveries') -%}
    {%- if not execute -%}{{ return("null::date") }}{%- endif -%}
    {%- set result = run_query("select max(data_month) from " ~ deliveries ~ " where feed = '" ~ feed
                               ~ "' and is_live") -%}
    {%- set month = result.rows[0][0] if result and result.rows else none -%}
    {{ return("date '" ~ month ~ "'" if month else "null::date") }}
{% endmacro %}

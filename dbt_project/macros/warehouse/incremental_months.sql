{#
  The data months an incremental fact must (re)build this run, as a SQL list of date literals.

  Literals, not a join: a filter on data_month with constants is pushed through the staging views
  (their windows are partitioned by batch and month) down to the raw rows, so a run parses only the
  months it builds; a join to a months table would make PostgreSQL parse every month of history first.

  months_to_rebuild(): roster months whose inputs fingerprint (int_periods_fingerprinted) is not the
  one this model was built with — a new month, a corrected delivery, a changed seed; every roster
  month on a full build. months_to_rebuild(roster_only=false): any month with a live feed.
  batches_to_load(feed): months whose live batch of the feed is not the one this model holds.
#}
{% macro months_to_rebuild(roster_only=true) %}
    {%- if not _exists(ref('int_periods_fingerprinted')) -%}{{ return("null::date") }}{%- endif -%}
    {%- set query -%}
        select periods.data_month
        from {{ ref('int_periods_fingerprinted') }} as periods
        where {{ "'rural_roster' = any(periods.live_feeds)" if roster_only else 'true' }}
        {%- if is_incremental() %}
          and not exists (
              select 1 from {{ this }} as built
              where built.data_month = periods.data_month and built.inputs_fingerprint = periods.inputs_fingerprint
          )
        {%- endif %}
        order by 1
    {%- endset -%}
    {{ return(_date_literals(run_query(query))) }}
{% endmacro %}


{% macro batches_to_load(feed) %}
    {%- if not _exists(ref('stg_raw__deliveries')) -%}{{ return("null::date") }}{%- endif -%}
    {%- set query -%}
        select deliveries.data_month
        from {{ ref('stg_raw__deliveries') }} as deliveries
        where deliveries.feed = '{{ feed }}' and deliveries.is_live and deliveries.data_month is not null
        {%- if is_incremental() %}
          and not exists (
              select 1 from {{ this }} as built
              where built.data_month = deliveries.data_month and built.batch_id = deliveries.batch_id
          )
        {%- endif %}
        order by 1
    {%- endset -%}
    {{ return(_date_literals(run_query(query))) }}
{% endmacro %}


{% macro _date_literals(result) %}
    {%- set dates = [] -%}
    {%- for row in result.rows -%}
        {%- do dates.append("date '" ~ row[0] ~ "'") -%}
    {%- endfor -%}
    {{ return(dates | join(', ') if dates else "null::date") }}
{% endmacro %}


{# At parse time, or compiling against a warehouse not built yet (dbt compile, docs generate), there is
   nothing to ask: no months. #}
{% macro _exists(relation) %}
    {%- if not execute -%}{{ return(false) }}{%- endif -%}
    {{ return(adapter.get_relation(database=relation.database, schema=relation.schema,
                                   identifier=relation.identifier) is not none) }}
{% endmacro %}

{#
  source_or_empty(source_name, table_name, columns): the source's columns when the relation exists,
  else an empty relation of the same shape. For tables another part of the platform owns and may not
  have created yet in a fresh warehouse (dq.escalations): the build must not fail for their absence,
  and the lineage to the source stays visible in the docs.
  columns: a list of [name, type] pairs.
#}
{% macro source_or_empty(source_name, table_name, columns) %}
    {%- set relation = source(source_name, table_name) -%}
    {%- set found = adapter.get_relation(database=relation.database, schema=relation.schema,
                                         identifier=relation.identifier) if execute else none -%}
    {%- if found is not none %}
    select
        {%- for name, type in columns %}
        {{ adapter.quote(name) }}::{{ type }} as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ relation }}
    {%- else %}
    select
        {%- for name, type in columns %}
        null::{{ type }} as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    where false
    {%- endif %}
{% endmacro %}

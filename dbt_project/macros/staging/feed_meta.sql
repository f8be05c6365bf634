{#
  A feed's declaration as the generated raw sources carry it (registry.yml → _raw__sources.yml):
  feed_columns(feed) → [(column, meta), …] in declared order; feed_key(feed) → the key's columns.
  typed_feed and staged_feed read them through these two macros, so a dbt unit test of a staging
  model — which compiles without the project's graph — can hand them the declaration as an override.
#}
{% macro feed_columns(feed) %}
    {%- set columns = [] -%}
    {%- if execute -%}
        {%- for node in graph.get('sources', {}).values() if node.source_name == 'raw' and node.name == feed -%}
            {%- for name, col in node.columns.items() -%}
                {%- do columns.append((name, col.get('meta') or col.get('config', {}).get('meta', {}))) -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(columns) }}
{% endmacro %}


{% macro feed_key(feed) %}
    {%- set key = [] -%}
    {%- if execute -%}
        {%- for node in graph.get('sources', {}).values() if node.source_name == 'raw' and node.name == feed -%}
            {%- set meta = node.get('meta') or node.get('config', {}).get('meta', {}) -%}
            {%- do key.extend(meta.key or []) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(key) }}
{% endmacro %}

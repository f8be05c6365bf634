{#
  The feeds as the registry declares them, read from the generated raw sources' meta
  (include/ruralwatch/feeds/registry.yml → models/staging/_raw__sources.yml), so no model keeps a
  second list of feeds, departments or due days.
#}
{% macro registry_feeds() %}
    {%- set feeds = [] -%}
    {%- if execute -%}
        {%- for node in graph.get('sources', {}).values() if node.source_name == 'raw' -%}
            {%- set meta = node.get('meta') or node.get('config', {}).get('meta', {}) -%}
            {%- if meta.feed -%}
                {%- do feeds.append({
                    'feed': meta.feed, 'title': meta.title, 'kind': meta.kind,
                    'department_code': meta.department, 'department_name': meta.department_name,
                    'due_day': meta.due_day, 'is_expected_monthly': meta.expected_monthly,
                    'columns': node.columns}) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(feeds | sort(attribute='feed')) }}
{% endmacro %}


{# A `select … union all …` of the feeds, for a CTE. #}
{% macro registry_feeds_relation() %}
    {%- set feeds = registry_feeds() -%}
    {%- if feeds | length == 0 %}
    select null::text as feed, null::text as feed_title, null::text as department_code,
           null::text as department_name, null::int as due_day, null::boolean as is_expected_monthly
    where false
    {%- endif %}
    {%- for f in feeds %}
    select '{{ f.feed }}'::text as feed, '{{ f.title }}'::text as feed_title,
           '{{ f.department_code }}'::text as department_code, '{{ f.department_name }}'::text as department_name,
           {{ f.due_day | int }}::int as due_day, {{ 'true' if f.is_expected_monthly else 'false' }} as is_expected_monthly
    {%- if not loop.last %}
    union all{% endif %}
    {%- endfor %}
{% endmacro %}


{# The allowed values of an enum column, as the registry declares them. #}
{% macro registry_values(feed, column) %}
    {%- for f in registry_feeds() if f.feed == feed -%}
        {%- set meta = f.columns[column].get('meta') or f.columns[column].get('config', {}).get('meta', {}) -%}
        {{ return(meta['values'] or []) }}
    {%- endfor -%}
    {{ return([]) }}
{% endmacro %}

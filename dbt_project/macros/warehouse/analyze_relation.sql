{#
  Post-hook for tables dbt builds: give the planner statistics at once. A table dbt has just created has
  none until autovacuum gets to it, and the next model's plan then guesses one row per table and nests
  loops over thousands (minutes instead of milliseconds on a fresh warehouse). Views have nothing to
  analyze.
#}
{% macro analyze_relation() %}
    {%- if model.config.materialized in ('table', 'incremental', 'snapshot') -%}
        analyze {{ this }}
    {%- endif -%}
{% endmacro %}

{#
  Relationship tests that depend on one model only. dbt's `relationships` depends on both models; the
  build DAG (Cosmos, one task per model, tests selected eagerly) then runs it with whichever parent is
  built first, against a table the other has not built yet. These name the other model by name and
  resolve it from the graph at run time, so they run with the tested model alone; the other model must
  be upstream of it, so it is built — and current — by then.

  references: every non-null value of the column is a `field` of the upstream model `to`.
  covers:     every non-null value of the upstream model `from`'s `field` is in the column (a dimension
              covers the facts it was built from).
#}
{% macro _relation_of(name) %}
    {%- if execute -%}
        {%- for node in graph.nodes.values()
              if node.resource_type in ('model', 'seed', 'snapshot') and node.name == name -%}
            {{ return(api.Relation.create(database=node.database, schema=node.schema,
                                          identifier=node.alias or node.name)) }}
        {%- endfor -%}
        {{ exceptions.raise_compiler_error("references/covers: no model, seed or snapshot named " ~ name) }}
    {%- endif -%}
    {{ return(none) }}
{% endmacro %}


{% test references(model, column_name, to, field) %}
    select child.{{ column_name }}
    from {{ model }} as child
    where child.{{ column_name }} is not null
      and not exists (
          select 1 from {{ _relation_of(to) }} as parent
          where parent.{{ field }} = child.{{ column_name }}
      )
{% endtest %}


{% test covers(model, column_name, from, field) %}
    select source_rows.{{ field }}
    from {{ _relation_of(from) }} as source_rows
    where source_rows.{{ field }} is not null
      and not exists (
          select 1 from {{ model }} as covering
          where covering.{{ column_name }} = source_rows.{{ field }}
      )
{% endtest %}

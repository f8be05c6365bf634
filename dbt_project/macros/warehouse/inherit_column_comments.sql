{#
  A post-hook for views that republish a model's columns (models/marts/published): copy the model's
  column comments onto the view's columns of the same name, so analysts see the same Chinese
  descriptions in any SQL client without a second copy of them in YAML. Columns the view documents
  itself (persist_docs) keep their own.
#}
{% macro inherit_column_comments(model_name) %}
    {%- set source_relation = ref(model_name) -%}
do $inherit$
declare
    r record;
begin
    for r in
        select view_col.attname, col_description(src_col.attrelid, src_col.attnum) as description
        from pg_attribute as src_col
        inner join pg_attribute as view_col
            on view_col.attrelid = format('%I.%I', '{{ this.schema }}', '{{ this.identifier }}')::regclass
            and view_col.attname = src_col.attname
            and view_col.attnum > 0
            and not view_col.attisdropped
        where src_col.attrelid = format('%I.%I', '{{ source_relation.schema }}', '{{ source_relation.identifier }}')::regclass
          and src_col.attnum > 0
          and not src_col.attisdropped
          and col_description(src_col.attrelid, src_col.attnum) is not null
          and col_description(view_col.attrelid, view_col.attnum) is null
    loop
        execute format('comment on column %I.%I.%I is %L', '{{ this.schema }}', '{{ this.identifier }}',
                       r.attname, r.description);
    end loop;
end
$inherit$
{% endmacro %}

{#
  staged_feed(feed): typed_feed plus what every staging model needs on top — a pseudonymous
  person_key for each valid resident ID column (`<column>_person_key`, and `person_key` for the
  feed's main `resident_id`), and whether the row can take part in indicators and rules:

  - has_valid_resident_ids: every required resident ID column valid after normalisation;
  - has_valid_key: every key column present (and valid, for ID and area-code keys);
  - is_key_repeated: another row of the same batch has the same key (feeds.md: keys are unique
    within one delivery; neither copy can be trusted, so both are out — the gate counts them the same
    way against the batch's 2%). The window is partitioned by batch and data month (a batch has one
    month) so that a filter on either reaches the raw rows before the parsers run: the incremental
    facts read one month of a feed, not its history;
  - is_usable: all three are fine, so the row can be joined (feeds.md: "a row whose key is invalid
    after normalisation takes part in no indicator and no rule").
  Staging models select from it and add only what is particular to their feed.
#}
{% macro staged_feed(feed) %}
    {%- set id_columns = [] -%}
    {%- set required_ids = [] -%}
    {%- set key_checks = [] -%}
    {%- set key_columns = [] -%}
    {%- set columns = feed_columns(feed) -%}
    {%- for name, meta in columns -%}
        {%- if meta.type == 'resident_id' -%}
            {%- do id_columns.append(name) -%}
            {%- if meta.required -%}{%- do required_ids.append(name) -%}{%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for key_name in feed_key(feed) -%}
        {%- for name, meta in columns if name == key_name -%}
            {%- do key_columns.append('typed.' ~ name) -%}
            {%- if meta.type == 'resident_id' -%}
                {%- do key_checks.append('typed.' ~ name ~ '_problem is null') -%}
            {%- elif meta.type == 'area_code' -%}
                {%- do key_checks.append("typed." ~ name ~ " is not null and util.area_code_problem(typed." ~ name ~ ", '" ~ (meta.level or 'any') ~ "') is null") -%}
            {%- else -%}
                {%- do key_checks.append('typed.' ~ name ~ ' is not null') -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor %}
    {%- set key_valid = '(' ~ (key_checks | join(') and (') if key_checks else 'true') ~ ')' %}
    with typed as (

        {{ typed_feed(feed) }}

    ),

    keyed as (

        -- The keyed hash of each ID under a planner fence of its own, as typed_feed's parsers are: in the
        -- key window's query below, PostgreSQL computes it after the window, in one process (a month of
        -- enrollment: 4.3 s of fct_person_month's 38 s), and here in parallel workers.
        select
            typed.*
            {%- for name in id_columns %},
            restricted.person_key_hmac(case when typed.{{ name }}_problem is null then typed.{{ name }} end,
                                       pseudonym.inner_pad, pseudonym.outer_pad)
                as {{ 'person_key' if name == 'resident_id' else name ~ '_person_key' }}
            {%- endfor %},
            count(*) over (partition by typed.batch_id, typed.data_month) as _keyed_batch_month_rows
        from typed
        {%- if id_columns %}
        -- The key row once per query: restricted.person_key() read it again for every ID it hashed.
        left join restricted.pseudonym_key as pseudonym on pseudonym.key_slot = 1
        {%- endif %}

    ),

    checked as (

        select
            {#- the columns without the planner fences (_batch_month_rows, _keyed_batch_month_rows) #}
            typed.batch_id, typed.data_month, typed.period_end_date, typed.source_file, typed.source_row,
            typed.extra_columns,
            {%- for name, meta in columns %}
            typed.{{ name }},
            {%- if meta.type == 'resident_id' %} typed.{{ name }}_problem, typed.{{ name }}_was_15_digit,{% endif %}
            {%- endfor %}
            typed.dq_flags
            {%- for name in id_columns %},
            typed.{{ 'person_key' if name == 'resident_id' else name ~ '_person_key' }}
            {%- endfor %},
            {% if required_ids -%}
            ({% for name in required_ids %}typed.{{ name }}_problem is null{{ ' and ' if not loop.last }}{% endfor %})
            {%- else -%}true{%- endif %} as has_valid_resident_ids,
            {{ key_valid }} as has_valid_key,
            {% if key_columns -%}
            {{ key_valid }}
                and count(*) filter (where {{ key_valid }}) over (partition by typed.batch_id, typed.data_month, {{ key_columns | join(', ') }}) > 1
            {%- else -%}false{%- endif %} as is_key_repeated
        -- Named as the relation the key checks above read.
        from keyed as typed

    )

    select
        checked.*,
        checked.has_valid_resident_ids and checked.has_valid_key and not checked.is_key_repeated as is_usable
    from checked
{% endmacro %}

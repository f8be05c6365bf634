-- One pseudonymous person_key per resident ID, shared by every feed: where each person appears, with
-- the birth date and sex the ID itself states. One row per person and feed. Only valid IDs have a key;
-- an invalid one joins nothing (its row is flagged in staging). The claims feed is left to dim_person,
-- which reads it from fct_medical_claims: parsing every month of the largest feed again on every build
-- is what the incremental fact is there to avoid.
with appearances as (

    {%- set id_columns = [
        ('rural_roster', 'stg_rural_roster__persons', 'resident_id', 'person_key'),
        ('civil_affairs_assistance', 'stg_civil_affairs__assistance', 'resident_id', 'person_key'),
        ('civil_affairs_deaths', 'stg_civil_affairs__deaths', 'resident_id', 'person_key'),
        ('health_insurance_enrollment', 'stg_health_insurance__enrollment', 'resident_id', 'person_key'),
        ('education_students', 'stg_education__students', 'resident_id', 'person_key'),
        ('hrss_employment', 'stg_hrss__employment', 'resident_id', 'person_key'),
        ('hrss_pension_enrollment', 'stg_hrss__pension_enrollment', 'resident_id', 'person_key'),
        ('housing_safety', 'stg_housing__house_safety', 'head_resident_id', 'head_resident_id_person_key'),
        ('hotline_tickets', 'stg_hotline__tickets', 'caller_resident_id', 'caller_resident_id_person_key'),
    ] %}
    {%- for feed, model, id_column, key_column in id_columns %}
    select
        '{{ feed }}' as feed,
        {{ key_column }} as person_key,
        data_month,
        util.resident_id_birth_date({{ id_column }}) as birth_date,
        util.resident_id_gender({{ id_column }}) as gender
    from {{ ref(model) }}
    where {{ key_column }} is not null
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

final as (

    select
        person_key,
        feed,
        min(birth_date) as birth_date,
        min(gender) as gender,
        min(data_month) as first_seen_month,
        max(data_month) as last_seen_month
    from appearances
    group by person_key, feed

)

select * from final

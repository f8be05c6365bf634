{{ config(alias='stg_rural_roster__persons') }}

with typed as (

    {{ typed_feed('rural_roster') }}

),

persons as (

    select
        batch_id,
        data_month,
        period_end_date,
        source_file,
        source_row,
        household_code,
        head_resident_id,
        head_resident_id_problem,
        resident_id,
        resident_id_problem,
        resident_id_was_15_digit,
        restricted.person_key(case when resident_id_problem is null then resident_id end) as person_key,
        person_name,
        relation_to_head,
        gender,
        birth_date,
        area_code,
        household_type,
        case when household_type = '监测户' then monitoring_category end as monitoring_category,
        identified_date,
        -- feeds.md: a blank 风险是否消除 on a 监测户 means 否; the field means nothing for a 脱贫户.
        case when household_type = '监测户' then coalesce(is_risk_eliminated, false) end as is_risk_eliminated,
        risk_eliminated_date,
        coalesce(is_relocated, false) as is_relocated,
        labour_skill,
        is_willing_to_work,
        household_size,
        household_net_income_yuan,
        resident_id_problem is null as is_usable,
        dq_flags
    from typed

)

select * from persons

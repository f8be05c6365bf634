with staged as (

    {{ staged_feed('rural_roster') }}

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
        head_resident_id_person_key as head_person_key,
        resident_id,
        resident_id_problem,
        resident_id_was_15_digit,
        person_key,
        person_name,
        relation_to_head,
        gender,
        birth_date,
        area_code,
        household_type,
        -- feeds.md: 监测对象类别, 识别纳入日期 and 风险是否消除 apply only to 监测户; what a 脱贫户 row
        -- carries there means nothing (the raw value stays in raw and in dq_flags' reading).
        case when household_type = '监测户' then monitoring_category end as monitoring_category,
        case when household_type = '监测户' then identified_date end as identified_date,
        -- feeds.md: a blank 风险是否消除 on a 监测户 means 否.
        case when household_type = '监测户' then coalesce(is_risk_eliminated, false) end as is_risk_eliminated,
        case when household_type = '监测户' then risk_eliminated_date end as risk_eliminated_date,
        coalesce(is_relocated, false) as is_relocated,
        labour_skill,
        is_willing_to_work,
        household_size,
        household_net_income_yuan,
        has_valid_resident_ids,
        has_valid_key,
        is_key_repeated,
        is_usable,
        extra_columns,
        dq_flags
    from staged

)

select * from persons

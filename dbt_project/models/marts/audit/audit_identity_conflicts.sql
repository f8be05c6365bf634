-- Identity conflicts an auditor must see, resident IDs masked (feeds.md: first 6 and last 4 kept):
--   roster_person_repeated        one ID on two or more roster rows of a month (in two households, or
--                                 twice in one) — none of those rows takes part in anything;
--   roster_birth_date_mismatch    出生日期 on the roster disagrees with the birth date in the ID;
--   roster_gender_mismatch        性别 on the roster disagrees with the ID;
--   activity_after_death          a person registered dead shows new activity afterwards: a medical
--                                 visit or a hotline call after the 死亡日期, or employment, schooling,
--                                 assistance in 在保 or a roster row in a later data month.
-- One row per conflict, month and source row.
with roster as materialized (

    select * from {{ ref('stg_rural_roster__persons') }}

),

deaths as (

    select * from {{ ref('int_deaths_registered') }}

),

repeated_ids as (

    select
        batch_id,
        resident_id,
        count(*) as roster_rows,
        string_agg(distinct coalesce(household_code, '（空）'), '、') as household_codes
    from roster
    where resident_id_problem is null and is_key_repeated
    group by batch_id, resident_id

),

repeated as (

    select
        roster.data_month,
        'roster_person_repeated' as conflict_type,
        roster.person_key,
        util.mask_resident_id(roster.resident_id) as masked_resident_id,
        'rural_roster' as source_feed,
        roster.batch_id,
        roster.source_row,
        roster.household_code,
        roster.area_code,
        '同一身份证号在本月名册中出现 ' || repeated_ids.roster_rows || ' 次，涉及户编号：'
            || repeated_ids.household_codes as conflict_detail
    from roster
    inner join repeated_ids
        on repeated_ids.batch_id = roster.batch_id and repeated_ids.resident_id = roster.resident_id

),

birth_mismatch as (

    select
        data_month,
        'roster_birth_date_mismatch' as conflict_type,
        person_key,
        util.mask_resident_id(resident_id) as masked_resident_id,
        'rural_roster' as source_feed,
        batch_id,
        source_row,
        household_code,
        area_code,
        '名册出生日期 ' || to_char(birth_date, 'YYYY-MM-DD') || '，身份证号中的出生日期 '
            || to_char(util.resident_id_birth_date(resident_id), 'YYYY-MM-DD') as conflict_detail
    from roster
    where resident_id_problem is null and birth_date <> util.resident_id_birth_date(resident_id)

),

gender_mismatch as (

    select
        data_month,
        'roster_gender_mismatch' as conflict_type,
        person_key,
        util.mask_resident_id(resident_id) as masked_resident_id,
        'rural_roster' as source_feed,
        batch_id,
        source_row,
        household_code,
        area_code,
        '名册性别 ' || gender || '，身份证号显示 ' || util.resident_id_gender(resident_id) as conflict_detail
    from roster
    where resident_id_problem is null and gender in ('男', '女') and gender <> util.resident_id_gender(resident_id)

),

activities as materialized (

    -- Claims from the incremental fact, not staging: the largest feed is parsed once, month by month.
    select data_month, 'health_medical_claims' as source_feed, person_key, batch_id, source_row,
           null::text as household_code, null::text as area_code,
           visit_date as activity_date, '就诊结算（' || visit_type || '，就诊日期 ' || to_char(visit_date, 'YYYY-MM-DD') || '）' as activity
    from {{ ref('fct_medical_claims') }}
    where visit_date is not null
    union all
    select data_month, 'hotline_tickets', caller_resident_id_person_key, batch_id, source_row, null, area_code,
           call_date, '来电求助（工单 ' || ticket_id || '，来电日期 ' || to_char(call_date, 'YYYY-MM-DD') || '）'
    from {{ ref('stg_hotline__tickets') }}
    where is_usable and caller_resident_id_person_key is not null and call_date <= period_end_date
    union all
    select data_month, 'hrss_employment', person_key, batch_id, source_row, null, null, null,
           '就业信息：' || employment_status || coalesce('（' || employment_form || '）', '')
    from {{ ref('stg_hrss__employment') }}
    where is_usable and employment_status = '已就业'
    union all
    select data_month, 'education_students', person_key, batch_id, source_row, null, null, null,
           '学籍状态：在读（' || school_name || '）'
    from {{ ref('stg_education__students') }}
    where is_usable and enrollment_status = '在读'
    union all
    select data_month, 'civil_affairs_assistance', person_key, batch_id, source_row, null, area_code, null,
           '救助在保：' || assistance_type
    from {{ ref('stg_civil_affairs__assistance') }}
    where is_usable and assistance_status = '在保'
    union all
    select data_month, 'rural_roster', person_key, batch_id, source_row, household_code, area_code, null,
           '仍在名册（户编号 ' || household_code || '）'
    from roster
    where is_usable

),

after_death as (

    select
        activities.data_month,
        'activity_after_death' as conflict_type,
        activities.person_key,
        deaths.masked_resident_id,
        activities.source_feed,
        activities.batch_id,
        activities.source_row,
        activities.household_code,
        activities.area_code,
        to_char(deaths.registered_month, 'YYYY"年"MM"月"') || '登记死亡'
            || coalesce('（死亡日期 ' || to_char(deaths.death_date, 'YYYY-MM-DD') || '）', '')
            || '后仍有：' || activities.activity as conflict_detail
    from activities
    inner join deaths on deaths.person_key = activities.person_key
    where case
        -- Dated events count after the death date itself; monthly states from the month after the
        -- registration (a person may well be on the month's roster the month they die).
        when activities.activity_date is not null and deaths.death_date is not null
            then activities.activity_date > deaths.death_date
        else activities.data_month > deaths.registered_month
    end

),

final as (

    select * from repeated
    union all
    select * from birth_mismatch
    union all
    select * from gender_mismatch
    union all
    select * from after_death

)

select * from final

-- Identity conflicts an auditor must see, resident IDs masked (feeds.md: first 6 and last 4 kept):
--   roster_person_repeated        one ID on two or more roster rows of a month (in two households, or
--                                 twice in one) — none of those rows takes part in anything;
--   roster_birth_date_mismatch    出生日期 on the roster disagrees with the birth date in the ID;
--   roster_gender_mismatch        性别 on the roster disagrees with the ID;
--   activity_after_death          a person registered dead shows new activity afterwards: a medical
--                                 visit or a hotline call after the 死亡日期, or employment, schooling,
--                                 assistance in 在保 or a roster row in a data month after the one that
--                                 registered the death.
-- One row per conflict, month and source row. Read from tables the warehouse has already parsed (the
-- roster rows, the facts), so this model never parses a feed's history again.
with roster as (

    select * from {{ ref('int_roster_rows_checked') }}
    where resident_id_problem is null

),

deaths as (

    select * from {{ ref('int_deaths_registered') }}

),

repeated_ids as (

    select
        batch_id,
        person_key,
        count(*) as roster_rows,
        string_agg(distinct coalesce(household_code, '（空）'), '、') as household_codes
    from roster
    where is_key_repeated
    group by batch_id, person_key

),

repeated as (

    select
        roster.data_month,
        'roster_person_repeated' as conflict_type,
        roster.person_key,
        roster.masked_resident_id,
        'rural_roster' as source_feed,
        roster.batch_id,
        roster.source_row,
        roster.household_code,
        roster.reported_area_code as area_code,
        '同一身份证号在本月名册中出现 ' || repeated_ids.roster_rows || ' 次，涉及户编号：'
            || repeated_ids.household_codes as conflict_detail
    from roster
    inner join repeated_ids
        on repeated_ids.batch_id = roster.batch_id and repeated_ids.person_key = roster.person_key

),

birth_mismatch as (

    select
        data_month,
        'roster_birth_date_mismatch' as conflict_type,
        person_key,
        masked_resident_id,
        'rural_roster' as source_feed,
        batch_id,
        source_row,
        household_code,
        reported_area_code as area_code,
        '名册出生日期 ' || to_char(reported_birth_date, 'YYYY-MM-DD') || '，身份证号中的出生日期 '
            || to_char(id_birth_date, 'YYYY-MM-DD') as conflict_detail
    from roster
    where reported_birth_date <> id_birth_date

),

gender_mismatch as (

    select
        data_month,
        'roster_gender_mismatch' as conflict_type,
        person_key,
        masked_resident_id,
        'rural_roster' as source_feed,
        batch_id,
        source_row,
        household_code,
        reported_area_code as area_code,
        '名册性别 ' || reported_gender || '，身份证号显示 ' || id_gender as conflict_detail
    from roster
    where reported_gender in ('男', '女') and reported_gender <> id_gender

),

activities as (

    select data_month, 'health_medical_claims' as source_feed, person_key, batch_id, source_row,
           null::text as household_code, null::text as area_code, visit_date as activity_date,
           '就诊结算（' || visit_type || '，就诊日期 ' || to_char(visit_date, 'YYYY-MM-DD') || '）' as activity
    from {{ ref('fct_medical_claims') }}
    where visit_date is not null
    union all
    select data_month, 'hotline_tickets', caller_person_key, batch_id, source_row, null, placed_area_code, call_date,
           '来电求助（工单 ' || ticket_id || '，来电日期 ' || to_char(call_date, 'YYYY-MM-DD') || '）'
    from {{ ref('int_hotline_tickets_placed') }}
    where caller_person_key is not null and call_date is not null
    union all
    -- What the month's feeds say of a roster person: still on the roster, employed, in school, 在保.
    select person_months.data_month, 'rural_roster', person_months.person_key, null, null,
           person_months.household_code, person_months.village_code, null,
           '仍在名册（户编号 ' || person_months.household_code || '）'
           || case when person_months.is_employed then '，就业信息：已就业' else '' end
           || case when person_months.is_in_school then '，学籍状态：在读' else '' end
           || case when person_months.is_assistance_active
                   then '，救助在保：' || person_months.active_assistance_types else '' end
    from {{ ref('fct_person_month') }} as person_months

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

{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='data_month',
        on_schema_change='fail'
    )
}}
-- Rules that find people outside the roster (indicators.md: W06, W07 and W09, and W08 for a
-- 公益性岗位 worker who is on no roster household): one row per month, rule and person or ticket.
-- Outside the roster a lead is keyed by the person when a valid ID is present, else by the ticket, and
-- goes to the town of the area code in the record that raised it (the first such record of the month).
-- Incremental by month like the facts: a run reads the months whose inputs changed, not the history
-- of the assistance and employment feeds.
{%- set months = months_to_rebuild() %}
with periods as (

    select * from {{ ref('int_periods_fingerprinted') }}
    where data_month in ({{ months }})

),

roster_persons as (

    select data_month, person_key from {{ ref('fct_person_month') }}
    where data_month in ({{ months }})

),

deaths as (

    select * from {{ ref('int_deaths_registered') }}

),

-- The columns the rules read, no more: a staging view parses only what is selected from it, and a
-- materialised `select *` made it parse every column of a month of both feeds.
assistance as materialized (

    select data_month, source_row, person_key, resident_id, area_code, assistance_type, assistance_status,
           monthly_amount_yuan
    from {{ ref('stg_civil_affairs__assistance') }}
    where is_usable and data_month in ({{ months }})

),

jobs as materialized (

    select data_month, source_row, person_key, resident_id, employment_form, public_job_paid_through_month
    from {{ ref('stg_hrss__employment') }}
    where is_usable and data_month in ({{ months }})

),

tickets as (

    select * from {{ ref('int_hotline_tickets_placed') }}
    where data_month in ({{ months }})

),

villages as (

    select area_code from {{ ref('area_codes') }} where area_level = '村'

),

city as (

    select area_code as city_code from {{ ref('area_codes') }} where area_level = '市'

),

thresholds as (

    select * from {{ ref('int_area_thresholds_pivoted') }}

),

off_roster_assistance as (

    select
        assistance.*,
        deaths.registered_month,
        deaths.death_date
    from assistance
    left join deaths on deaths.person_key = assistance.person_key
    where assistance.assistance_status = '在保'
      and not exists (
          select 1 from roster_persons
          where roster_persons.data_month = assistance.data_month
            and roster_persons.person_key = assistance.person_key
      )

),

-- W06: 在保 in 农村低保 or 特困供养, but not in a 脱贫户 or 监测户 (应纳未纳).
w06 as (

    select distinct on (data_month, person_key)
        data_month,
        'W06' as rule_id,
        person_key,
        util.mask_resident_id(resident_id) as subject_reference,
        villages.area_code as area_code,
        '在保' || assistance_type || '（月保障金额 ' || coalesce(to_char(monthly_amount_yuan, 'FM999,990.00'), '—')
            || ' 元），不在脱贫户、监测户名册中' as evidence
    from off_roster_assistance
    left join villages on villages.area_code = off_roster_assistance.area_code
    where assistance_type in ('农村低保', '特困供养')
    order by data_month, person_key, source_row

),

-- W07 (assistance side): registered dead on or before period end and still 在保 this month. A dead
-- person still on the roster raises the household's W07 instead (int_household_warnings_detected).
w07 as (

    select distinct on (data_month, person_key)
        data_month,
        'W07' as rule_id,
        person_key,
        util.mask_resident_id(resident_id) as subject_reference,
        villages.area_code as area_code,
        '已于 ' || to_char(registered_month, 'YYYY"年"MM"月"') || '登记死亡'
            || coalesce('（死亡日期 ' || to_char(death_date, 'YYYY-MM-DD') || '）', '')
            || '，本月仍在保' || assistance_type as evidence
    from off_roster_assistance
    left join villages on villages.area_code = off_roster_assistance.area_code
    where registered_month <= data_month
    order by data_month, person_key, source_row

),

-- W08 for a 公益性岗位 worker on no roster household: keyed by the person; hrss_employment carries no
-- area code, so the lead cannot be placed below the city (the city's thresholds apply).
w08 as (

    select distinct on (jobs.data_month, jobs.person_key)
        jobs.data_month,
        'W08' as rule_id,
        jobs.person_key,
        util.mask_resident_id(jobs.resident_id) as subject_reference,
        null::text as area_code,
        '公益性岗位工资欠发 ' || unpaid.months || ' 个月（标准：' || to_char(thresholds.w08_unpaid_months, 'FM990')
            || ' 个月），本人不在脱贫户、监测户名册中' as evidence
    from jobs
    cross join city
    inner join periods on periods.data_month = jobs.data_month
    inner join thresholds
        on thresholds.area_code = city.city_code and thresholds.period_year = periods.period_year
    cross join lateral (
        select case when jobs.public_job_paid_through_month is not null
                    then {{ months_between('jobs.public_job_paid_through_month', 'jobs.data_month') }}
                    else extract(month from jobs.data_month)::int end as months
    ) as unpaid
    where jobs.employment_form = '公益性岗位'
      and unpaid.months >= thresholds.w08_unpaid_months
      and not exists (
          select 1 from roster_persons
          where roster_persons.data_month = jobs.data_month and roster_persons.person_key = jobs.person_key
      )
    order by jobs.data_month, jobs.person_key, jobs.source_row

),

-- W09: a 涉贫求助 ticket whose caller is in neither a 脱贫户 nor a 监测户 — including callers whose ID
-- is missing or partial. Keyed by the person when the caller's ID is valid, else by the ticket; a
-- ticket-keyed lead holds only while its ticket is not 已办结.
help_requests as (

    select tickets.*
    from tickets
    where tickets.is_poverty_help_request
      and not exists (
          select 1 from roster_persons
          where roster_persons.data_month = tickets.data_month
            and roster_persons.person_key = tickets.caller_person_key
      )

),

w09_persons as (

    select distinct on (data_month, caller_person_key)
        data_month,
        'W09' as rule_id,
        caller_person_key as person_key,
        masked_caller_resident_id as subject_reference,
        placed_area_code as area_code,
        '涉贫求助工单 ' || ticket_id || '（来电 ' || coalesce(to_char(call_date, 'YYYY-MM-DD'), '日期不详')
            || '，' || handling_status || '），诉求人不在脱贫户、监测户名册中' as evidence
    from help_requests
    where caller_person_key is not null
    order by data_month, caller_person_key, source_row

),

w09_tickets as (

    select
        data_month,
        'W09' as rule_id,
        ticket_id,
        ticket_id as subject_reference,
        placed_area_code as area_code,
        '涉贫求助工单 ' || ticket_id || '（来电 ' || coalesce(to_char(call_date, 'YYYY-MM-DD'), '日期不详')
            || '，' || handling_status || '），诉求人身份证号'
            || case when masked_caller_resident_id is null then '缺失' else '无效或不完整' end as evidence
    from help_requests
    where caller_person_key is null and not is_closed

),

leads as (

    select data_month, rule_id, 'person' as lead_key_type, person_key as lead_key, person_key,
           null::text as ticket_id, subject_reference, area_code, evidence
    from w06
    union all
    select data_month, rule_id, 'person', person_key, person_key, null, subject_reference, area_code, evidence
    from w07
    union all
    select data_month, rule_id, 'person', person_key, person_key, null, subject_reference, area_code, evidence
    from w08
    union all
    select data_month, rule_id, 'person', person_key, person_key, null, subject_reference, area_code, evidence
    from w09_persons
    union all
    select data_month, rule_id, 'ticket', ticket_id, null, ticket_id, subject_reference, area_code, evidence
    from w09_tickets

),

final as (

    select leads.*, periods.inputs_fingerprint
    from leads
    inner join periods on periods.data_month = leads.data_month

)

select * from final

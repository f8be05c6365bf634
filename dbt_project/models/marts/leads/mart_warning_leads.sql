-- One row per early-warning lead (线索): who or what it concerns, which rule, the evidence it was
-- pushed with, the town it went to, the response deadline, the town's answer, and whether it is still
-- open. A lead is pushed once, in the month it opened: the push date is the settings' push day of the
-- following month, the deadline that plus the response days (I17), both from policy_thresholds for
-- the lead's area and year.
with episodes as (

    select * from {{ ref('int_lead_episodes_identified') }}

),

answers as (

    select * from {{ ref('int_lead_feedback_matched') }}
    where is_pushed_lead and is_first_answer

),

rules as (

    select * from {{ ref('warning_rules') }}

),

feeds as (

    {{ registry_feeds_relation() }}

),

thresholds as (

    select * from {{ ref('int_area_thresholds_pivoted') }}

),

city as (

    select area_code as city_code from {{ ref('area_codes') }} where area_level = '市'

),

scheduled as (

    select
        episodes.*,
        ((episodes.opened_month + interval '1 month')::date + (thresholds.lead_push_day::int - 1)) as pushed_date,
        thresholds.i17_response_days::int as response_days
    from episodes
    cross join city
    left join thresholds
        on thresholds.area_code = coalesce(episodes.area_code, city.city_code)
        and thresholds.period_year = extract(year from episodes.opened_month)::int

),

final as (

    select
        scheduled.lead_id,
        scheduled.rule_id,
        rules.rule_name,
        feeds.department_name as rule_department_name,
        scheduled.lead_key_type,
        scheduled.lead_key,
        scheduled.household_code,
        scheduled.person_key,
        scheduled.ticket_id,
        scheduled.subject_reference,
        scheduled.area_code,
        scheduled.town_code,
        scheduled.county_code,
        scheduled.opening_evidence as evidence,
        scheduled.opened_month,
        scheduled.opened_month as pushed_month,
        scheduled.pushed_date,
        scheduled.pushed_date + scheduled.response_days as response_deadline_date,
        scheduled.last_held_month,
        scheduled.months_held,
        scheduled.condition_cleared_month,
        answers.verification_result as feedback_result,
        answers.verification_date as feedback_date,
        answers.data_month as feedback_month,
        answers.masked_verifier as feedback_verifier,
        answers.verification_note as feedback_note,
        answers.lead_id is not null as is_answered,
        coalesce(answers.verification_date <= scheduled.pushed_date + scheduled.response_days, false)
            as is_answered_on_time,
        coalesce(answers.verification_result in ('已纳入监测', '已落实帮扶'), false) as is_converted,
        case
            when answers.lead_id is not null
                 and (scheduled.condition_cleared_month is null or answers.data_month <= scheduled.condition_cleared_month)
                then '已反馈'
            when scheduled.condition_cleared_month is not null then '情形消除'
            else '待反馈'
        end as lead_status,
        answers.lead_id is null and scheduled.condition_cleared_month is null as is_open,
        least(answers.data_month, scheduled.condition_cleared_month) as closed_month
    from scheduled
    inner join rules on rules.rule_id = scheduled.rule_id
    left join feeds on feeds.feed = rules.source_feed
    left join answers on answers.lead_id = scheduled.lead_id

)

select * from final

-- Each lead in each data month its condition holds, with that month's evidence: the monthly view of
-- the early-warning list (which households, persons and tickets raise which rule this month) and of
-- which leads are new this month.
with conditions as (

    select * from {{ ref('int_lead_conditions_detected') }}

),

leads as (

    select * from {{ ref('mart_warning_leads') }}

),

final as (

    select
        leads.lead_id,
        conditions.data_month,
        conditions.rule_id,
        conditions.lead_key_type,
        conditions.household_code,
        conditions.person_key,
        conditions.ticket_id,
        conditions.area_code,
        conditions.town_code,
        conditions.county_code,
        conditions.evidence,
        conditions.data_month = leads.opened_month as is_new_lead,
        leads.feedback_month is not null and leads.feedback_month <= conditions.data_month as is_answered_by_month
    from conditions
    inner join leads
        on leads.rule_id = conditions.rule_id
        and leads.lead_key_type = conditions.lead_key_type
        and leads.lead_key = conditions.lead_key
        and conditions.data_month between leads.opened_month and leads.last_held_month

)

select * from final

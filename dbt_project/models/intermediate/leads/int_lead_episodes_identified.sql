-- A lead is one (household, rule) — or person or ticket outside the roster — for one unbroken run of
-- evaluated months in which its condition holds (indicators.md: open across months until feedback or
-- the condition closes it; never pushed twice; a lead that closed and later holds again is a new lead
-- with a new 线索编号). The run ends at the first evaluated month in which the condition no longer
-- holds; a town's answer closes the lead without ending the run, so a condition that simply persists
-- after an answer is not pushed again.
--
-- 线索编号: 'XS' + the month the lead opened + rule + ten hex digits of an MD5 of the lead's key (a
-- household code, a pseudonymous person_key, or a ticket number). It depends only on the lead itself,
-- so re-running a month, or a later month, never renumbers a lead; the grain test proves uniqueness.
with conditions as (

    select * from {{ ref('int_lead_conditions_detected') }}

),

rule_months as (

    select * from {{ ref('int_rule_months_evaluated') }}

),

held as (

    select
        conditions.*,
        rule_months.evaluation_seq,
        rule_months.evaluation_seq - row_number() over (
            partition by conditions.rule_id, conditions.lead_key_type, conditions.lead_key
            order by rule_months.evaluation_seq
        ) as run_id
    from conditions
    inner join rule_months
        on rule_months.rule_id = conditions.rule_id
        and rule_months.data_month = conditions.data_month
        and rule_months.is_evaluated

),

runs as (

    select
        rule_id,
        lead_key_type,
        lead_key,
        run_id,
        min(data_month) as opened_month,
        max(data_month) as last_held_month,
        max(evaluation_seq) as last_held_seq,
        count(*) as months_held
    from held
    group by rule_id, lead_key_type, lead_key, run_id

),

cleared as (

    select
        runs.*,
        next_month.data_month as condition_cleared_month
    from runs
    left join rule_months as next_month
        on next_month.rule_id = runs.rule_id
        and next_month.evaluation_seq = runs.last_held_seq + 1

),

final as (

    select
        'XS' || to_char(cleared.opened_month, 'YYYYMM') || '-' || cleared.rule_id || '-'
            || upper(left(md5(cleared.lead_key_type || ':' || cleared.lead_key), 10)) as lead_id,
        cleared.rule_id,
        cleared.lead_key_type,
        cleared.lead_key,
        opening.household_code,
        opening.person_key,
        opening.ticket_id,
        opening.subject_reference,
        opening.area_code,
        opening.town_code,
        opening.county_code,
        opening.evidence as opening_evidence,
        cleared.opened_month,
        cleared.last_held_month,
        cleared.months_held,
        cleared.condition_cleared_month
    from cleared
    inner join held as opening
        on opening.rule_id = cleared.rule_id
        and opening.lead_key_type = cleared.lead_key_type
        and opening.lead_key = cleared.lead_key
        and opening.data_month = cleared.opened_month

)

select * from final

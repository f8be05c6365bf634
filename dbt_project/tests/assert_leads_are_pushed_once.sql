-- indicators.md: a lead is never pushed twice. No (rule, subject) has two leads whose months overlap,
-- and no lead shows up in a month before the one it was pushed in.
-- (mart_warning_leads is upstream of fct_warning_lead_month and named, not ref'd: the test runs with
-- the one model's build; see macros/tests/references.sql.)
with leads as (

    select * from {{ _relation_of('mart_warning_leads') }}

),

overlapping as (

    select earlier.lead_id, later.lead_id as overlapping_lead_id
    from leads as earlier
    inner join leads as later
        on later.rule_id = earlier.rule_id
        and later.lead_key_type = earlier.lead_key_type
        and later.lead_key = earlier.lead_key
        and later.lead_id <> earlier.lead_id
        and later.opened_month between earlier.opened_month and earlier.last_held_month

),

early as (

    select lead_months.lead_id, lead_months.lead_id as overlapping_lead_id
    from {{ ref('fct_warning_lead_month') }} as lead_months
    inner join leads on leads.lead_id = lead_months.lead_id
    where lead_months.data_month < leads.pushed_month

)

select * from overlapping
union all
select * from early

-- A lead stays open only while its condition holds: an open lead held in the latest month its rule
-- could be evaluated, and a lead whose condition cleared is not open.
-- (The upstream int_rule_months_evaluated is named, not ref'd: see macros/tests/references.sql.)
with latest_evaluation as (

    select rule_id, max(data_month) as data_month
    from {{ _relation_of('int_rule_months_evaluated') }}
    where is_evaluated
    group by rule_id

)

select leads.lead_id, leads.last_held_month, latest_evaluation.data_month as latest_evaluated_month
from {{ ref('mart_warning_leads') }} as leads
inner join latest_evaluation on latest_evaluation.rule_id = leads.rule_id
where (leads.is_open and leads.last_held_month <> latest_evaluation.data_month)
   or (leads.is_open and leads.condition_cleared_month is not null)

-- fct_warning_lead_month as analysts read it (pseudonymous keys only; no resident IDs or names in the marts).
select * from {{ ref('fct_warning_lead_month') }}

{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='data_month',
        on_schema_change='fail'
    )
}}
-- 医疗费用结算明细 as facts: one row per usable settlement of a month's live batch. The largest feed,
-- so incremental by month: a run inserts the months whose live batch is not the one already here (a
-- new month, or a corrected _v2), replacing that month whole, and leaves the rest of history alone.
-- depends_on: {{ ref('stg_raw__deliveries') }}
{%- set months = batches_to_load('health_medical_claims') %}
with claims as materialized (

    -- Staging reads only live batches; the literal months reach the raw rows (see incremental_months).
    select * from {{ ref('stg_health_insurance__medical_claims') }}
    where data_month in ({{ months }}) and is_usable

),

final as (

    select
        claims.data_month,
        claims.settlement_id,
        claims.batch_id,
        claims.source_row,
        claims.person_key,
        claims.visit_type,
        case when claims.visit_date <= claims.period_end_date then claims.visit_date end as visit_date,
        case when claims.discharge_date <= claims.period_end_date then claims.discharge_date end as discharge_date,
        -- A value that fails its check (a negative amount) is null here; dq_flags says why.
        case when claims.total_cost_yuan >= 0 then claims.total_cost_yuan end as total_cost_yuan,
        case when claims.basic_insurance_paid_yuan >= 0 then claims.basic_insurance_paid_yuan end
            as basic_insurance_paid_yuan,
        case when claims.critical_illness_paid_or_zero_yuan >= 0 then claims.critical_illness_paid_or_zero_yuan end
            as critical_illness_paid_yuan,
        case when claims.medical_assistance_paid_or_zero_yuan >= 0 then claims.medical_assistance_paid_or_zero_yuan end
            as medical_assistance_paid_yuan,
        case when claims.out_of_pocket_yuan >= 0 then claims.out_of_pocket_yuan end as out_of_pocket_yuan,
        claims.dq_flags
    from claims

)

select * from final

with staged as (

    {{ staged_feed('health_medical_claims') }}

),

-- feeds.md: a blank 大病保险支付 or 医疗救助支付 is 0.
claims as (

    select
        staged.*,
        coalesce(staged.critical_illness_paid_yuan, 0) as critical_illness_paid_or_zero_yuan,
        coalesce(staged.medical_assistance_paid_yuan, 0) as medical_assistance_paid_or_zero_yuan
    from staged

)

select * from claims

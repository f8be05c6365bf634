-- Towns' answers (lead_feedback, every live delivery of every town) matched to the leads pushed. A
-- 线索编号 the warehouse never pushed is a flagged row (audit_lead_feedback_unmatched). When a lead is
-- answered more than once, the first answer (earliest 核实日期) is the one that closes it.
with feedback as materialized (

    select * from {{ ref('stg_towns__lead_feedback') }}
    where is_usable

),

leads as (

    select lead_id from {{ ref('int_lead_episodes_identified') }}

),

matched as (

    select
        upper(feedback.lead_id) as lead_id,
        feedback.data_month,
        feedback.batch_id,
        feedback.source_file,
        feedback.source_row,
        feedback.verification_result,
        feedback.verification_note,
        util.mask_name(feedback.verifier) as masked_verifier,
        -- An event date after the data month is invalid (feeds.md): flagged, and not used.
        case when feedback.verification_date <= feedback.period_end_date then feedback.verification_date end
            as verification_date,
        leads.lead_id is not null as is_pushed_lead
    from feedback
    left join leads on leads.lead_id = upper(feedback.lead_id)

),

final as (

    select
        matched.*,
        row_number() over (
            partition by matched.lead_id
            order by matched.verification_date nulls last, matched.data_month, matched.batch_id, matched.source_row
        ) = 1 as is_first_answer
    from matched

)

select * from final

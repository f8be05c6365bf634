-- Rows of the towns' lead_feedback whose 线索编号 the warehouse never pushed (feeds.md: a flagged row),
-- with the file and row to show the town.
with feedback as (

    select * from {{ ref('int_lead_feedback_matched') }}

),

final as (

    select
        data_month,
        batch_id,
        source_file,
        source_row,
        lead_id,
        verification_result,
        verification_date,
        masked_verifier
    from feedback
    where not is_pushed_lead

)

select * from final

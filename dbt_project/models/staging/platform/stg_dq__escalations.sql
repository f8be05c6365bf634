-- The escalation ledger (I18). Another part of the platform owns it; a fresh warehouse may not have
-- it yet, so it is read through source_or_empty and this view is empty until it exists.
with escalations as (

    {{ source_or_empty('dq', 'escalations', [
        ['escalation_id', 'bigint'], ['kind', 'text'], ['status', 'text'], ['feed', 'text'],
        ['check_name', 'text'], ['severity', 'text'], ['title', 'text'], ['department_code', 'text'],
        ['department_name', 'text'], ['first_seen_at', 'timestamptz'], ['first_data_month', 'date'],
        ['last_data_month', 'date'], ['resolved_at', 'timestamptz'], ['resolution', 'text'],
        ['resolved_data_month', 'date'], ['due_date', 'date']]) }}

),

renamed as (

    select
        escalation_id,
        kind as escalation_kind,
        status as escalation_status,
        status = 'resolved' as is_resolved,
        feed,
        check_name,
        severity,
        title,
        department_code,
        department_name,
        first_seen_at,
        first_data_month,
        last_data_month,
        resolved_at,
        resolution,
        resolved_data_month,
        due_date
    from escalations

)

select * from renamed

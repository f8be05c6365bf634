-- 涉贫诉求工单 with what I23 and W09 read: the ticket's own area (any level of the reference, else
-- unplaced: counted at city level only), whether the caller's ID is valid, and the days to close.
-- Event dates after the data month are invalid (feeds.md) and not used.
with tickets as (

    select * from {{ ref('stg_hotline__tickets') }}
    where is_usable

),

areas as (

    select area_code, area_level from {{ ref('area_codes') }}

),

final as (

    select
        tickets.data_month,
        tickets.ticket_id,
        tickets.batch_id,
        tickets.source_row,
        areas.area_code as placed_area_code,
        areas.area_level as placed_area_level,
        tickets.request_type,
        tickets.request_type = '涉贫求助' as is_poverty_help_request,
        tickets.handling_status,
        tickets.handling_status = '已办结' as is_closed,
        case when tickets.call_date <= tickets.period_end_date then tickets.call_date end as call_date,
        case when tickets.closed_date <= tickets.period_end_date then tickets.closed_date end as closed_date,
        case when tickets.call_date <= tickets.period_end_date and tickets.closed_date <= tickets.period_end_date
             then tickets.closed_date - tickets.call_date end as days_to_close,
        -- feeds.md: the caller's ID is often missing or partial; only a valid one identifies a person.
        tickets.caller_resident_id_person_key as caller_person_key,
        util.mask_resident_id(tickets.caller_resident_id) as masked_caller_resident_id,
        util.mask_phone(tickets.phone) as masked_phone
    from tickets
    left join areas on areas.area_code = tickets.area_code

)

select * from final

-- The delivery ledger the loader and the gate keep (raw.deliveries): one row per delivered file or
-- API month, whatever became of it. Timeliness (I19) and the incremental facts read it.
with deliveries as (

    select * from {{ source('raw', 'deliveries') }}

),

renamed as (

    select
        batch_id,
        batch_key,
        feed,
        file_name,
        channel,
        data_month,
        slot,
        version,
        status,
        gate_status,
        is_live,
        status = any(array[
            {%- for s in var('readable_delivery_statuses') %}'{{ s }}'{{ ', ' if not loop.last }}{% endfor -%}
        ]::text[]) as is_readable,
        row_count,
        arrived_at,
        loaded_at
    from deliveries

)

select * from renamed

-- Every person registered dead, once: the first deaths delivery that registers them. A death counts
-- from the data month of that delivery on ("registered dead on or before period end", indicators.md);
-- the 死亡日期 is kept as evidence but does not move the month (a late registration does not rewrite
-- months already reported).
with deaths as (

    select * from {{ ref('stg_civil_affairs__deaths') }}
    where is_usable

),

ranked as (

    select
        deaths.person_key,
        deaths.data_month as registered_month,
        -- An event date after the data month is invalid (feeds.md): flagged, and not used.
        case when deaths.death_date <= deaths.period_end_date then deaths.death_date end as death_date,
        deaths.area_code as reported_area_code,
        util.mask_resident_id(deaths.resident_id) as masked_resident_id,
        deaths.batch_id,
        deaths.source_row,
        row_number() over (partition by deaths.person_key order by deaths.data_month, deaths.source_row)
            as registration_order
    from deaths

),

final as (

    select
        person_key,
        registered_month,
        death_date,
        reported_area_code,
        masked_resident_id,
        batch_id,
        source_row
    from ranked
    where registration_order = 1

)

select * from final

-- Every feed expected each month × every data month the warehouse knows: was it delivered, was it on
-- time (feeds.md: due by the feed's due day of the following month, China Standard Time; a file
-- arrives when it appeared in the landing folder, an API month when the platform answered), and which
-- batch is live. The same reading as ruralwatch.quality.timeliness, but as of the data, not of a
-- clock: a month not yet due is simply not delivered yet.
with deliveries as (

    select * from {{ ref('stg_raw__deliveries') }}

),

feeds as (

    {{ registry_feeds_relation() }}

),

expected_feeds as (

    select * from feeds where is_expected_monthly

),

months as (

    select distinct deliveries.data_month
    from deliveries
    inner join expected_feeds on expected_feeds.feed = deliveries.feed
    where deliveries.data_month is not null

),

readable as (

    select
        feed,
        data_month,
        min(arrived_at) as delivered_at,
        count(*) as readable_deliveries
    from deliveries
    where is_readable and data_month is not null
    group by feed, data_month

),

live as (

    select feed, data_month, batch_id as live_batch_id
    from deliveries
    where is_live and data_month is not null

),

assessed as (

    select
        expected_feeds.feed,
        months.data_month,
        expected_feeds.feed_title,
        expected_feeds.department_code,
        expected_feeds.department_name,
        ((months.data_month + interval '1 month')::date + (expected_feeds.due_day - 1)) as due_date,
        -- Due *by* the due day: anything before the next local midnight is on time.
        (((months.data_month + interval '1 month')::date + expected_feeds.due_day)::timestamp
            at time zone '{{ var("local_time_zone") }}') as due_at,
        readable.delivered_at,
        coalesce(readable.readable_deliveries, 0) as readable_deliveries,
        live.live_batch_id
    from expected_feeds
    cross join months
    left join readable
        on readable.feed = expected_feeds.feed and readable.data_month = months.data_month
    left join live
        on live.feed = expected_feeds.feed and live.data_month = months.data_month

),

final as (

    select
        feed,
        data_month,
        feed_title,
        department_code,
        department_name,
        due_date,
        due_at,
        delivered_at,
        delivered_at is not null as is_delivered,
        coalesce(delivered_at < due_at, false) as is_delivered_on_time,
        readable_deliveries,
        live_batch_id,
        live_batch_id is not null as has_live_batch
    from assessed

)

select * from final

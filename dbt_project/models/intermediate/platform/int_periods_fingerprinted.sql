-- One row per data month: its period end, which feeds have a live batch, and a fingerprint of every
-- input that month's facts depend on. The incremental facts rebuild exactly the months whose
-- fingerprint changed: a new month, a corrected delivery (a _v2 that went live), or a change to the
-- reference seeds. Earlier months count too, because deaths registered before a month and the twelve
-- months of medical costs before it change what that month says.
with feed_months as (

    select * from {{ ref('int_feed_months_assessed') }}

),

thresholds as (

    select * from {{ ref('policy_thresholds') }}

),

areas as (

    select * from {{ ref('area_codes') }}

),

reference_fingerprint as (

    select md5(
        coalesce((select string_agg(t::text, '|' order by t::text) from thresholds as t), '')
        || coalesce((select string_agg(a::text, '|' order by a::text) from areas as a), '')
    ) as fingerprint

),

months as (

    select
        data_month,
        array_agg(feed order by feed) filter (where has_live_batch) as live_feeds
    from feed_months
    group by data_month

),

final as (

    select
        months.data_month,
        (months.data_month + interval '1 month' - interval '1 day')::date as period_end_date,
        extract(year from months.data_month)::int as period_year,
        coalesce(months.live_feeds, array[]::text[]) as live_feeds,
        -- A death registered in any earlier month still counts (indicators.md), so W07 can be
        -- evaluated whenever the deaths feed has ever been live up to this month.
        exists (
            select 1 from feed_months as earlier
            where earlier.feed = 'civil_affairs_deaths' and earlier.has_live_batch
              and earlier.data_month <= months.data_month
        ) as has_deaths_registry,
        md5(
            (select fingerprint from reference_fingerprint)
            || coalesce((
                select string_agg(earlier.feed || ':' || earlier.live_batch_id, ','
                                  order by earlier.data_month, earlier.feed)
                from feed_months as earlier
                where earlier.has_live_batch and earlier.data_month <= months.data_month
            ), '')
        ) as inputs_fingerprint
    from months

)

select * from final

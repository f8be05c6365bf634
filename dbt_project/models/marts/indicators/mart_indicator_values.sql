{#
  Every indicator of indicators.md in long form: one row per period (data month), area and measure,
  with its numerator and denominator so any level can be re-aggregated and audited.

  - Area-based indicators (I01–I17, I20–I23) at city, county, town and village level: the cells of
    int_indicator_cells_placed (and of the lead loop, I17/I20) rolled up through every area above the
    one a record is placed in. The city and every county always have a row for a computed measure;
    a town or village appears when it has something to count.
  - I18 (escalations, by department) and I19 (timeliness, by department) belong to departments, not
    areas: city level only.
  - I03/I04 growth compares with the same area twelve months earlier (null when that period is missing).
  - I23's median days to close is a median at every level, not a sum of medians.
  - I17/I20 follow the leads pushed in the period: of those, the share answered within the deadline,
    and of those answered, the share 已纳入监测 or 已落实帮扶 (per rule, and all rules).
#}
with cells as (

    select * from {{ ref('int_indicator_cells_placed') }}

),

periods as (

    select * from {{ ref('int_periods_fingerprinted') }}

),

catalogue as (

    select * from {{ ref('indicator_measures') }}

),

rules as (

    select * from {{ ref('warning_rules') }}

),

feeds as (

    {{ registry_feeds_relation() }}

),

areas as (

    select * from {{ ref('dim_area') }}

),

rollups as (

    select * from {{ ref('int_area_rollups') }}

),

city as (

    select area_code as city_code from areas where area_level = '市'

),

leads as (

    select
        warning_leads.*,
        coalesce(areas.area_code, city.city_code) as placed_area_code
    from {{ ref('mart_warning_leads') }} as warning_leads
    cross join city
    left join areas on areas.area_code = warning_leads.area_code

),

tickets as (

    select * from {{ ref('int_hotline_tickets_placed') }}

),

escalations as (

    select * from {{ ref('stg_dq__escalations') }}
    where first_data_month is not null

),

feed_months as (

    select * from {{ ref('int_feed_months_assessed') }}

),

roster_periods as (

    select data_month from periods where 'rural_roster' = any(live_feeds)

),

-- I17/I20: the lead loop, by the month leads were pushed.
lead_cells as (

    select pushed_month as data_month, 'I17' as indicator_id, null::text as measure, null::text as breakdown_value,
           placed_area_code as area_code, is_answered_on_time::int::numeric as numerator, 1::numeric as denominator,
           1 as record_count
    from leads
    union all
    select roster_periods.data_month, 'I17', null, null, city.city_code, 0, 0, 0
    from roster_periods cross join city
    union all
    select pushed_month, 'I20', null, breakdown.rule_id, placed_area_code, is_converted::int, 1, 1
    from leads
    cross join lateral (select leads.rule_id union all select '全部') as breakdown (rule_id)
    where is_answered
    union all
    select roster_periods.data_month, 'I20', null, breakdown.rule_id, city.city_code, 0, 0, 0
    from roster_periods
    cross join city
    cross join (select rule_id from rules union all select '全部') as breakdown

),

area_cells as (

    select data_month, indicator_id, measure, breakdown_value, area_code, numerator, denominator, record_count
    from cells
    union all
    select * from lead_cells

),

rolled as (

    select
        area_cells.data_month,
        area_cells.indicator_id,
        area_cells.measure,
        area_cells.breakdown_value,
        rollups.rollup_area_code as area_code,
        sum(area_cells.numerator) as numerator,
        sum(area_cells.denominator) as denominator,
        sum(area_cells.record_count) as record_count
    from area_cells
    inner join rollups on rollups.area_code = area_cells.area_code
    group by 1, 2, 3, 4, 5

),

-- The city and every county always have a row for a measure computed that month.
filled as (

    select
        computed.data_month,
        computed.indicator_id,
        computed.measure,
        computed.breakdown_value,
        areas.area_code,
        coalesce(rolled.numerator, 0) as numerator,
        rolled.denominator,
        coalesce(rolled.record_count, 0) as record_count
    from (
        select distinct data_month, indicator_id, measure, breakdown_value from rolled
    ) as computed
    inner join areas on areas.area_level in ('市', '县')
    left join rolled
        on rolled.data_month = computed.data_month
        and rolled.indicator_id = computed.indicator_id
        and rolled.measure is not distinct from computed.measure
        and rolled.breakdown_value is not distinct from computed.breakdown_value
        and rolled.area_code = areas.area_code

    union all

    select rolled.*
    from rolled
    inner join areas on areas.area_code = rolled.area_code and areas.area_level in ('镇', '村')

),

-- I23: median calendar days from 来电日期 to 办结日期 over the closed 涉贫求助 tickets.
medians as (

    select
        tickets.data_month,
        'I23' as indicator_id,
        'median_days' as measure,
        null::text as breakdown_value,
        rollups.rollup_area_code as area_code,
        null::numeric as numerator,
        count(*)::numeric as denominator,
        count(*) as record_count,
        percentile_cont(0.5) within group (order by tickets.days_to_close)::numeric as value
    from tickets
    cross join city
    inner join rollups on rollups.area_code = coalesce(tickets.placed_area_code, city.city_code)
    where tickets.is_poverty_help_request and tickets.is_closed and tickets.days_to_close is not null
    group by 1, 2, 3, 4, 5

),

medians_filled as (

    select
        periods.data_month, 'I23' as indicator_id, 'median_days' as measure, null::text as breakdown_value,
        areas.area_code, null::numeric as numerator, coalesce(medians.denominator, 0) as denominator,
        coalesce(medians.record_count, 0) as record_count, medians.value
    from periods
    inner join areas on areas.area_level in ('市', '县')
    left join medians on medians.data_month = periods.data_month and medians.area_code = areas.area_code
    where 'hotline_tickets' = any(periods.live_feeds)

    union all

    select medians.*
    from medians
    inner join areas on areas.area_code = medians.area_code and areas.area_level in ('镇', '村')

),

-- I18: escalations raised on each period's data: resolved / opened, and those still open, by
-- department (all departments together as 全部门). City level: escalations belong to departments.
escalation_cells as (

    select
        escalations.first_data_month as data_month,
        measure.name as measure,
        breakdown.department_name as breakdown_value,
        case when measure.name = 'resolution' then escalations.is_resolved::int
             else (not escalations.is_resolved)::int end::numeric as numerator,
        case when measure.name = 'resolution' then 1 end::numeric as denominator
    from escalations
    cross join (values ('resolution'), ('open')) as measure (name)
    cross join lateral (select escalations.department_name union all select '全部门') as breakdown (department_name)

    union all

    select periods.data_month, measure.name, '全部门', 0, case when measure.name = 'resolution' then 0 end
    from periods
    cross join (values ('resolution'), ('open')) as measure (name)

),

-- I19: feeds delivered by their due day / feeds expected, per department and month.
timeliness_cells as (

    select data_month, department_name as breakdown_value, is_delivered_on_time::int::numeric as numerator
    from feed_months
    union all
    select data_month, '全部门', is_delivered_on_time::int
    from feed_months

),

city_only as (

    select data_month, 'I18' as indicator_id, measure, breakdown_value, city.city_code as area_code,
           sum(numerator) as numerator, sum(denominator) as denominator, count(*) as record_count
    from escalation_cells
    cross join city
    group by data_month, measure, breakdown_value, city.city_code

    union all

    select data_month, 'I19', null, breakdown_value, city.city_code,
           sum(numerator), count(*), count(*)
    from timeliness_cells
    cross join city
    group by data_month, breakdown_value, city.city_code

),

valued as (

    select
        filled.*,
        case catalogue.value_kind
            when 'count' then filled.numerator
            else filled.numerator / nullif(filled.denominator, 0)
        end as value
    from filled
    inner join catalogue
        on catalogue.indicator_id = filled.indicator_id
        and coalesce(catalogue.measure, '') = coalesce(filled.measure, '')

    union all

    select * from medians_filled

    union all

    select
        city_only.data_month, city_only.indicator_id, city_only.measure, city_only.breakdown_value,
        city_only.area_code,
        city_only.numerator,
        case when city_only.indicator_id = 'I18' and city_only.measure = 'open' then null
             else city_only.denominator end,
        -- An escalation cell that only marks the period (nothing raised) counts no escalation.
        case when city_only.indicator_id = 'I18' then coalesce(city_only.denominator, city_only.numerator)
             else city_only.record_count end,
        case when city_only.indicator_id = 'I18' and city_only.measure = 'open' then city_only.numerator
             else city_only.numerator / nullif(city_only.denominator, 0) end
    from city_only

),

-- I03/I04 同比增速: the same definition at the same period a year earlier, per area (a window over each
-- area's months whose frame is exactly twelve months back: no self-join).
prior_year as (

    select
        valued.*,
        first_value(valued.value) over (
            partition by valued.indicator_id, valued.area_code
            order by valued.data_month
            range between interval '12 months' preceding and interval '12 months' preceding
        ) as prior_year_value
    from valued
    where valued.indicator_id in ('I03', 'I04') and valued.measure is null

),

growth as (

    select
        data_month,
        indicator_id,
        'growth' as measure,
        null::text as breakdown_value,
        area_code,
        value - prior_year_value as numerator,
        prior_year_value as denominator,
        record_count,
        value / prior_year_value - 1 as value
    from prior_year
    where value is not null and prior_year_value <> 0

),

all_values as (

    select * from valued
    union all
    select * from growth

),

final as (

    select
        all_values.data_month as period,
        to_char(all_values.data_month, 'YYYY-MM') as period_label,
        all_values.area_code,
        areas.area_name,
        areas.area_level,
        all_values.indicator_id,
        concat_ws('.', all_values.indicator_id, all_values.measure, all_values.breakdown_value) as measure_code,
        catalogue.indicator_name || coalesce('（' || case
            when all_values.indicator_id = 'I20' and all_values.breakdown_value <> '全部'
                then all_values.breakdown_value || ' ' || rules.rule_name || '，' || feeds.department_name
            when all_values.breakdown_value = 'total' then '合计'
            else all_values.breakdown_value
        end || '）', '') as indicator_name,
        all_values.measure,
        catalogue.breakdown_type,
        all_values.breakdown_value,
        all_values.numerator,
        case when catalogue.value_kind in ('ratio', 'average') then coalesce(all_values.denominator, 0)
             else all_values.denominator end as denominator,
        all_values.value,
        catalogue.unit,
        catalogue.value_kind,
        all_values.record_count,
        catalogue.target_direction,
        catalogue.suppress_small_cells
    from all_values
    inner join areas on areas.area_code = all_values.area_code
    inner join catalogue
        on catalogue.indicator_id = all_values.indicator_id
        and coalesce(catalogue.measure, '') = coalesce(all_values.measure, '')
    left join rules on rules.rule_id = all_values.breakdown_value and all_values.indicator_id = 'I20'
    left join feeds on feeds.feed = rules.source_feed

)

select * from final

-- Every threshold and setting for every area and year: the most specific row of policy_thresholds
-- that covers the area (its village, town, county, the city, else the default row), and of those the
-- latest effective year not after the year. One seed row changes one county's threshold from a year
-- on (indicators.md: thresholds are set by provinces and counties, each year).
with thresholds as (

    select * from {{ ref('policy_thresholds') }}

),

rollups as (

    select * from {{ ref('int_area_rollups') }}

),

years as (

    select distinct period_year from {{ ref('int_periods_fingerprinted') }}

),

depths as (

    select * from (values ('市', 1), ('县', 2), ('镇', 3), ('村', 4)) as d (area_level, depth)

),

candidates as (

    -- Rows set for the area itself or one above it.
    select
        rollups.area_code,
        years.period_year,
        thresholds.setting_code,
        thresholds.setting_value,
        thresholds.unit,
        thresholds.policy_reference,
        thresholds.area_code as set_for_area_code,
        thresholds.effective_year,
        depths.depth
    from rollups
    inner join depths on depths.area_level = rollups.rollup_level
    inner join thresholds on thresholds.area_code = rollups.rollup_area_code
    cross join years
    where thresholds.effective_year <= years.period_year

    union all

    -- The default rows apply everywhere, below any area's own.
    select
        areas.area_code,
        years.period_year,
        thresholds.setting_code,
        thresholds.setting_value,
        thresholds.unit,
        thresholds.policy_reference,
        thresholds.area_code as set_for_area_code,
        thresholds.effective_year,
        0 as depth
    from {{ ref('area_codes') }} as areas
    cross join years
    inner join thresholds
        on thresholds.area_code = '{{ var("default_settings_area_code") }}'
        and thresholds.effective_year <= years.period_year

),

ranked as (

    select
        candidates.*,
        row_number() over (
            partition by area_code, period_year, setting_code
            order by depth desc, effective_year desc
        ) as preference
    from candidates

),

final as (

    select
        setting_code,
        area_code,
        period_year,
        setting_value,
        unit,
        policy_reference,
        set_for_area_code,
        effective_year
    from ranked
    where preference = 1

)

select * from final

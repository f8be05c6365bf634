-- mart_indicator_values as analysts read it: at village level, a cell that counts fewer persons or
-- households than the small-cell threshold (policy_thresholds.small_cell_min_count, default 5) is
-- suppressed — numerator, denominator, value and count are null and is_suppressed says so. Village
-- facts that are not counts of people (toilets, water, projects) are not suppressed.
with indicator_values as (

    select * from {{ ref('mart_indicator_values') }}

),

thresholds as (

    select * from {{ ref('int_area_thresholds_pivoted') }}

),

flagged as (

    select
        indicator_values.*,
        coalesce(
            indicator_values.area_level = '村'
            and indicator_values.suppress_small_cells
            and indicator_values.record_count < thresholds.small_cell_min_count,
            false
        ) as is_suppressed
    from indicator_values
    left join thresholds
        on thresholds.area_code = indicator_values.area_code
        and thresholds.period_year = extract(year from indicator_values.period)::int

),

final as (

    select
        period,
        period_label,
        area_code,
        area_name,
        area_level,
        indicator_id,
        measure_code,
        indicator_name,
        measure,
        breakdown_type,
        breakdown_value,
        case when is_suppressed then null else numerator end as numerator,
        case when is_suppressed then null else denominator end as denominator,
        case when is_suppressed then null else value end as value,
        unit,
        value_kind,
        case when is_suppressed then null else record_count end as record_count,
        target_direction,
        is_suppressed
    from flagged

)

select * from final

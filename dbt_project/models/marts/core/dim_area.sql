-- The city's administrative divisions (area_codes seed, made from the city's area reference): city,
-- counties, towns and villages, each with the codes and names of the areas above it.
with areas as (

    select * from {{ ref('area_codes') }}

),

rollups as (

    select * from {{ ref('int_area_rollups') }}

),

ancestors as (

    select
        rollups.area_code,
        max(rollups.rollup_area_code) filter (where rollups.rollup_level = '市') as city_code,
        max(rollups.rollup_area_code) filter (where rollups.rollup_level = '县') as county_code,
        max(rollups.rollup_area_code) filter (where rollups.rollup_level = '镇') as town_code
    from rollups
    group by rollups.area_code

),

final as (

    select
        areas.area_code,
        areas.area_name,
        areas.area_level,
        case areas.area_level when '市' then 1 when '县' then 2 when '镇' then 3 when '村' then 4 end
            as area_level_rank,
        nullif(areas.parent_code, '') as parent_code,
        ancestors.city_code,
        ancestors.county_code,
        counties.area_name as county_name,
        ancestors.town_code,
        towns.area_name as town_name
    from areas
    inner join ancestors on ancestors.area_code = areas.area_code
    left join areas as counties on counties.area_code = ancestors.county_code
    left join areas as towns on towns.area_code = ancestors.town_code

)

select * from final

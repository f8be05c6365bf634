-- Each area of the reference with itself and every area above it: a record placed in a village
-- counts in its village, town, county and the city (indicators.md: every level).
with recursive areas as (

    select * from {{ ref('area_codes') }}

),

chain as (

    select
        areas.area_code,
        areas.area_code as rollup_area_code,
        areas.area_level as rollup_level,
        areas.parent_code
    from areas

    union all

    select
        chain.area_code,
        parent.area_code as rollup_area_code,
        parent.area_level as rollup_level,
        parent.parent_code
    from chain
    inner join areas as parent on parent.area_code = chain.parent_code

),

final as (

    select area_code, rollup_area_code, rollup_level
    from chain

)

select * from final

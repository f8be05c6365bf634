-- A count at an area is at least the sum of the same count in the areas directly below it (records
-- placed at the area itself, or unplaced records at the city, make up the difference).
-- (dim_area is named, not ref'd: a test of one model runs with that model's build; see macros/tests/references.sql.)
with values_by_area as (

    select indicator_values.*, areas.parent_code
    from {{ ref('mart_indicator_values') }} as indicator_values
    inner join {{ _relation_of('dim_area') }} as areas on areas.area_code = indicator_values.area_code
    where indicator_values.value_kind = 'count'

),

children as (

    select period, measure_code, parent_code, sum(value) as children_value
    from values_by_area
    group by period, measure_code, parent_code

)

select parents.period, parents.area_code, parents.measure_code, parents.value, children.children_value
from values_by_area as parents
inner join children
    on children.period = parents.period
    and children.measure_code = parents.measure_code
    and children.parent_code = parents.area_code
where parents.value < children.children_value

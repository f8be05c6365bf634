-- Every rule condition that holds, per data month: the households' (W01–W05, W07, W08) and the ones
-- found outside the roster (W06, W07, W08, W09). One row per month, rule and lead key (the household,
-- else the person, else the ticket), placed in its area and town.
with household_warnings as (

    select * from {{ ref('int_household_warnings_detected') }}

),

households as (

    select data_month, household_code, village_code from {{ ref('fct_household_month') }}

),

offroster_warnings as (

    select * from {{ ref('int_offroster_warnings_detected') }}

),

rollups as (

    select * from {{ ref('int_area_rollups') }}

),

conditions as (

    select
        household_warnings.data_month,
        household_warnings.rule_id,
        'household' as lead_key_type,
        household_warnings.household_code as lead_key,
        household_warnings.household_code,
        null::text as person_key,
        null::text as ticket_id,
        household_warnings.household_code as subject_reference,
        households.village_code as area_code,
        household_warnings.evidence
    from household_warnings
    inner join households
        on households.data_month = household_warnings.data_month
        and households.household_code = household_warnings.household_code

    union all

    select
        data_month,
        rule_id,
        lead_key_type,
        lead_key,
        null::text as household_code,
        person_key,
        ticket_id,
        subject_reference,
        area_code,
        evidence
    from offroster_warnings

),

final as (

    -- A lead goes to the town of its area; an area above town level (or none) has no town and the
    -- lead goes on the city's own list. Joins, not a lookup per row: a correlated subquery scanned
    -- the rollups twice for every condition (17 s a month at a million persons).
    select
        conditions.*,
        towns.rollup_area_code as town_code,
        counties.rollup_area_code as county_code
    from conditions
    left join rollups as towns
        on towns.area_code = conditions.area_code and towns.rollup_level = '镇'
    left join rollups as counties
        on counties.area_code = conditions.area_code and counties.rollup_level = '县'

)

select * from final

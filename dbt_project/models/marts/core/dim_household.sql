with persons as (

    select * from {{ ref('stg_rural_roster__persons') }}

),

latest_month as (

    select max(data_month) as data_month from persons

),

-- Household fields repeat on every member row; they count once, read from the 户主's row
-- (or the first row when a household has no 户主, which the gates report).
household_rows as (

    select distinct on (persons.household_code)
        persons.household_code,
        persons.data_month,
        persons.area_code,
        persons.household_type,
        persons.monitoring_category,
        persons.identified_date,
        persons.is_risk_eliminated,
        persons.risk_eliminated_date,
        persons.is_relocated,
        persons.household_size,
        persons.household_net_income_yuan,
        restricted.person_key(util.normalize_resident_id(persons.head_resident_id)) as head_person_key
    from persons
    inner join latest_month on persons.data_month = latest_month.data_month
    where persons.household_code is not null
    order by persons.household_code, (persons.relation_to_head = '户主') desc, persons.source_row

),

members as (

    select household_code, count(*) as member_rows, count(*) filter (where is_usable) as usable_member_rows
    from persons
    inner join latest_month on persons.data_month = latest_month.data_month
    group by household_code

),

final as (

    select
        household_rows.household_code,
        household_rows.data_month,
        household_rows.area_code as village_code,
        left(household_rows.area_code, 9) || '000' as town_code,
        left(household_rows.area_code, 6) || '000000' as county_code,
        household_rows.household_type,
        household_rows.monitoring_category,
        household_rows.identified_date,
        household_rows.is_risk_eliminated,
        household_rows.risk_eliminated_date,
        household_rows.is_relocated,
        household_rows.household_size,
        members.member_rows,
        members.usable_member_rows,
        household_rows.household_net_income_yuan,
        round(household_rows.household_net_income_yuan / nullif(household_rows.household_size, 0), 2)
            as per_capita_net_income_yuan,
        household_rows.head_person_key
    from household_rows
    inner join members on members.household_code = household_rows.household_code

)

select * from final

-- One row per person known to any feed (a valid resident ID), by pseudonymous person_key: birth date
-- and sex from the ID, where they appear, and — for roster persons — their latest household and
-- village; death as registered by 民政局. No resident IDs or names.
with identities as (

    select * from {{ ref('int_person_identities_unioned') }}

    union all

    -- Claims: from the incremental fact (the ID's birth date and sex come from the person's other feeds).
    select person_key, 'health_medical_claims', null::date, null::text, min(data_month), max(data_month)
    from {{ ref('fct_medical_claims') }}
    group by person_key

),

person_months as (

    select * from {{ ref('fct_person_month') }}

),

deaths as (

    select * from {{ ref('int_deaths_registered') }}

),

latest_roster as (

    select max(data_month) as data_month from person_months

),

people as (

    select
        person_key,
        min(birth_date) as birth_date,
        min(gender) as gender,
        array_agg(feed order by feed) as feeds_seen,
        min(first_seen_month) as first_seen_month,
        max(last_seen_month) as last_seen_month
    from identities
    group by person_key

),

roster_latest as (

    select distinct on (person_key)
        person_key,
        data_month as last_roster_month,
        household_code,
        village_code,
        relation_to_head,
        household_type
    from person_months
    order by person_key, data_month desc

),

roster_first as (

    select person_key, min(data_month) as first_roster_month
    from person_months
    group by person_key

),

final as (

    select
        people.person_key,
        people.birth_date,
        people.gender,
        people.feeds_seen,
        people.first_seen_month,
        people.last_seen_month,
        roster_first.person_key is not null as is_roster_person,
        roster_first.first_roster_month,
        roster_latest.last_roster_month,
        roster_latest.household_code,
        roster_latest.village_code,
        roster_latest.relation_to_head,
        roster_latest.household_type,
        coalesce(roster_latest.last_roster_month = latest_roster.data_month, false) as is_on_latest_roster,
        deaths.registered_month as death_registered_month,
        deaths.death_date,
        deaths.person_key is not null as is_registered_dead
    from people
    cross join latest_roster
    left join roster_first on roster_first.person_key = people.person_key
    left join roster_latest on roster_latest.person_key = people.person_key
    left join deaths on deaths.person_key = people.person_key

)

select * from final

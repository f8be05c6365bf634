-- One row per person the warehouse's facts know (by pseudonymous person_key, the same in every feed):
-- roster persons, with the birth date and sex their ID states and their latest household and
-- village; persons in medical claims, hotline calls, death registrations and off-roster leads; death
-- as registered by 民政局. Read from tables already parsed, never from staging's history. No resident
-- IDs or names.
-- The CTEs read more than once keep only the columns read: a million persons' months of every column
-- went to disk and back (480 MB and 400 MB at two months, growing with every month).
with roster_rows as (

    select person_key, data_month, id_birth_date, id_gender from {{ ref('int_roster_rows_checked') }}
    where person_key is not null

),

appearances as (

    select person_key, 'rural_roster' as feed, data_month from roster_rows
    union all
    select person_key, 'health_medical_claims', data_month from {{ ref('fct_medical_claims') }}
    union all
    select caller_person_key, 'hotline_tickets', data_month from {{ ref('int_hotline_tickets_placed') }}
    where caller_person_key is not null
    union all
    select person_key, 'civil_affairs_deaths', registered_month from {{ ref('int_deaths_registered') }}
    union all
    select person_key, '预警线索（' || rule_id || '）', data_month from {{ ref('int_offroster_warnings_detected') }}
    where person_key is not null

),

identities as (

    select person_key, feed, min(data_month) as first_seen_month, max(data_month) as last_seen_month
    from appearances
    group by person_key, feed

),

stated_by_id as (

    select person_key, min(id_birth_date) as birth_date, min(id_gender) as gender
    from roster_rows
    group by person_key

),

person_months as (

    select person_key, data_month, household_code, village_code, relation_to_head, household_type
    from {{ ref('fct_person_month') }}

),

deaths as (

    select * from {{ ref('int_deaths_registered') }}

),

latest_roster as (

    select max(data_month) as data_month from person_months

),

seen as (

    select
        person_key,
        array_agg(feed order by feed) as feeds_seen,
        min(first_seen_month) as first_seen_month,
        max(last_seen_month) as last_seen_month
    from identities
    group by person_key

),

people as (

    select
        seen.person_key,
        stated_by_id.birth_date,
        stated_by_id.gender,
        seen.feeds_seen,
        seen.first_seen_month,
        seen.last_seen_month
    from seen
    left join stated_by_id on stated_by_id.person_key = seen.person_key

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

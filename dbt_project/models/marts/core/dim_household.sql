-- One row per household ever on the roster, as the latest roster month that lists it states it, with
-- its current monitoring status and the month that status began (snapshotted over time by
-- snap_household_monitoring_status). No resident IDs or names: the head is a person_key.
with household_months as (

    select * from {{ ref('fct_household_month') }}

),

latest_roster as (

    select max(data_month) as data_month from household_months

),

roster_months as (

    select distinct data_month from household_months

),

statuses as (

    select
        household_months.*,
        case
            when household_type = '脱贫户' then '脱贫户'
            when household_type = '监测户' and is_risk_eliminated then '监测户（风险已消除）'
            when household_type = '监测户' then '监测户（风险未消除）'
        end as monitoring_status
    from household_months

),

-- The current status began in the first month of its latest unbroken run of roster months.
status_runs as (

    select
        statuses.*,
        row_number() over (partition by household_code order by data_month)
            - row_number() over (partition by household_code, monitoring_status, monitoring_category
                                 order by data_month) as run_id,
        row_number() over (partition by household_code order by data_month desc) as recency
    from statuses

),

latest as (

    select * from status_runs where recency = 1

),

history as (

    select
        household_code,
        min(data_month) as first_roster_month,
        max(data_month) as last_roster_month,
        count(*) as roster_months
    from household_months
    group by household_code

),

status_since as (

    select
        status_runs.household_code,
        min(status_runs.data_month) as status_since_month
    from status_runs
    inner join latest
        on latest.household_code = status_runs.household_code
        and latest.run_id = status_runs.run_id
        and latest.monitoring_status = status_runs.monitoring_status
        and latest.monitoring_category is not distinct from status_runs.monitoring_category
    group by status_runs.household_code

),

final as (

    select
        latest.household_code,
        latest.data_month,
        latest.village_code,
        latest.town_code,
        latest.county_code,
        latest.household_type,
        latest.monitoring_category,
        latest.identified_date,
        latest.is_risk_eliminated,
        latest.risk_eliminated_date,
        latest.monitoring_status,
        status_since.status_since_month,
        -- What the household is now: its status, or 已不在名册 from the first roster month without it.
        case when latest.data_month = latest_roster.data_month then latest.monitoring_status
             else '已不在名册' end as current_status,
        case when latest.data_month = latest_roster.data_month then status_since.status_since_month
             else (select min(roster_months.data_month) from roster_months
                   where roster_months.data_month > latest.data_month) end as current_status_since_month,
        latest.is_relocated,
        latest.household_size,
        latest.member_rows,
        latest.living_members,
        latest.household_net_income_yuan,
        latest.per_capita_net_income_yuan,
        latest.head_person_key,
        history.first_roster_month,
        history.last_roster_month,
        history.roster_months,
        latest.data_month = latest_roster.data_month as is_on_latest_roster
    from latest
    inner join history on history.household_code = latest.household_code
    inner join status_since on status_since.household_code = latest.household_code
    cross join latest_roster

)

select * from final

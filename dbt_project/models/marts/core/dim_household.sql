-- One row per household ever on the roster, as the latest roster month that lists it states it, with
-- its current monitoring status and the month that status began (snapshotted over time by
-- snap_household_monitoring_status). No resident IDs or names: the head is a person_key.
with household_months as (

    select * from {{ ref('fct_household_month') }}

),

roster_months as (

    select data_month, lead(data_month) over (order by data_month) as next_roster_month
    from (select distinct data_month from household_months) as months

),

statuses as (

    select
        household_months.*,
        case
            when household_type = '脱贫户' then '脱贫户'
            when household_type = '监测户' and is_risk_eliminated then '监测户（风险已消除）'
            when household_type = '监测户' then '监测户（风险未消除）'
        end as monitoring_status,
        -- One key for status and category (equality keeps the joins below hashable).
        coalesce(household_type, '') || '|' || coalesce(monitoring_category, '') || '|'
            || coalesce(is_risk_eliminated::text, '') as status_key
    from household_months

),

-- A status began in the first month of its latest unbroken run of roster months.
status_runs as (

    select
        statuses.*,
        row_number() over (partition by household_code order by data_month)
            - row_number() over (partition by household_code, status_key order by data_month) as run_id
    from statuses

),

in_context as (

    select
        status_runs.*,
        min(data_month) over (partition by household_code, status_key, run_id) as status_since_month,
        min(data_month) over (partition by household_code) as first_roster_month,
        count(*) over (partition by household_code) as roster_months,
        row_number() over (partition by household_code order by data_month desc) as recency
    from status_runs

),

latest_roster as (

    select max(data_month) as data_month from household_months

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
        latest.status_since_month,
        -- What the household is now: its status, or 已不在名册 from the first roster month without it.
        case when latest.data_month = latest_roster.data_month then latest.monitoring_status
             else '已不在名册' end as current_status,
        case when latest.data_month = latest_roster.data_month then latest.status_since_month
             else roster_months.next_roster_month end as current_status_since_month,
        latest.is_relocated,
        latest.household_size,
        latest.member_rows,
        latest.living_members,
        latest.household_net_income_yuan,
        latest.per_capita_net_income_yuan,
        latest.head_person_key,
        latest.first_roster_month,
        latest.data_month as last_roster_month,
        latest.roster_months,
        latest.data_month = latest_roster.data_month as is_on_latest_roster
    from in_context as latest
    cross join latest_roster
    inner join roster_months on roster_months.data_month = latest.data_month
    where latest.recency = 1

)

select * from final

{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='data_month',
        on_schema_change='fail'
    )
}}
-- One row per roster household and data month, with every department's signals: assistance, twelve
-- months of out-of-pocket medical cost, insurance, pupils and dropouts, workers and labour, pension,
-- the house's grade and rebuild status. Household fields come from the row that speaks for the
-- household (its first 户主 row). Incremental by month like fct_person_month.
{%- set months = months_to_rebuild() %}
with periods as (

    select * from {{ ref('int_periods_fingerprinted') }}
    where data_month in ({{ months }})

),

members as (

    select * from {{ ref('int_roster_members_placed') }}
    where data_month in ({{ months }}) and is_household_reference_row

),

current_persons as (

    select * from {{ ref('fct_person_month') }}
    where data_month in ({{ months }})

),

deaths as (

    select * from {{ ref('int_deaths_registered') }}

),

-- Only the claims months some rebuilt month's twelve-month window reaches, not every month's claims.
person_costs as (

    select data_month, person_key, sum(out_of_pocket_yuan) as out_of_pocket_yuan
    from {{ ref('fct_medical_claims') }}
    where data_month between (select (min(data_month) - interval '11 months')::date from periods)
                         and (select max(data_month) from periods)
    group by data_month, person_key

),

houses as materialized (

    select data_month, head_resident_id_person_key as head_person_key, safety_grade, rebuild_status,
           assessment_date, completion_date
    from {{ ref('stg_housing__house_safety') }}
    where is_usable and data_month in ({{ months }})

),

areas as (

    select * from {{ ref('area_codes') }}

),

households as (

    select
        members.data_month,
        members.household_code,
        members.head_person_key,
        members.village_code,
        members.household_type,
        members.monitoring_category,
        members.identified_date,
        members.is_household_risk_eliminated as is_risk_eliminated,
        members.risk_eliminated_date,
        members.is_household_relocated as is_relocated,
        members.household_size,
        members.household_net_income_yuan
    from members

),

member_signals as (

    select
        data_month,
        household_code,
        count(*) as member_rows,
        count(*) filter (where not is_deceased) as living_members,
        count(*) filter (where is_deceased) as deceased_members_on_roster,
        count(*) filter (where is_labour_force) as labour_force_members,
        count(*) filter (where is_labour_force and is_willing_to_work) as willing_labour_force_members,
        count(*) filter (where is_labour_force and is_employed) as employed_labour_force_members,
        count(*) filter (where not is_deceased and is_employed) as employed_members,
        count(*) filter (where not is_deceased and is_compulsory_school_age) as compulsory_school_age_members,
        count(*) filter (where not is_deceased and is_in_school) as pupils_in_school,
        count(*) filter (where is_compulsory_dropout) as compulsory_dropouts,
        count(*) filter (where not is_deceased and is_medically_insured) as medically_insured_members,
        count(*) filter (where not is_deceased and has_basic_pension) as pension_covered_members,
        count(*) filter (where not is_deceased and is_safety_net_covered) as safety_net_members,
        count(*) filter (where has_public_welfare_job) as public_welfare_job_workers,
        max(public_job_unpaid_months) as max_public_job_unpaid_months,
        sum(out_of_pocket_month_yuan) as out_of_pocket_month_yuan,
        bool_or(has_education_feed) as has_education_feed,
        bool_or(has_employment_feed) as has_employment_feed,
        bool_or(has_insurance_feed) as has_insurance_feed,
        bool_or(has_pension_feed) as has_pension_feed,
        bool_or(has_assistance_feed) as has_assistance_feed,
        bool_or(has_claims_feed) as has_claims_feed
    from current_persons
    group by data_month, household_code

),

-- W02 (indicators.md): the household's current members' 个人自付 over the data month and the eleven
-- before it, and claims of members who died within the window still count: a person registered dead
-- in the window and no longer on the roster counts for the last roster household they were in.
departed_members as (

    -- One pass over the person-months of the window's dead, newest first per person: a lateral
    -- "last row of this person" read the whole person-month history once per death (two minutes
    -- a month at a million persons).
    select distinct on (periods.data_month, deaths.person_key)
        periods.data_month,
        deaths.person_key,
        earlier.household_code
    from periods
    inner join deaths
        on deaths.registered_month between (periods.data_month - interval '11 months')::date and periods.data_month
    inner join {{ ref('fct_person_month') }} as earlier
        on earlier.person_key = deaths.person_key and earlier.data_month <= periods.data_month
    where not exists (
        select 1 from current_persons
        where current_persons.data_month = periods.data_month and current_persons.person_key = deaths.person_key
    )
    order by periods.data_month, deaths.person_key, earlier.data_month desc

),

window_members as (

    select data_month, person_key, household_code from current_persons
    union
    select data_month, person_key, household_code from departed_members

),

window_costs as (

    select
        window_members.data_month,
        window_members.household_code,
        sum(person_costs.out_of_pocket_yuan) as out_of_pocket_12m_yuan
    from window_members
    inner join person_costs
        on person_costs.person_key = window_members.person_key
        and person_costs.data_month between (window_members.data_month - interval '11 months')::date
                                        and window_members.data_month
    group by window_members.data_month, window_members.household_code

),

final as (

    select
        households.data_month,
        households.household_code,
        households.head_person_key,
        households.village_code,
        villages.parent_code as town_code,
        towns.parent_code as county_code,
        households.household_type,
        households.monitoring_category,
        households.identified_date,
        households.is_risk_eliminated,
        households.risk_eliminated_date,
        -- indicators.md: a 监测户 whose risk is not eliminated is already being helped; W01–W05 skip it.
        households.household_type = '监测户' and not households.is_risk_eliminated as is_under_assistance,
        households.is_relocated,
        households.household_size,
        households.household_net_income_yuan,
        round(households.household_net_income_yuan / nullif(households.household_size, 0), 2)
            as per_capita_net_income_yuan,
        member_signals.member_rows,
        member_signals.living_members,
        member_signals.deceased_members_on_roster,
        member_signals.labour_force_members,
        member_signals.willing_labour_force_members,
        member_signals.employed_labour_force_members,
        member_signals.employed_members,
        member_signals.compulsory_school_age_members,
        member_signals.pupils_in_school,
        member_signals.compulsory_dropouts,
        member_signals.medically_insured_members,
        member_signals.pension_covered_members,
        member_signals.safety_net_members,
        member_signals.public_welfare_job_workers,
        member_signals.max_public_job_unpaid_months,
        member_signals.out_of_pocket_month_yuan,
        case when member_signals.has_claims_feed then coalesce(window_costs.out_of_pocket_12m_yuan, 0) end
            as out_of_pocket_12m_yuan,
        houses.safety_grade as house_safety_grade,
        houses.rebuild_status as house_rebuild_status,
        houses.assessment_date as house_assessment_date,
        case when 'housing_safety' = any(periods.live_feeds) then
            coalesce(houses.safety_grade in ('C', 'D') and houses.rebuild_status is distinct from '已竣工', false)
        end as is_house_unsafe,
        member_signals.has_education_feed,
        member_signals.has_employment_feed,
        member_signals.has_insurance_feed,
        member_signals.has_pension_feed,
        member_signals.has_assistance_feed,
        member_signals.has_claims_feed,
        'housing_safety' = any(periods.live_feeds) as has_housing_feed,
        periods.has_deaths_registry,
        periods.period_year,
        periods.inputs_fingerprint
    from households
    inner join periods on periods.data_month = households.data_month
    inner join member_signals
        on member_signals.data_month = households.data_month
        and member_signals.household_code = households.household_code
    left join window_costs
        on window_costs.data_month = households.data_month
        and window_costs.household_code = households.household_code
    left join houses
        on houses.data_month = households.data_month and houses.head_person_key = households.head_person_key
    left join areas as villages on villages.area_code = households.village_code
    left join areas as towns on towns.area_code = villages.parent_code

)

select * from final

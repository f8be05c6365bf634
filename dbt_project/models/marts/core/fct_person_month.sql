{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='data_month',
        on_schema_change='fail'
    )
}}
-- One row per roster person (脱贫人口 and 监测对象 with a valid ID) and data month, with what every
-- department says of them that month. Incremental by month: only months whose inputs changed
-- (int_periods_fingerprinted) are rebuilt, so the next month does not rebuild history.
--
-- A department's signal is null when its feed has no live batch that month (unknown), and false when
-- the feed is live but does not list the person (feeds.md: absent from the enrollment feed = not
-- insured; absent from hrss_employment = not employed).
{%- set months = months_to_rebuild() %}
with periods as (

    select * from {{ ref('int_periods_fingerprinted') }}
    where data_month in ({{ months }})

),

members as (

    select members.*
    from {{ ref('int_roster_members_placed') }} as members
    where members.data_month in ({{ months }})

),

deaths as (

    select * from {{ ref('int_deaths_registered') }}

),

students as materialized (

    select data_month, person_key, enrollment_status, school_stage
    from {{ ref('stg_education__students') }}
    where is_usable and data_month in ({{ months }})

),

jobs as materialized (

    select data_month, person_key, employment_status, employment_form, public_job_paid_through_month
    from {{ ref('stg_hrss__employment') }}
    where is_usable and data_month in ({{ months }})

),

insurance as materialized (

    select data_month, person_key, insurance_year, enrollment_status
    from {{ ref('stg_health_insurance__enrollment') }}
    where is_usable and data_month in ({{ months }})

),

pensions as materialized (

    select data_month, person_key, enrollment_status
    from {{ ref('stg_hrss__pension_enrollment') }}
    where is_usable and data_month in ({{ months }})

),

assistance as materialized (

    -- A person may be on the assistance roster under several types (the key is ID + type).
    select
        data_month,
        person_key,
        bool_or(assistance_status = '在保' and assistance_type in ('农村低保', '特困供养')) as is_dibao_or_tekun_active,
        bool_or(assistance_status = '在保') as has_active_assistance,
        string_agg(distinct assistance_type, '、' order by assistance_type)
            filter (where assistance_status = '在保') as active_assistance_types
    from {{ ref('stg_civil_affairs__assistance') }}
    where is_usable and data_month in ({{ months }})
    group by data_month, person_key

),

claims as (

    select data_month, person_key, sum(out_of_pocket_yuan) as out_of_pocket_yuan, count(*) as settlements
    from {{ ref('fct_medical_claims') }}
    where data_month in ({{ months }})
    group by data_month, person_key

),

joined as (

    select
        members.data_month,
        members.person_key,
        members.household_code,
        members.relation_to_head,
        members.is_household_reference_row,
        members.village_code,
        members.household_village_code,
        members.birth_date,
        members.gender,
        members.age_years,
        members.household_type,
        members.monitoring_category,
        members.is_household_risk_eliminated,
        members.is_household_relocated,
        members.labour_skill,
        members.is_willing_to_work,
        deaths.registered_month as death_registered_month,
        coalesce(deaths.registered_month <= members.data_month, false) as is_deceased,
        'education_students' = any(periods.live_feeds) as has_education_feed,
        'hrss_employment' = any(periods.live_feeds) as has_employment_feed,
        'health_insurance_enrollment' = any(periods.live_feeds) as has_insurance_feed,
        'hrss_pension_enrollment' = any(periods.live_feeds) as has_pension_feed,
        'civil_affairs_assistance' = any(periods.live_feeds) as has_assistance_feed,
        'health_medical_claims' = any(periods.live_feeds) as has_claims_feed,
        periods.period_year,
        periods.inputs_fingerprint,
        students.enrollment_status as school_enrollment_status,
        students.school_stage,
        jobs.employment_status,
        jobs.employment_form,
        jobs.public_job_paid_through_month,
        insurance.insurance_year,
        insurance.enrollment_status as medical_insurance_status,
        pensions.enrollment_status as pension_status,
        assistance.is_dibao_or_tekun_active,
        assistance.has_active_assistance,
        assistance.active_assistance_types,
        claims.out_of_pocket_yuan,
        claims.settlements
    from members
    inner join periods on periods.data_month = members.data_month
    left join deaths on deaths.person_key = members.person_key
    left join students on students.data_month = members.data_month and students.person_key = members.person_key
    left join jobs on jobs.data_month = members.data_month and jobs.person_key = members.person_key
    left join insurance on insurance.data_month = members.data_month and insurance.person_key = members.person_key
    left join pensions on pensions.data_month = members.data_month and pensions.person_key = members.person_key
    left join assistance
        on assistance.data_month = members.data_month and assistance.person_key = members.person_key
    left join claims on claims.data_month = members.data_month and claims.person_key = members.person_key

),

signals as (

    select
        joined.*,
        case when has_education_feed then coalesce(school_enrollment_status = '在读', false) end as is_in_school,
        case when has_employment_feed then coalesce(employment_status = '已就业', false) end as is_employed,
        coalesce(employment_form = '公益性岗位', false) as has_public_welfare_job,
        -- W08: months after 公益性岗位工资发放至 up to the data month; a blank one counts as unpaid since
        -- the start of the year (so every month of the year so far, this one included).
        case when employment_form = '公益性岗位' then
            case when public_job_paid_through_month is not null
                 then {{ months_between('public_job_paid_through_month', 'data_month') }}
                 else extract(month from data_month)::int end
        end as public_job_unpaid_months,
        case when has_insurance_feed then
            coalesce(insurance_year = period_year and medical_insurance_status = '参保', false)
        end as is_medically_insured,
        case when has_pension_feed then coalesce(pension_status in ('参保缴费', '待遇领取'), false) end
            as has_basic_pension,
        case when has_assistance_feed then coalesce(is_dibao_or_tekun_active, false) end as is_safety_net_covered,
        case when has_assistance_feed then coalesce(has_active_assistance, false) end as is_assistance_active,
        case when has_claims_feed then coalesce(out_of_pocket_yuan, 0) end as out_of_pocket_month_yuan
    from joined

),

final as (

    select
        data_month,
        person_key,
        household_code,
        relation_to_head,
        is_household_reference_row,
        village_code,
        household_village_code,
        birth_date,
        gender,
        age_years,
        household_type,
        monitoring_category,
        is_household_risk_eliminated,
        is_household_relocated,
        labour_skill,
        is_willing_to_work,
        death_registered_month,
        is_deceased,
        school_enrollment_status,
        school_stage,
        is_in_school,
        age_years between 6 and 15 as is_compulsory_school_age,
        -- Whether alive or not: W03 (a child aged 6–15 with 学籍状态 = 辍学) is a rule, not a person-based
        -- indicator; I10 counts the living ones.
        case when has_education_feed then age_years between 6 and 15
                                           and coalesce(school_enrollment_status = '辍学', false) end
            as is_compulsory_dropout,
        -- 劳动力 (indicators.md): a working skill, aged 16–64, not a student in 在读 status; never a
        -- person registered dead. Without a live education feed no one can be known to be a student.
        not is_deceased
            and coalesce(labour_skill in ('普通劳动力', '技能劳动力', '弱劳动力或半劳动力'), false)
            and age_years between 16 and 64
            and not coalesce(is_in_school, false) as is_labour_force,
        employment_status,
        employment_form,
        is_employed,
        has_public_welfare_job,
        public_job_paid_through_month,
        public_job_unpaid_months,
        medical_insurance_status,
        is_medically_insured,
        pension_status,
        has_basic_pension,
        is_safety_net_covered,
        is_assistance_active,
        active_assistance_types,
        out_of_pocket_month_yuan,
        has_education_feed,
        has_employment_feed,
        has_insurance_feed,
        has_pension_feed,
        has_assistance_feed,
        has_claims_feed,
        inputs_fingerprint
    from signals

)

select * from final

{#
  The records behind every area-based indicator of indicators.md (I01–I16, I21–I23), summed per data
  month, measure and the area each record is placed in: numerator, denominator and how many records
  (persons, households, villages, projects, problems, tickets) stand behind them. mart_indicator_values
  rolls these cells up to every level. A measure is computed only in a month whose feeds are live (a
  missing feed leaves its indicators null, not zero); each computed month also gets an empty cell at the
  city, so an indicator with nothing to count still reads 0.

  Placement (indicators.md): persons by their own row's village; households by the household's; village
  feeds by their key (a row whose code is not a village of the reference counts nowhere); projects,
  problems and tickets by their own code at any level (blank or unknown: the city only).
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='data_month',
        on_schema_change='append_new_columns',
        pre_hook="set local enable_sort = off"
    )
}}
{#-
  Incremental by month like the facts: a month's cells read only that month's rows, so a run places
  the months whose inputs changed and leaves history alone (rebuilt whole, the model grew with every
  month). append_new_columns, not fail: a warehouse built when this was a table gains
  inputs_fingerprint, empty, so its first incremental run rebuilds every month.

  enable_sort off for this model's transaction: the records come from CTEs, which carry no column
  statistics, so the planner cannot tell that 2.6 million records of a city month fall into some
  twenty thousand cells, and it sorted them all (to disk) to group them. Hashed, the month's query
  takes 8.0 s instead of 12.5 s (EXPLAIN ANALYZE); the windows of the village feeds' staging still
  sort.
-#}
{%- set categories = registry_values('rural_roster', 'monitoring_category') %}
{%- set months = months_to_rebuild(roster_only=false) %}
with periods as (

    select * from {{ ref('int_periods_fingerprinted') }}
    where data_month in ({{ months }})

),

city as (

    select area_code as city_code from {{ ref('area_codes') }} where area_level = '市'

),

areas as (

    select area_code, area_level from {{ ref('area_codes') }}

),

thresholds as (

    select * from {{ ref('int_area_thresholds_pivoted') }}

),

persons as (

    select person_months.*, coalesce(person_months.village_code, city.city_code) as placed_area_code
    from {{ ref('fct_person_month') }} as person_months
    cross join city
    where not person_months.is_deceased and person_months.data_month in ({{ months }})

),

households as (

    select household_months.*, coalesce(household_months.village_code, city.city_code) as placed_area_code
    from {{ ref('fct_household_month') }} as household_months
    cross join city
    where household_months.data_month in ({{ months }})

),

environment as materialized (

    select environment.*
    from {{ ref('stg_housing__village_environment') }} as environment
    inner join areas on areas.area_code = environment.area_code and areas.area_level = '村'
    where environment.is_usable and environment.data_month in ({{ months }})

),

water as materialized (

    select
        water.*,
        -- 0 ≤ 本月断水天数 ≤ days in the month (feeds.md); outside it the value is flagged and unused.
        case when water.outage_days between 0 and extract(day from water.period_end_date) then water.outage_days end
            as valid_outage_days
    from {{ ref('stg_water__village_water_supply') }} as water
    inner join areas on areas.area_code = water.area_code and areas.area_level = '村'
    where water.is_usable and water.data_month in ({{ months }})

),

projects as materialized (

    select projects.*, coalesce(areas.area_code, city.city_code) as placed_area_code
    from {{ ref('stg_rural_revitalization__projects') }} as projects
    cross join city
    left join areas on areas.area_code = projects.area_code
    where projects.is_usable and projects.data_month in ({{ months }})

),

problems as materialized (

    select problems.*, coalesce(areas.area_code, city.city_code) as placed_area_code
    from {{ ref('stg_rural_revitalization__rectification_problems') }} as problems
    cross join city
    left join areas on areas.area_code = problems.area_code
    where problems.is_usable and problems.data_month in ({{ months }})

),

tickets as (

    select tickets.*, coalesce(tickets.placed_area_code, city.city_code) as cell_area_code
    from {{ ref('int_hotline_tickets_placed') }} as tickets
    cross join city
    where tickets.is_poverty_help_request and tickets.data_month in ({{ months }})

),

records as (

    -- I01 监测户数 / 监测人数, in all and by 监测对象类别.
    select data_month, 'I01' as indicator_id, 'households' as measure, 'total' as breakdown_value,
           placed_area_code, 1::numeric as numerator, null::numeric as denominator
    from households where household_type = '监测户'
    {%- for category in categories %}
    union all
    select data_month, 'I01', 'households', '{{ category }}', placed_area_code, 1, null
    from households where household_type = '监测户' and monitoring_category = '{{ category }}'
    {%- endfor %}
    union all
    select data_month, 'I01', 'persons', 'total', placed_area_code, 1, null
    from persons where household_type = '监测户'
    {%- for category in categories %}
    union all
    select data_month, 'I01', 'persons', '{{ category }}', placed_area_code, 1, null
    from persons where household_type = '监测户' and monitoring_category = '{{ category }}'
    {%- endfor %}

    -- I02 风险消除率, by households and by persons.
    union all
    select data_month, 'I02', 'households', null, placed_area_code, is_risk_eliminated::int, 1
    from households where household_type = '监测户'
    union all
    select data_month, 'I02', 'persons', null, placed_area_code, is_household_risk_eliminated::int, 1
    from persons where household_type = '监测户'

    -- I03/I04 人均纯收入: Σ 家庭年纯收入 / Σ 家庭人口数 over 脱贫户, each household once.
    union all
    select data_month, 'I03', null, null, placed_area_code, household_net_income_yuan, household_size
    from households
    where household_type = '脱贫户' and household_net_income_yuan is not null and household_size is not null
    union all
    select data_month, 'I04', null, null, placed_area_code, household_net_income_yuan, household_size
    from households
    where household_type = '脱贫户' and is_relocated
      and household_net_income_yuan is not null and household_size is not null

    -- I05 务工就业人数; I06 易地搬迁劳动力就业率 (a 劳动力 absent from hrss_employment is not employed).
    union all
    select data_month, 'I05', null, null, placed_area_code, 1, null
    from persons where is_labour_force and is_employed
    union all
    select data_month, 'I06', null, null, placed_area_code, is_employed::int, 1
    from persons where is_labour_force and is_household_relocated and has_employment_feed

    -- I07 零就业户数: a 劳动力 willing to work, and no 劳动力 employed.
    union all
    select data_month, 'I07', null, null, placed_area_code, 1, null
    from households
    where has_employment_feed and willing_labour_force_members > 0 and employed_labour_force_members = 0

    -- I08 医保参保率: 参保年度 = the period's year and 参保; absent = not insured.
    union all
    select data_month, 'I08', null, null, placed_area_code, is_medically_insured::int, 1
    from persons where has_insurance_feed

    -- I09 养老保险参保率: aged 16+, not a 在读 student.
    union all
    select data_month, 'I09', null, null, placed_area_code, has_basic_pension::int, 1
    from persons where has_pension_feed and has_education_feed and age_years >= 16 and not is_in_school

    -- I10 辍学人数 (6–15); I11 住房安全未保障户数; I16 兜底保障人数.
    union all
    select data_month, 'I10', null, null, placed_area_code, 1, null
    from persons where is_compulsory_dropout
    union all
    select data_month, 'I11', null, null, placed_area_code, 1, null
    from households where is_house_unsafe
    union all
    select data_month, 'I16', null, null, placed_area_code, 1, null
    from persons where is_safety_net_covered

    -- I12–I14 over the villages in the month's delivery.
    union all
    select data_month, 'I12', null, null, area_code, sanitary_toilet_households, total_households
    from environment where sanitary_toilet_households is not null and total_households is not null
    union all
    select data_month, 'I13', null, null, area_code, coalesce(has_sewage_treatment, false)::int, 1
    from environment
    union all
    select data_month, 'I14', null, null, area_code, coalesce(has_waste_collection, false)::int, 1
    from environment

    -- I15 completion over projects due by period end; disbursement over all (a blank 已拨付 is 0).
    union all
    select data_month, 'I15', 'completion', null, placed_area_code, (project_status = '已完工')::int, 1
    from projects where planned_completion_date <= period_end_date
    union all
    select data_month, 'I15', 'disbursement', null, placed_area_code,
           coalesce(case when disbursed_wan_yuan >= 0 then disbursed_wan_yuan end, 0), planned_investment_wan_yuan
    from projects where planned_investment_wan_yuan >= 0

    -- I21 饮水安全: tap water share; villages with failed water quality or too many outage days.
    union all
    select data_month, 'I21', 'tap_water', null, area_code, tap_water_households, total_households
    from water where tap_water_households is not null and total_households is not null
    union all
    select water.data_month, 'I21', 'flagged_villages', null, water.area_code, 1, null
    from water
    inner join thresholds
        on thresholds.area_code = water.area_code
        and thresholds.period_year = extract(year from water.data_month)::int
    where water.is_water_quality_ok = false or water.valid_outage_days > thresholds.i21_outage_days

    -- I22 问题整改率 and overdue problems (长期坚持 is neither).
    union all
    select data_month, 'I22', 'rectified', null, placed_area_code, (rectification_status = '已整改')::int, 1
    from problems
    union all
    select data_month, 'I22', 'overdue', null, placed_area_code, 1, null
    from problems
    where deadline_date < period_end_date and rectification_status in ('未整改', '整改中')

    -- I23 涉贫诉求办结率 (its median days to close is rolled up in mart_indicator_values).
    union all
    select data_month, 'I23', 'closed', null, cell_area_code, is_closed::int, 1
    from tickets

),

measures as (

    -- Which measures each month can compute, and from which feeds (besides the roster where noted).
    select * from (values
        ('I01', 'households', 'rural_roster', null::text),
        ('I01', 'persons', 'rural_roster', null),
        ('I02', 'households', 'rural_roster', null),
        ('I02', 'persons', 'rural_roster', null),
        ('I03', null, 'rural_roster', null),
        ('I04', null, 'rural_roster', null),
        ('I05', null, 'rural_roster', 'hrss_employment'),
        ('I06', null, 'rural_roster', 'hrss_employment'),
        ('I07', null, 'rural_roster', 'hrss_employment'),
        ('I08', null, 'rural_roster', 'health_insurance_enrollment'),
        ('I09', null, 'rural_roster', 'hrss_pension_enrollment'),
        ('I10', null, 'rural_roster', 'education_students'),
        ('I11', null, 'rural_roster', 'housing_safety'),
        ('I12', null, 'housing_village_environment', null),
        ('I13', null, 'housing_village_environment', null),
        ('I14', null, 'housing_village_environment', null),
        ('I15', 'completion', 'rural_projects', null),
        ('I15', 'disbursement', 'rural_projects', null),
        ('I16', null, 'rural_roster', 'civil_affairs_assistance'),
        ('I21', 'tap_water', 'water_supply', null),
        ('I21', 'flagged_villages', 'water_supply', null),
        ('I22', 'rectified', 'rectification_problems', null),
        ('I22', 'overdue', 'rectification_problems', null),
        ('I23', 'closed', 'hotline_tickets', null)
    ) as m (indicator_id, measure, feed, second_feed)

),

breakdowns as (

    select 'I01' as indicator_id, 'total' as breakdown_value
    {%- for category in categories %}
    union all select 'I01', '{{ category }}'
    {%- endfor %}

),

available as (

    select
        periods.data_month,
        measures.indicator_id,
        measures.measure,
        breakdowns.breakdown_value
    from periods
    cross join measures
    left join breakdowns on breakdowns.indicator_id = measures.indicator_id
    where measures.feed = any(periods.live_feeds)
      and (measures.second_feed is null or measures.second_feed = any(periods.live_feeds))
      -- I09 excludes 在读 students, so it needs the education feed too.
      and (measures.indicator_id <> 'I09' or 'education_students' = any(periods.live_feeds))

),

cells as (

    select
        records.data_month,
        records.indicator_id,
        records.measure,
        records.breakdown_value,
        records.placed_area_code as area_code,
        sum(records.numerator) as numerator,
        sum(records.denominator) as denominator,
        count(*) as record_count
    from records
    inner join available
        on available.data_month = records.data_month
        and available.indicator_id = records.indicator_id
        and available.measure is not distinct from records.measure
        and available.breakdown_value is not distinct from records.breakdown_value
    group by 1, 2, 3, 4, 5

    union all

    select
        available.data_month,
        available.indicator_id,
        available.measure,
        available.breakdown_value,
        city.city_code,
        0,
        null,
        0
    from available
    cross join city

),

final as (

    select
        cells.data_month,
        cells.indicator_id,
        cells.measure,
        cells.breakdown_value,
        cells.area_code,
        sum(cells.numerator) as numerator,
        sum(cells.denominator) as denominator,
        sum(cells.record_count) as record_count,
        periods.inputs_fingerprint
    from cells
    inner join periods on periods.data_month = cells.data_month
    group by 1, 2, 3, 4, 5, periods.inputs_fingerprint

)

select * from final

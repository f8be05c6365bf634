-- Rules W01–W05, W07 and W08 on roster households, one row per household, month and rule that holds,
-- with the evidence a town needs to verify it. A household already 监测户 with its risk not eliminated
-- is being helped: W01–W05 skip it (warning_rules.skips_monitored_households). A rule whose feed has
-- no live batch that month is not evaluated (its column is null, so nothing holds).
-- Thresholds come from policy_thresholds for the household's village (or the city when it cannot be
-- placed) and the period's year.
with households as (

    select * from {{ ref('fct_household_month') }}

),

thresholds as (

    select * from {{ ref('int_area_thresholds_pivoted') }}

),

rules as (

    select * from {{ ref('warning_rules') }}

),

city as (

    select area_code as city_code from {{ ref('area_codes') }} where area_level = '市'

),

assessed as (

    select
        households.*,
        thresholds.w01_income_per_capita_yuan,
        thresholds.w02_out_of_pocket_yuan,
        thresholds.w02_income_share,
        thresholds.w08_unpaid_months,
        households.household_net_income_yuan / nullif(households.household_size, 0) as exact_per_capita_yuan
    from households
    cross join city
    left join thresholds
        on thresholds.area_code = coalesce(households.village_code, city.city_code)
        and thresholds.period_year = households.period_year

),

holding as (

    -- W01: strictly below the monitoring threshold, per-capita = 家庭年纯收入 / 家庭人口数.
    select data_month, household_code, 'W01' as rule_id,
        '家庭人均纯收入 ' || to_char(exact_per_capita_yuan, 'FM999,999,990.00') || ' 元，低于监测标准 '
            || to_char(w01_income_per_capita_yuan, 'FM999,999,990') || ' 元' as evidence,
        exact_per_capita_yuan as evidence_value
    from assessed
    where exact_per_capita_yuan < w01_income_per_capita_yuan

    union all

    -- W02: twelve months of the members' 个人自付 reach the amount, or the share of annual net income.
    select data_month, household_code, 'W02',
        '近12个月医疗个人自付 ' || to_char(out_of_pocket_12m_yuan, 'FM999,999,990.00') || ' 元'
            || coalesce('，家庭年纯收入 ' || to_char(household_net_income_yuan, 'FM999,999,990.00') || ' 元', '')
            || '（标准：' || to_char(w02_out_of_pocket_yuan, 'FM999,999,990') || ' 元或年纯收入的 '
            || to_char(w02_income_share * 100, 'FM990') || '%）',
        out_of_pocket_12m_yuan
    from assessed
    where out_of_pocket_12m_yuan > 0
      and (out_of_pocket_12m_yuan >= w02_out_of_pocket_yuan
           or out_of_pocket_12m_yuan >= w02_income_share * household_net_income_yuan)

    union all

    -- W03: a child aged 6–15 has 学籍状态 = 辍学.
    select data_month, household_code, 'W03',
        '义务教育阶段（6-15周岁）辍学 ' || compulsory_dropouts || ' 人',
        compulsory_dropouts
    from assessed
    where compulsory_dropouts > 0

    union all

    -- W04: a zero-employment household (I07): a 劳动力 willing to work, and no 劳动力 employed.
    select data_month, household_code, 'W04',
        '有就业意愿的劳动力 ' || willing_labour_force_members || ' 人，劳动力均未就业',
        willing_labour_force_members
    from assessed
    where has_employment_feed and willing_labour_force_members > 0 and employed_labour_force_members = 0

    union all

    -- W05: house C/D not rebuilt (a C/D house marked 无需改造 counts too).
    select data_month, household_code, 'W05',
        '住房安全鉴定 ' || house_safety_grade || ' 级，改造状态：' || coalesce(house_rebuild_status, '未填写'),
        null::numeric
    from assessed
    where is_house_unsafe

    union all

    -- W07 (roster side): a person registered dead is still on this month's roster.
    select data_month, household_code, 'W07',
        '已登记死亡的成员 ' || deceased_members_on_roster || ' 人仍在本月名册中',
        deceased_members_on_roster
    from assessed
    where has_deaths_registry and deceased_members_on_roster > 0

    union all

    -- W08: a 公益性岗位 wage unpaid for at least the threshold's months.
    select data_month, household_code, 'W08',
        '公益性岗位工资欠发 ' || max_public_job_unpaid_months || ' 个月（标准：'
            || to_char(w08_unpaid_months, 'FM990') || ' 个月）',
        max_public_job_unpaid_months
    from assessed
    where has_employment_feed and max_public_job_unpaid_months >= w08_unpaid_months

),

final as (

    select
        holding.data_month,
        holding.household_code,
        holding.rule_id,
        holding.evidence,
        holding.evidence_value
    from holding
    inner join rules on rules.rule_id = holding.rule_id
    inner join assessed
        on assessed.data_month = holding.data_month and assessed.household_code = holding.household_code
    where not (rules.skips_monitored_households and assessed.is_under_assistance)

)

select * from final

-- For each rule and data month: could the rule be evaluated (the roster and the rule's source feed
-- have a live batch; W07 needs the deaths feed to have been live at some month up to this one)? Its
-- evaluated months are numbered in order, so a lead is open across consecutive evaluated months: a
-- month whose feed is missing neither clears nor continues a condition.
with periods as (

    select * from {{ ref('int_periods_fingerprinted') }}

),

rules as (

    select * from {{ ref('warning_rules') }}

),

assessed as (

    select
        periods.data_month,
        rules.rule_id,
        'rural_roster' = any(periods.live_feeds)
            and case when rules.source_feed = 'civil_affairs_deaths' then periods.has_deaths_registry
                     else rules.source_feed = any(periods.live_feeds) end as is_evaluated
    from periods
    cross join rules

),

final as (

    select
        data_month,
        rule_id,
        is_evaluated,
        case when is_evaluated then
            row_number() over (partition by rule_id, is_evaluated order by data_month)
        end as evaluation_seq
    from assessed

)

select * from final

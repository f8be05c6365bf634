{#
  Each household's monitoring status over time (户类型, 监测对象类别, 风险是否消除, or 已不在名册). The
  snapshot's clock is the data month the status began (current_status_since_month), not the time the
  build ran: a change is dated by the data that shows it, and rebuilding the same data adds nothing.
#}
{% snapshot snap_household_monitoring_status %}
{{
    config(
        unique_key='household_code',
        strategy='timestamp',
        updated_at='status_since_at',
        persist_docs={'relation': true, 'columns': true}
    )
}}
select
    household_code,
    current_status,
    household_type,
    monitoring_category,
    is_risk_eliminated,
    village_code,
    current_status_since_month::timestamp as status_since_at
from {{ ref('dim_household') }}
{% endsnapshot %}

-- The resolved settings side by side, one row per area and year, for the models that apply them.
with settings as (

    select * from {{ ref('int_area_settings_resolved') }}

),

final as (

    select
        area_code,
        period_year,
        max(setting_value) filter (where setting_code = 'w01_income_per_capita_yuan') as w01_income_per_capita_yuan,
        max(setting_value) filter (where setting_code = 'w02_out_of_pocket_yuan') as w02_out_of_pocket_yuan,
        max(setting_value) filter (where setting_code = 'w02_income_share') as w02_income_share,
        max(setting_value) filter (where setting_code = 'w08_unpaid_months') as w08_unpaid_months,
        max(setting_value) filter (where setting_code = 'i17_response_days') as i17_response_days,
        max(setting_value) filter (where setting_code = 'i21_outage_days') as i21_outage_days,
        max(setting_value) filter (where setting_code = 'small_cell_min_count') as small_cell_min_count,
        max(setting_value) filter (where setting_code = 'lead_push_day') as lead_push_day
    from settings
    group by area_code, period_year

)

select * from final

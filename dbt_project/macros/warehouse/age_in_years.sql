{#
  Completed years on a date (indicators.md: age at period end, from the birth date in the ID). Someone
  born on 29 February turns a year older on 1 March in other years: the birthday has passed only when
  (month, day) of the date is not before the birth's, and 28 February < 29 February.
#}
{% macro age_in_years(birth_date, on_date) -%}
    (extract(year from {{ on_date }})::int - extract(year from {{ birth_date }})::int
     - case when to_char({{ on_date }}, 'MMDD') < to_char({{ birth_date }}, 'MMDD') then 1 else 0 end)
{%- endmacro %}


{# Whole months from one month to another (both the first day of their month). #}
{% macro months_between(from_month, to_month) -%}
    ((extract(year from {{ to_month }})::int - extract(year from {{ from_month }})::int) * 12
     + extract(month from {{ to_month }})::int - extract(month from {{ from_month }})::int)
{%- endmacro %}

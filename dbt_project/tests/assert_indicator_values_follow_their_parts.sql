-- Every stored value is what its numerator and denominator say (a count is its numerator; a ratio
-- or average their quotient; nothing is divided by zero), so any level can be re-derived and audited.
select period, area_code, measure_code, numerator, denominator, value
from {{ ref('mart_indicator_values') }}
where (value_kind = 'count' and value is distinct from numerator)
   or (value_kind in ('ratio', 'average')
       and value is distinct from numerator / nullif(denominator, 0))
   or (value_kind in ('ratio', 'average') and denominator = 0 and value is not null)

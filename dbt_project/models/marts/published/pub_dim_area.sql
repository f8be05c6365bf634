-- dim_area as analysts read it (pseudonymous keys only; no resident IDs or names in the marts).
select * from {{ ref('dim_area') }}

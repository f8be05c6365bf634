{{ staged_feed('rural_projects') }}

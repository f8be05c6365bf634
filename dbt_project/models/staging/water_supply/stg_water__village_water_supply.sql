{{ staged_feed('water_supply') }}

{{ staged_feed('housing_safety') }}

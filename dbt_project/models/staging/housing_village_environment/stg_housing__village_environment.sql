{{ staged_feed('housing_village_environment') }}

{{ staged_feed('rectification_problems') }}

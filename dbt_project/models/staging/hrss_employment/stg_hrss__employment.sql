{{ staged_feed('hrss_employment') }}

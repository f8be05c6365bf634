{{ staged_feed('hrss_pension_enrollment') }}

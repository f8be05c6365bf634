{{ staged_feed('health_insurance_enrollment') }}

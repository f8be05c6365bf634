{{ staged_feed('education_students') }}

{{ staged_feed('lead_feedback') }}

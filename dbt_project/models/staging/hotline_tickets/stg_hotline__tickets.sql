{{ staged_feed('hotline_tickets') }}

{{ staged_feed('civil_affairs_assistance') }}

"""The chat itself: the hub (rooms, members), events and the publish seam, the command table and its
handlers, registration, replay and CHATHISTORY. No sockets, no threads of its own, no Redis, no SQLite:
those live in net/, store/ and cluster/, which plug into the ports defined here (ports.py, history.py)."""

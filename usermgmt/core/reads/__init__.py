"""The read side of users: ``users.UserReads`` is the one door faces read users through.

``user_rows`` reads users as the faces see them, ``search_index`` is SQLite's trigram
index of the search copy, ``tuning`` holds the thresholds and speed devices; the
modules with a leading underscore are the read model's private strategies.
"""

"""The REST API face: a Falcon WSGI app over the core services, served by waitress.

Build it with :func:`usermgmt.api.app.create_app`; serve it with
:func:`usermgmt.api.server.serve` (``usermgmt serve``).
"""

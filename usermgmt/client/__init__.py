"""Remote mode's client: the ports of ``usermgmt.core.ports`` over the REST API.

``factory.choose`` decides from the options and environment whether a command
works embedded or through a server; ``factory.connect`` gives the
:class:`~usermgmt.client.backend.RemoteBackend` for a server, built on one
:class:`~usermgmt.client.session.Connection` (httpx) with the credentials of a
context of the contexts file (``contexts``) or of ``USERMGMT_TOKEN``.
Nothing here imports SQLAlchemy or the ORM models.
"""

"""The product: models, services, auth, audit, configuration and errors.

Nothing here imports a face library (falcon, waitress, typer, rich, textual).
"""

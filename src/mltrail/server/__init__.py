"""The mltrail server: FastAPI app, REST API, auth, content-addressed run files.

Importing this package imports FastAPI; ``import mltrail`` never does. Build the app with
:func:`mltrail.server.app.create_app`.
"""

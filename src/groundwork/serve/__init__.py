"""The HTTP service: ``create_app`` (app.py), the routes (routes/), authentication and the ingest worker."""

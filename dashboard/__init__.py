"""The history dashboard: a small web app over the results store (SPEC 11)."""

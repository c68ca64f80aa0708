"""Glassbox's web app: settings, the FastAPI factory, routes, views and the `glassbox` command."""

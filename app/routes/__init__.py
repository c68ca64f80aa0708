"""HTTP routes: the explainer page (HTML, htmx fragments) and the JSON API."""

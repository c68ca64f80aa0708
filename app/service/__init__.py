"""Request -> checked state -> trace -> page model: the work behind the routes (app/routes speak HTTP)."""

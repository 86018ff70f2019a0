"""The MLflow tracking REST API (and artifact proxy, logged models) on Mill's own store."""

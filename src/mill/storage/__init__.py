"""Storage: content-addressed blobs, code snapshots and datastore paths."""

"""Chapter metrics-server."""

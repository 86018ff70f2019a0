"""`mill <noun> <verb>`: a thin layer over the HTTP client."""

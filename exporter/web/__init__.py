"""The web side: the aiohttp app, the HTTP server, the web config (TLS, basic auth) and the
landing page."""

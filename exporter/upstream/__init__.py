"""The upstream HTTP client: a provider's pages fetched with retries, redirects and limits; the
poll errors."""

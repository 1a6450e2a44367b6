"""Upstream providers: vendor adapters, the upstream HTTP client and its SSRF guard, and loopback simulators."""

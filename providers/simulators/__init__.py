"""Loopback simulators of the OpenAI, AWS Bedrock and Google Vertex inference APIs (DESIGN.md §10).

They speak each vendor's real wire format and share one deterministic behaviour (`behaviour`), so a gateway that
translates correctly returns identical OpenAI-shaped results whichever vendor served a request. Knobs (latency,
injected errors, counters, a speedable clock) live in `controls`; `app` builds and runs them:

    with running_simulator("bedrock", latency_ms=50) as url: ...     # tests
    portico simulate vertex --port 8803 --fail-rate 0.1               # demo, benchmarks

This package imports nothing at load time, so `providers.simulators.behaviour` stays cheap to import.
"""

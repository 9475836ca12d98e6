"""Checks: the `Verifier` protocol, metadata and integrity checks, restore tests and probes.

Checks reach backends only through the protocols and the registry of `backuppolicy.core`.
Import the public names from the façade, ``backuppolicy``.
"""

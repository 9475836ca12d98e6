"""The pure core: values, rules and the policy model. No I/O, no boto3, ``now`` always passed in.

Every other layer builds on this one, and it imports nothing else of ours (import-linter checks
this in CI). Import the public names from the façade, ``backuppolicy``.
"""

"""The ``backuppolicy`` command line: `backuppolicy.cli.main` plus one module per command group.

Nothing else in the library imports this package (import-linter checks this in CI).
"""

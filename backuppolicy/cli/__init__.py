"""The ``backuppolicy`` command line: `backuppolicy.cli.main` plus one module per command group.

To add a command group, write a module here with ``register(sub, common) -> {name: handler}``
that takes its helpers from `backuppolicy.cli._common` (never from ``main``) and imports
nothing heavy at module level, then add it to ``main.COMMAND_MODULES``.

Nothing else in the library imports this package (import-linter checks this in CI).
"""

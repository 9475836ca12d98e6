"""Sphinx configuration for backuppolicy."""

from __future__ import annotations

import importlib.metadata

project = "backuppolicy"
author = "backuppolicy developers"
copyright = "2026, backuppolicy developers"  # noqa: A001
release = importlib.metadata.version("backuppolicy")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_mock_imports: list[str] = []
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True

default_role = "py:obj"
nitpicky = True
# The docs are built offline (no intersphinx): references to the standard library and
# third-party types are left as plain text rather than warnings.
nitpick_ignore_regex = [
    (r"py:.*", r"(datetime|collections|typing|contextlib|enum|abc|zoneinfo|pathlib|concurrent|io|os)(\..*)?"),
    (r"py:.*", r"(boto3|botocore|tenacity|attrs|attr|mypy_boto3_.*|types_boto3_.*|croniter|yaml|pytest)(\..*)?"),
    (r"py:.*", r"(Any|Callable|Iterator|Iterable|Mapping|Sequence|Self|T|P|tzinfo|timedelta|datetime|Path|Config|Retrying|BaseClient|ClientError)"),
    (r"py:.*", r"(int|str|float|bool|bytes|None|dict|list|tuple|set|frozenset|object|type|Exception|ValueError|LookupError|PermissionError)"),
    (r"py:.*", r"(_.*|.*\._.*)"),
]
suppress_warnings = ["myst.xref_missing"]

html_theme = "furo"
html_title = f"backuppolicy {release}"

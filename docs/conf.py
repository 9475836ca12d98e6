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
# Not nitpicky: docstrings name things relative to their module (`created_at`, `Status.PENDING`);
# those render as code and link where Sphinx can resolve them. Broken *documents* still fail -W.
nitpicky = False
suppress_warnings = ["myst.xref_missing"]

html_theme = "furo"
html_title = f"backuppolicy {release}"

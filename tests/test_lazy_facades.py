"""The façades import their names on first use, so a prune job loads only what it runs.

``backuppolicy`` and ``backuppolicy.aws`` keep their imports under ``if TYPE_CHECKING:``
(for mypy and IDEs) and a table ``_EXPORTS`` that `backuppolicy.core.lazy.lazy_exports`
reads at run time; these tests keep the two in step and check what a job's imports load.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

FACADES = ("backuppolicy", "backuppolicy.aws")


def _type_checking_imports(module_name: str) -> dict[str, str]:
    """``{name: module}`` of the ``from m import name`` statements under ``if TYPE_CHECKING:``."""
    module = importlib.import_module(module_name)
    tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "typing.TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom), ast.unparse(statement)
                for alias in statement.names:
                    found[alias.asname or alias.name] = str(statement.module)
    return found


def _imported_by_child(code: str) -> list[str]:
    """The modules loaded after running *code* in a fresh interpreter (sorted)."""
    program = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", program], check=True, capture_output=True, text=True
    )
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


@pytest.mark.parametrize("name", FACADES)
def test_exports_table_matches_the_type_checking_imports_and_all(name):
    """What mypy sees, what run time imports and ``__all__`` are the same names."""
    module = importlib.import_module(name)
    table = {export: source for source, names in module._EXPORTS.items() for export in names}
    assert (table, sorted(table)) == (
        _type_checking_imports(name),
        sorted(set(module.__all__) - {"__version__"}),
    )


@pytest.mark.parametrize("name", FACADES)
def test_every_name_is_the_object_of_its_module(name):
    """A name read from the façade is the object its defining module holds."""
    module = importlib.import_module(name)
    wrong = [
        export
        for source, names in module._EXPORTS.items()
        for export in names
        if getattr(module, export) is not getattr(importlib.import_module(source), export)
    ]
    assert wrong == []


def test_unknown_names_raise_attribute_error_naming_them():
    """A typo is an AttributeError naming the module and the name, not an ImportError."""
    import backuppolicy

    with pytest.raises(AttributeError, match=r"module 'backuppolicy' has no attribute 'MaxAgee'"):
        _ = backuppolicy.MaxAgee


def test_dir_lists_the_exports_before_they_are_imported():
    """``dir()`` (tab completion) shows every exported name, and reading it imports none."""
    program = (
        "import json, sys, backuppolicy\n"
        "print(json.dumps([dir(backuppolicy), backuppolicy.__all__, sorted(sys.modules)]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], check=True, capture_output=True, text=True
    )
    listed, exported, loaded = json.loads(done.stdout.splitlines()[-1])
    assert (set(exported) - set(listed), "backuppolicy.workflows" in loaded) == (set(), False)


def test_subpackages_are_reachable_as_attributes():
    """``bp.workflows.unattended`` works as it did when the façade imported it eagerly."""
    loaded = _imported_by_child(
        "import backuppolicy as bp\nassert callable(bp.workflows.unattended.lease_for)"
    )
    assert "backuppolicy.workflows.unattended" in loaded


def test_a_prune_job_loads_no_other_kind_check_workflow_or_heavy_library():
    """``import backuppolicy.aws.rds, backuppolicy.core.retention`` (what a prune job needs).

    It used to load every check, workflow, S3, EC2, AWS Backup and the policy schema
    (616 modules, against 393 for boto3 and one client).
    """
    loaded = _imported_by_child("import backuppolicy.aws.rds, backuppolicy.core.retention")
    unwanted = (
        "backuppolicy.checks",
        "backuppolicy.workflows",
        "backuppolicy.notify",
        "backuppolicy.report",
        "backuppolicy.aws.s3",
        "backuppolicy.aws.ec2",
        "backuppolicy.aws.awsbackup",
        "backuppolicy.aws.backup_plan",
        "backuppolicy.core.specs",
        "backuppolicy.core.policy",
        "yaml",
        "jsonschema",
        "rich",
        "cryptography",
        "moto",
    )
    assert [m for m in loaded if m.startswith(unwanted)] == []


def test_import_backuppolicy_loads_neither_boto3_nor_the_layers():
    """The bare façade loads the lazy machinery only; names are imported when read."""
    loaded = _imported_by_child("import backuppolicy")
    assert [m for m in loaded if m.startswith(("boto3", "botocore", "backuppolicy."))] == [
        "backuppolicy.core",
        "backuppolicy.core.lazy",
    ]

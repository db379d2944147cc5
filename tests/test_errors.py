"""The error tree in asnmon/errors.py's docstring names every error asnmon raises."""

from __future__ import annotations

import importlib
import pkgutil
import re

import asnmon
import asnmon.errors
import dashboard
from asnmon.errors import AsnmonError


def _every_module() -> list[str]:
    names = []
    for package in (asnmon, dashboard):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith(".__main__"):  # runs the command line when imported
                names.append(info.name)
    return names


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_every_asnmon_error_is_in_the_docstring_tree() -> None:
    for name in _every_module():
        importlib.import_module(name)
    tree = asnmon.errors.__doc__ or ""
    listed = set(re.findall(r"[├└]── (\w+)", tree))
    found = {cls.__name__ for cls in _subclasses(AsnmonError)}
    assert "BadInput" in found  # the dashboard's, imported above
    assert found - listed == set(), "add these to asnmon/errors.py's tree"
    assert listed - found == set(), "the tree names errors that no longer exist"


def test_the_tree_draws_each_parent_above_its_children() -> None:
    tree = (asnmon.errors.__doc__ or "").splitlines()
    depth = {}
    for line in tree:
        m = re.search(r"[├└]── (\w+)", line)
        if m:
            depth[m.group(1)] = m.start() // 4 - 1  # the docstring is indented by 4
    for cls in _subclasses(AsnmonError):
        parent = cls.__mro__[1]
        expected = 0 if parent is AsnmonError else depth[parent.__name__] + 1
        assert depth[cls.__name__] == expected, f"{cls.__name__} drawn under the wrong parent"

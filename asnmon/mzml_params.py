"""Reading an mzML element's parameters and children from the lxml tree (for ``asnmon.mzml``).

A cvParam or userParam is the tuple (accession, name, value, unit accession,
unit name); a ``referenceableParamGroupRef`` stands for its group's params,
expanded in place. Tags are matched by local name, whatever the namespace
(mzML 1.0 and 1.1 use different ones, some writers none).

Why Python loops over an element's children instead of one ``iterchildren(tag)``
per kind of child: each such call parses its tag names again, which costs more
than the loop on elements of a few children (a chromatogram is read in ~45 us).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from lxml import etree

__all__ = [
    "Param",
    "array_parts",
    "chromatogram_parts",
    "descendants",
    "find_param",
    "finite_float",
    "lookup",
    "mz_of",
    "mz_of_children",
    "param_list",
    "param_value",
    "split_children",
]

# (accession, name, value, unit accession, unit name) of one cvParam/userParam
Param = tuple[str, str, str, str, str]

_TARGET_MZ = ("MS:1000827", "isolation window target m/z")
_SELECTED_MZ = ("MS:1000744", "selected ion m/z")


def param_list(el: etree._Element, groups: dict[str, list[Param]]) -> list[Param]:
    """The element's own cvParams/userParams, referenced param groups expanded."""
    return split_children(el, groups)[0]


def split_children(
    el: etree._Element, groups: dict[str, list[Param]]
) -> tuple[list[Param], dict[str, list[etree._Element]]]:
    """``param_list`` and the element's other child elements by local name, in document order.

    One pass over the children in Python costs less than one ``iterchildren(tag)``
    per kind of child (each parses its tag names again).
    """
    out: list[Param] = []
    others: dict[str, list[etree._Element]] = {}
    for child in el:
        tag = child.tag
        if not isinstance(tag, str):  # a comment or processing instruction
            continue
        local = tag[tag.rfind("}") + 1 :]
        if local == "cvParam" or local == "userParam":
            g = child.get
            out.append((g("accession", ""), g("name", ""), g("value", ""),
                        g("unitAccession", ""), g("unitName", "")))  # fmt: skip
        elif local == "referenceableParamGroupRef":
            out.extend(groups.get(child.get("ref", ""), ()))
        elif local in others:
            others[local].append(child)
        else:
            others[local] = [child]
    return out, others


def array_parts(
    bda: etree._Element, groups: dict[str, list[Param]]
) -> tuple[list[Param], etree._Element | None]:
    """A binaryDataArray's ``param_list`` and its first <binary>, in one pass."""
    params, others = split_children(bda, groups)
    binary = others.get("binary")
    return params, binary[0] if binary else None


def chromatogram_parts(
    el: etree._Element,
    groups: dict[str, list[Param]],
    kinds: dict[str, str],
    polarities: dict[str, str],
) -> tuple[str | None, str | None, list[etree._Element], list[etree._Element],
           list[etree._Element]]:  # fmt: skip
    """``lookup(params, kinds)``, ``lookup(params, polarities)`` and the precursor, product
    and binaryDataArrayList children of a chromatogram, in one pass.

    The same as ``split_children`` followed by the two lookups, reading only each
    param's accession and name (a chromatogram's params serve nothing else).
    """
    kind = polarity = None
    precursors: list[etree._Element] = []
    products: list[etree._Element] = []
    lists: list[etree._Element] = []
    for child in el:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        local = tag[tag.rfind("}") + 1 :]
        if local == "cvParam" or local == "userParam":
            if kind is None or polarity is None:
                g = child.get
                acc, name = g("accession", ""), g("name", "")
                if kind is None:
                    kind = kinds.get(acc) or kinds.get(name)
                if polarity is None:
                    polarity = polarities.get(acc) or polarities.get(name)
        elif local == "binaryDataArrayList":
            lists.append(child)
        elif local == "precursor":
            precursors.append(child)
        elif local == "product":
            products.append(child)
        elif local == "referenceableParamGroupRef":
            group = groups.get(child.get("ref", ""), ())
            if kind is None:
                kind = lookup(group, kinds)
            if polarity is None:
                polarity = lookup(group, polarities)
    return kind, polarity, precursors, products, lists


def find_param(
    el: etree._Element, groups: dict[str, list[Param]], key: tuple[str, str]
) -> Param | None:
    """``param_value(param_list(el, groups), key)`` without building the params before the hit."""
    for child in el:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        local = tag[tag.rfind("}") + 1 :]
        if local == "referenceableParamGroupRef":
            hit = param_value(groups.get(child.get("ref", ""), ()), key)
            if hit is not None:
                return hit
        elif local == "cvParam" or local == "userParam":
            g = child.get
            if g("accession", "") == key[0] or g("name", "") == key[1]:
                return (g("accession", ""), g("name", ""), g("value", ""),
                        g("unitAccession", ""), g("unitName", ""))  # fmt: skip
    return None


def lookup(params: Iterable[Param], table: dict[str, str]) -> str | None:
    for acc, name, *_ in params:
        hit = table.get(acc) or table.get(name)
        if hit:
            return hit
    return None


def param_value(params: Iterable[Param], key: tuple[str, str]) -> Param | None:
    return next((p for p in params if p[0] == key[0] or p[1] == key[1]), None)


def descendants(el: etree._Element, *path: str) -> Iterator[etree._Element]:
    """Descendants along a path of local names (namespace-agnostic)."""
    if not path:
        return iter((el,))
    return el.iterfind("/".join("{*}" + p for p in path))


def mz_of_children(el: etree._Element, groups: dict[str, list[Param]], what: str) -> float | None:
    return mz_of(el.iterchildren("{*}" + what), groups)


def mz_of(nodes: Iterable[etree._Element], groups: dict[str, list[Param]]) -> float | None:
    """The first precursor/product node's m/z: its isolation windows', then its selected ions'."""
    for node in nodes:
        windows, ion_lists = [], []
        for child in node:
            tag = child.tag
            if isinstance(tag, str):
                local = tag[tag.rfind("}") + 1 :]
                if local == "isolationWindow":
                    windows.append(child)
                elif local == "selectedIonList":
                    ion_lists.append(child)
        for win in windows:
            hit = find_param(win, groups, _TARGET_MZ)
            if hit and hit[2]:
                return finite_float(hit[2])
        for ions in ion_lists:
            for ion in ions.iterchildren("{*}selectedIon"):
                hit = find_param(ion, groups, _SELECTED_MZ)
                if hit and hit[2]:
                    return finite_float(hit[2])
    return None


def finite_float(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None

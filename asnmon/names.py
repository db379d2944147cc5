"""File names as the OS gives them, stored reversibly and shown safely.

On Linux a file name is bytes; Python decodes the ones that are not UTF-8
with ``surrogateescape`` (``b"M\\xfcller"`` -> ``"M\\udcfcller"``), and such a
string cannot be written to the database or printed. Names may also hold
control characters (an ESC that recolours the terminal, a right-to-left
override that reverses what a person reads).

The database's escape form (``to_db``/``from_db``), used for ``file`` and
``path``:

- a backslash is written ``\\\\``;
- an undecodable byte (``\\x80``-``\\xff``) and an ASCII control character
  (``\\x00``-``\\x1f``, ``\\x7f``) is written ``\\xHH``;
- any other invisible or unprintable character (C1 controls, bidirectional and
  zero-width formatting, line and paragraph separators, lone surrogates) is
  written ``\\uHHHH`` (``\\UHHHHHHHH`` above U+FFFF);
- everything else is itself, so ordinary names (``Probe_Müller.mzML``) are
  unchanged.

``from_db(to_db(name)) == name`` for every name, and ``os.fsencode`` of it
gives the original bytes back. ``printable`` is the one-way form for
screens and messages: the same escapes, but a backslash stays a backslash.
"""

from __future__ import annotations

import re
import unicodedata

_ESCAPED = re.compile(r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})")
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _escape(ch: str) -> str | None:
    """The escape for one character, or None when it is shown as itself."""
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the byte the OS gave
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if code > 0x7F and unicodedata.category(ch) in _UNPRINTABLE:
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return None


def to_db(name: str) -> str:
    """The reversible, printable form of a name (see the module docstring)."""
    if name.isprintable() and "\\" not in name:
        return name  # the common case, at no cost
    out = []
    for ch in name:
        escaped = "\\\\" if ch == "\\" else _escape(ch)
        out.append(ch if escaped is None else escaped)
    return "".join(out)


def from_db(text: str) -> str:
    """The name ``to_db`` was given back, undecodable bytes as surrogates again."""
    if "\\" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        body = m.group(1)
        if body == "\\":
            return "\\"
        code = int(body[1:], 16)
        if body[0] == "x" and code >= 0x80:
            return chr(0xDC00 + code)
        return chr(code)

    return _ESCAPED.sub(one, text)


def printable(text: str) -> str:
    """Text safe for a terminal or a page: no control characters, nothing unprintable."""
    if text.isprintable():
        return text
    return "".join(e if (e := _escape(ch)) is not None else ch for ch in text)

"""The escape form of file names: reversible, printable, ordinary names untouched."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asnmon.names import from_db, printable, to_db
from asnmon.store import Store

UNSAFE = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def shown_safely(text: str) -> bool:
    return not any(unicodedata.category(ch) in UNSAFE for ch in text)


@given(st.text(alphabet=st.characters(codec=None, exclude_categories=())))
def test_every_string_comes_back(name: str) -> None:
    stored = to_db(name)
    assert from_db(stored) == name
    assert shown_safely(stored) and shown_safely(printable(name))
    stored.encode("utf-8")  # the database can hold it


@given(st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\0" not in b))
def test_every_linux_file_name_comes_back_as_its_bytes(raw: bytes) -> None:
    name = os.fsdecode(raw) if os.name != "nt" else raw.decode("utf-8", "surrogateescape")
    assert os.fsencode(from_db(to_db(name))) == raw or os.name == "nt"


@pytest.mark.parametrize(
    ("name", "stored", "shown"),
    [
        ("023_S0012.mzML", "023_S0012.mzML", "023_S0012.mzML"),
        ("Probe_Müller.mzML", "Probe_Müller.mzML", "Probe_Müller.mzML"),
        ("Probe_M\udcfcller.mzML", "Probe_M\\xfcller.mzML", "Probe_M\\xfcller.mzML"),
        ("a\\xfc.mzML", "a\\\\xfc.mzML", "a\\xfc.mzML"),
        ("\x1b[2Jx\n.mzML", "\\x1b[2Jx\\x0a.mzML", "\\x1b[2Jx\\x0a.mzML"),
        ("evil\u202elmzm.exe", "evil\\u202elmzm.exe", "evil\\u202elmzm.exe"),
        ("c1\x85", "c1\\u0085", "c1\\u0085"),
        ("tag\U000e0041", "tag\\U000e0041", "tag\\U000e0041"),
    ],
)
def test_documented_escape_form(name: str, stored: str, shown: str) -> None:
    assert to_db(name) == stored
    assert from_db(stored) == name
    assert printable(name) == shown


def test_monitor_status_reaches_the_dashboard_printable(tmp_path: Path) -> None:
    """The status banner shows the last file and error: escaped like any stored name."""
    with Store(tmp_path / "s.duckdb") as store:
        store.set_status(
            {
                "last_injection": "Probe_M\udcfcller.mzML",
                "last_error": "\x1b[2J cannot read \u202eevil",
                "problems": ["row 3: \x07bell"],
                "queue": 3,
            }
        )
        status = store.status()
    assert status["last_injection"] == "Probe_M\\xfcller.mzML"
    assert status["last_error"] == "\\x1b[2J cannot read \\u202eevil"
    assert status["problems"] == ["row 3: \\x07bell"] and status["queue"] == 3

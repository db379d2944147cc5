"""Damaged files end in a RawFile or a ReadError: never another exception, never a hang.

Seeds are generated documents plus a few small real files when the corpus is
present; damage is truncation, flipped bytes and mangled base64. Derandomized,
so a failure reproduces on every run.
"""

from __future__ import annotations

import contextlib
import gzip
import re
from pathlib import Path

import pytest
from conftest import realdata_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_mzml import PEAK, RT, chrom_xml, document, spectrum_xml, standard_chroms

from asnmon.assay import load_assay
from asnmon.errors import ReadError
from asnmon.mzml import read_file, read_injection
from asnmon.records import RawFile

_REAL = (
    "pymzml_tests/mini.chrom.mzML",
    "pymzml_tests/small-1.0.0.mzml",
    "smartpeak_misc/OpenMSFile_baseline_correction.mzML",
    "pythoms_waters_srm/MultiTest.mzML.gz",
    "pwiz_vendor_srm/RS080806_NL_448.2_001.mzML",
)


_SHA1 = re.compile(rb"<fileChecksum>[0-9a-f]{40}")


def _seeds() -> list[bytes]:
    seeds = [
        document(standard_chroms(), indexed=True).encode(),
        document([chrom_xml("c", RT, PEAK, dtype="<f4", compress=False)], namespace=False).encode(),
        document(spectra=[spectrum_xml("s", 1.0, [100.0, 133.06], [1.0, 2.0])]).encode(),
        gzip.compress(document(standard_chroms()).encode(), mtime=0),
    ]
    root = realdata_dir()
    if root is not None:
        # a stated SHA-1 blanked to zeros ("not computed"): damage then reaches the parser
        # instead of stopping at the checksum (test_mzml covers the checksum itself)
        seeds += [
            _SHA1.sub(lambda m: b"<fileChecksum>" + b"0" * 40, (root / name).read_bytes())
            for name in _REAL
            if (root / name).is_file()
        ]
    return seeds


SEEDS = _seeds()
ASSAY = load_assay()
_BINARY = re.compile(rb"<binary>([^<]+)</binary>")


def _outcome(path: Path, spectra: bool) -> str:
    """'ok' or the ReadError's class name; any other exception fails the test."""
    try:
        result = read_file(path, spectra=spectra)
    except ReadError as exc:
        message = str(exc)
        outcome = type(exc).__name__
    else:
        message, outcome = "ok", "ok"
        assert isinstance(result, RawFile)
        with contextlib.suppress(ReadError):
            read_injection(path, ASSAY)
    assert message, "a ReadError must say what is wrong"
    assert "\n" not in message
    return outcome


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(SEEDS[draw(st.integers(0, len(SEEDS) - 1))])
    how = draw(st.sampled_from(["truncate", "flip", "base64"]))
    if how == "truncate":
        return bytes(data[: draw(st.integers(0, len(data)))])
    if how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= draw(st.integers(1, 255))
        return bytes(data)
    blocks = list(_BINARY.finditer(data))
    if not blocks:
        return bytes(data)
    block = blocks[draw(st.integers(0, len(blocks) - 1))]
    at = draw(st.integers(block.start(1), block.end(1) - 1))
    junk = draw(st.sampled_from([b"!", b"=", b"A", b"==", b"\xff", b"", b"AAAA"]))
    return bytes(data[:at] + junk + data[at + draw(st.integers(0, 3)) :])


@pytest.mark.timeout(60)
@settings(
    max_examples=1500,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=damaged(), spectra=st.booleans())
def test_damaged_files_end_in_a_rawfile_or_a_read_error(
    tmp_path: Path, data: bytes, spectra: bool
) -> None:
    path = tmp_path / "fuzz.mzML"
    path.write_bytes(data)
    _outcome(path, spectra)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_every_truncation_point_of_a_seed_is_typed(tmp_path: Path, seed: int) -> None:
    data = SEEDS[seed]
    path = tmp_path / "cut.mzML"
    for end in range(0, len(data), max(1, len(data) // 150)):
        path.write_bytes(data[:end])
        _outcome(path, spectra=True)

"""Every file of the public corpus ends in its expected outcome: traces, or a typed error.

The table is the contract: a new file in the corpus fails ``test_every_file_has_an_outcome``
until someone states what reading it must give.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from asnmon.assay import Assay, parse_assay
from asnmon.errors import (
    ChecksumError,
    EmptyFileError,
    MzxmlError,
    NoMatchingTransitionError,
    NotMzmlError,
    NotXmlError,
    ReadError,
    UnsupportedDataError,
    WrongPolarityError,
)
from asnmon.mzml import read_file, read_injection
from asnmon.records import RawFile


@dataclass(frozen=True)
class Traces:
    total: int  # chromatograms of any kind
    srm: int = 0
    points: int | None = None  # points of every SRM trace, when all agree
    polarity: str | None = None
    has: tuple[tuple[float, float], ...] = ()  # (Q1, Q3) that must be present


SGI_STD = Traces(24, srm=23, points=3288, polarity="positive", has=((133.1, 116.0),))
NUMPRESS = UnsupportedDataError

EXPECTED: dict[str, Traces | type[ReadError]] = {
    "elmaven_stripped/ms2test2.mzML": Traces(11, srm=11, points=305, polarity="negative"),
    "msmint_bad/broken.mzXML": MzxmlError,
    "msmint_bad/broken_3bytes.mzXML": NotXmlError,
    "openms_bad/FileFilter_39_input_corrupt.mzML": NUMPRESS,  # would abort pynumpress
    "openms_bad/FileFilter_44_input.mzML": NUMPRESS,
    "openms_bad/IndexedmzMLFile_2_broken.mzML": NotXmlError,  # an index after </mzML>
    "openms_bad/IndexedmzMLFile_3_broken.mzML": NotXmlError,
    "openms_bad/MzMLFile_2_minimal.mzML": Traces(0),
    "openms_bad/MzMLFile_3_invalid.mzML": Traces(0),
    "openms_bad/MzXMLFile_1_compressed.mzXML": MzxmlError,
    "openms_bad/MzXMLFile_3_64bit.mzXML": MzxmlError,
    "openms_bad/empty.mzML": EmptyFileError,
    "openms_bad/empty_XML.mzML": Traces(0),
    "openms_bad/empty_spec.mzML": Traces(0),
    "openms_srm/MRMTransitionGroupPicker_1_input.mzML": Traces(30, srm=30),
    "openms_srm/OpenSwathWorkflow_17_output.chrom.mzML": NUMPRESS,
    "openms_srm/Spyogenes.chrom.mzML": Traces(106, srm=86),
    "pwiz_vendor_srm/160109_Mix1_calcurve_070.mzML": Traces(25, srm=24, has=((418.726, 666.343),)),
    "pwiz_vendor_srm/20140312_六mix_column_1 (scheduled) 一个试.mzML": Traces(
        143, srm=143, polarity="positive", has=((1059.0, 244.15),)
    ),
    "pwiz_vendor_srm/MRM Neg C5.mzML": Traces(
        5, srm=4, polarity="negative", has=((269.0, 195.996),)
    ),
    "pwiz_vendor_srm/RS080806_NL_448.2_001.mzML": Traces(1),  # TIC only
    "pwiz_vendor_srm/reserpine-MS2sim-010.mzML": Traces(2, polarity="positive"),
    "pymzml_tests/mini.chrom.mzML": Traces(3, srm=3),
    "pymzml_tests/mini_numpress.chrom.mzML": NUMPRESS,  # name/accession disagree
    # an excerpt of a larger file that kept the original's index and SHA-1 (see below)
    "pymzml_tests/small-1.0.0.mzml": ChecksumError,
    "pythoms_waters_srm/MultiTest.mzML.gz": Traces(2, srm=1, points=4, has=((200.0, 100.0),)),
    "rainbow_waters_raw/white.raw": NotMzmlError,  # a folder
    "sgi_cations_aa_mrm/25uM.mzML": Traces(
        27, srm=26, polarity="negative", has=((133.014, 115.0),)
    ),
    "sgi_cations_aa_mrm/No_1.mzML": SGI_STD,
    "sgi_cations_aa_mrm/No_43.mzML": Traces(22, srm=21, polarity="positive", has=((133.1, 116.0),)),
    "sgi_cations_aa_mrm/Stds_039uM.mzML": SGI_STD,
    "sgi_cations_aa_mrm/Stds_078uM.mzML": SGI_STD,
    "sgi_cations_aa_mrm/Stds_1-56uM.mzML": SGI_STD,
    "sgi_cations_aa_mrm/Stds_12-5uM.mzML": SGI_STD,
    "sgi_cations_aa_mrm/Stds_12-5uM_Iso_1 (3).mzML": Traces(171, srm=170, polarity="positive"),
    "sgi_cations_aa_mrm/Stds_25uM.mzML": SGI_STD,
    "sgi_cations_aa_mrm/Stds_3-125uM.mzML": SGI_STD,
    "sgi_cations_aa_mrm/Stds_50uM.mzML": SGI_STD,
    "sgi_cations_aa_mrm/Stds_6-25uM.mzML": SGI_STD,
    "smartpeak_misc/150928_EcoliOptTracer01_U12C80_U13C20_GlcM9_100-150924_0_OxicWtEcoli"
    "_U12C80_U13C20_GlcM9_Filtrate-1-100.0x.mzML": Traces(280, srm=278, polarity="negative"),
    "smartpeak_misc/OpenMSFile_baseline_correction.mzML": Traces(2),
    "smartpeak_misc/RawDataProcessor_mzML_1.mzML": Traces(
        325, srm=324, polarity="negative", has=((131.0, 114.0), (135.0, 118.0))
    ),
}
_NOT_DATA = (".txt", ".csv", ".md")


def corpus_files(root: Path) -> set[str]:
    """Every readable candidate: files, plus vendor raw folders as one item each."""
    found = set()
    for p in root.rglob("*"):
        if any(part.endswith(".raw") for part in p.relative_to(root).parts[:-1]):
            continue  # inside a raw folder
        if (p.is_file() and p.suffix.lower() not in _NOT_DATA) or p.suffix == ".raw":
            found.add(p.relative_to(root).as_posix())
    return found


def test_every_file_has_an_outcome(realdata: Path) -> None:
    assert corpus_files(realdata) == set(EXPECTED)


def _has(raw: RawFile, q1: float, q3: float) -> bool:
    return any(c.q1 is not None and c.q3 is not None and abs(c.q1 - q1) < 1e-3
               and abs(c.q3 - q3) < 1e-3 for c in raw.chromatograms)  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_file_outcome(realdata: Path, name: str) -> None:
    expected = EXPECTED[name]
    path = realdata / name
    if not isinstance(expected, Traces):
        with pytest.raises(expected) as info:
            read_file(path)
        message = str(info.value)
        assert path.name in message
        assert "\n" not in message
        return
    raw = read_file(path)
    srm = [c for c in raw.chromatograms if c.kind == "srm"]
    assert len(raw.chromatograms) == expected.total
    assert len(srm) == expected.srm
    if expected.points is not None:
        assert {len(c.rt) for c in srm} == {expected.points}
    assert raw.meta.polarity == expected.polarity
    for q1, q3 in expected.has:
        assert _has(raw, q1, q3), f"Q1={q1} Q3={q3} not found"
    for c in raw.chromatograms:
        assert len(c.rt) == len(c.intensity)
        assert np.all(np.diff(c.rt) >= 0), f"{c.id}: time goes backwards"
        assert c.rt.size == 0 or c.rt.max() < 400, f"{c.id}: time not in minutes?"


def test_seconds_become_minutes_and_empty_ids_are_kept(realdata: Path) -> None:
    raw = read_file(realdata / "smartpeak_misc/OpenMSFile_baseline_correction.mzML")
    assert [c.id for c in raw.chromatograms] == ["", ""]
    np.testing.assert_allclose(raw.chromatograms[0].rt, np.arange(5) / 60)
    assert raw.chromatograms[0].intensity.min() < 0 or raw.chromatograms[1].intensity.min() < 0


def test_openms_seconds_become_minutes(realdata: Path) -> None:
    raw = read_file(realdata / "openms_srm/Spyogenes.chrom.mzML")
    assert max(c.rt.max() for c in raw.chromatograms) < 200  # 7,517 s in the file: minutes now


def test_mzml_1_0_and_metadata(realdata: Path, tmp_path: Path) -> None:
    # Its stated checksum is wrong (test_corpus_checksums); blanked to zeros ("not
    # computed", as OpenMS writes) in a copy, the real mzML 1.0 content still reads.
    copy = tmp_path / "small-1.0.0.mzml"
    shutil.copyfile(realdata / "pymzml_tests/small-1.0.0.mzml", copy)
    data = copy.read_bytes()
    copy.write_bytes(data.replace(b"d288ffa4f31e15e373a82c1c00f0fbf33d65ae31", b"0" * 40))
    raw = read_file(copy)
    assert raw.meta.mzml_version == "1.0.0"
    assert raw.meta.instrument == "LCQ Deca XP Plus"
    assert raw.chromatograms[0].kind == "tic"
    assert len(raw.chromatograms[0].rt) == 2387


def test_sgi_metadata(realdata: Path) -> None:
    meta = read_file(realdata / "sgi_cations_aa_mrm/No_43.mzML").meta
    assert meta.instrument == "QTRAP 5500"
    assert meta.started_at == "2017-10-30T18:14:10Z"
    assert meta.run_id == "No_43_x0020__x0028_2_x0029_"  # differs from the file name


def sgi_assay(q1: float, q3: float, tol: float = 0.5) -> Assay:
    return parse_assay({
        "assay": {"name": "sgi asn", "polarity": "positive", "mz_tolerance": tol},
        "transitions": [
            {"id": "asn", "q1": q1, "q3": q3, "role": "analyte_quant"},
            {"id": "is", "q1": 134.1, "q3": 116.0, "role": "is_quant"},  # SGI has no IS
            {"id": "dup", "q1": 132.1, "q3": 86.15, "role": "other"},  # repeated in the file
        ],
    })  # fmt: skip


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if EXPECTED[n] == SGI_STD))
def test_sgi_standards_find_asparagine_and_say_which_duplicate(realdata: Path, name: str) -> None:
    inj = read_injection(realdata / name, sgi_assay(133.1, 116.0))
    asn = inj.traces["asn"]
    assert asn.id.startswith("SRM SIC Q1=133.1 Q3=116 ")
    assert asn.id.endswith("transition=14")
    assert len(asn.rt) == 3288
    (note,) = inj.notes
    assert "2 traces match dup" in note
    assert inj.traces["dup"].index < int(note.rsplit("(#", 1)[1].split(")")[0])


@pytest.mark.parametrize("tol", [0.5, 1.0, 2.0])
def test_negative_mode_malate_never_passes_for_asparagine(realdata: Path, tol: float) -> None:
    with pytest.raises((WrongPolarityError, NoMatchingTransitionError)) as info:
        read_injection(realdata / "sgi_cations_aa_mrm/25uM.mzML", sgi_assay(133.1, 116.0, tol))
    assert isinstance(info.value, WrongPolarityError)  # the file is all negative mode
    assert "negative mode" in str(info.value)


def test_missing_transition_message_summarises_the_file(realdata: Path, assay: Assay) -> None:
    with pytest.raises(NoMatchingTransitionError) as info:
        read_injection(realdata / "sgi_cations_aa_mrm/Stds_50uM.mzML", assay)
    message = str(info.value)
    assert "asn_quant (Q1=133.1 Q3=87.1)" in message
    assert "is_quant (Q1=139.1 Q3=92.1)" in message
    assert "23 SRM traces, Q1 76.0-241.0 (positive)" in message


def test_numpress_corrupt_payload_does_not_kill_the_process(realdata: Path) -> None:
    for _ in range(3):  # reaching the second round proves no native decoder ran
        with pytest.raises(UnsupportedDataError, match="convert without --numpress"):
            read_file(realdata / "openms_bad/FileFilter_39_input_corrupt.mzML", spectra=True)


# ---------------------------------------------------------------- <fileChecksum>

_STATED = re.compile(rb"<fileChecksum>([^<]*)</fileChecksum>\s*</indexedmzML>\s*\Z")
# pymzML's test file is cut from an 18 MB run: its index still points at byte 18,278,233
# of a 93,812-byte file, and its SHA-1 is the original's. A finding, not a reader bug.
CHECKSUM_WRONG = {"pymzml_tests/small-1.0.0.mzml"}


def _checksum(path: Path) -> tuple[str, str] | None:
    """(stated, SHA-1 from the file's start through the <fileChecksum> start tag), by hand."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    m = _STATED.search(data)
    if m is None or not re.fullmatch(rb"[0-9a-f]{40}", m.group(1)):
        return None  # none, or OpenMS's "0" (not computed)
    through_start_tag = data[: m.start(1)]
    return m.group(1).decode(), hashlib.sha1(through_start_tag).hexdigest()


def test_corpus_checksums(realdata: Path) -> None:
    """Every stated SHA-1 is checked: the right ones read, the wrong one is refused."""
    right, wrong = [], []
    for name in sorted(EXPECTED):
        path = realdata / name
        found = _checksum(path) if path.is_file() else None
        if found is None:
            continue
        stated, computed = found
        if stated == computed:
            right.append(name)
            if isinstance(EXPECTED[name], Traces):
                assert read_file(path).chromatograms  # verified, and read
        else:
            wrong.append(name)
            with pytest.raises(ChecksumError) as info:
                read_file(path)
            message = str(info.value)
            assert f"expected {stated}, computed {computed}" in message
            assert "changed after it was written" in message
    assert set(wrong) == CHECKSUM_WRONG
    assert len(right) == 15  # 12 SGI, 2 SmartPeak, the gzipped Waters file


def test_the_wrong_checksum_is_an_excerpt(realdata: Path) -> None:
    path = realdata / "pymzml_tests/small-1.0.0.mzml"
    data = path.read_bytes()
    offsets = [int(x) for x in re.findall(rb"<offset [^>]*>(\d+)</offset>", data)]
    assert max(offsets) > 100 * len(data)  # the index describes a far larger file

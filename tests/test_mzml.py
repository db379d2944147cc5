"""The read stage on small mzML documents built here, one property per test.

The builders below write mzML by hand (base64 + zlib of numpy arrays) so each
test can state exactly the oddity it is about; ``test_fuzz_reader`` reuses them.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import re
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from asnmon.assay import Assay, parse_assay
from asnmon.errors import (
    ChecksumError,
    CorruptDataError,
    EmptyFileError,
    MzxmlError,
    NoMatchingTransitionError,
    NotMzmlError,
    NotXmlError,
    ReadError,
    TruncatedFileError,
    UnsafeXmlError,
    UnsupportedDataError,
    WrongPolarityError,
)
from asnmon.mzml import WHOLE_TREE_BYTES, file_sha256, read_file, read_injection
from asnmon.records import frozen_array

# ---------------------------------------------------------------- builders

MINUTE = ("UO:0000031", "minute")
SECOND = ("UO:0000010", "second")
_DTYPE_TERM = {
    "<f8": ("MS:1000523", "64-bit float"),
    "<f4": ("MS:1000521", "32-bit float"),
    "<i8": ("MS:1000522", "64-bit integer"),
}
_POL = {"positive": ("MS:1000130", "positive scan"), "negative": ("MS:1000129", "negative scan")}


def cv(acc: str, name: str, value: str = "", unit: tuple[str, str] | None = None) -> str:
    u = f' unitCvRef="UO" unitAccession="{unit[0]}" unitName="{unit[1]}"' if unit else ""
    return f'<cvParam cvRef="MS" accession="{acc}" name="{name}" value="{value}"{u}/>'


def encode(values: npt.ArrayLike, dtype: str = "<f8", compress: bool = True) -> str:
    raw = np.asarray(values).astype(dtype).tobytes()
    return base64.b64encode(zlib.compress(raw) if compress else raw).decode()


def array_xml(
    kind: tuple[str, str],
    values: npt.ArrayLike,
    *,
    dtype: str = "<f8",
    compress: bool = True,
    unit: tuple[str, str] | None = None,
    compression_term: tuple[str, str] | None = None,
    payload: str | None = None,
) -> str:
    comp = compression_term or (
        ("MS:1000574", "zlib compression") if compress else ("MS:1000576", "no compression")
    )
    data = payload if payload is not None else encode(values, dtype, compress)
    return (
        f"<binaryDataArray>{cv(*_DTYPE_TERM[dtype])}{cv(*comp)}{cv(*kind, unit=unit)}"
        f"<binary>{data}</binary></binaryDataArray>"
    )


def chrom_xml(
    cid: str,
    rt: npt.ArrayLike,
    intensity: npt.ArrayLike,
    *,
    q1: float | None = 133.1,
    q3: float | None = 87.1,
    polarity: str | None = "positive",
    time_unit: tuple[str, str] | None = MINUTE,
    dtype: str = "<f8",
    compress: bool = True,
    length: int | None = None,
    arrays: str | None = None,
) -> str:
    n = len(np.asarray(rt)) if length is None else length
    params = cv("MS:1001473", "selected reaction monitoring chromatogram")
    if polarity:
        params += cv(*_POL[polarity])
    iso = ""
    if q1 is not None:
        iso += f"<precursor><isolationWindow>{cv('MS:1000827', 'isolation window target m/z', str(q1))}</isolationWindow></precursor>"  # noqa: E501
    if q3 is not None:
        iso += f"<product><isolationWindow>{cv('MS:1000827', 'isolation window target m/z', str(q3))}</isolationWindow></product>"  # noqa: E501
    if arrays is None:
        arrays = array_xml(
            ("MS:1000595", "time array"), rt, unit=time_unit, compress=compress
        ) + array_xml(("MS:1000515", "intensity array"), intensity, dtype=dtype, compress=compress)
    return (
        f'<chromatogram index="0" id="{cid}" defaultArrayLength="{n}">{params}{iso}'
        f'<binaryDataArrayList count="2">{arrays}</binaryDataArrayList></chromatogram>'
    )


def spectrum_xml(
    sid: str,
    rt_min: float,
    mz: Sequence[float],
    intensity: Sequence[float],
    *,
    ms_level: int = 1,
    polarity: str = "positive",
    precursor: float | None = None,
) -> str:
    prec = ""
    if precursor is not None:
        target = cv("MS:1000827", "isolation window target m/z", str(precursor))
        prec = f"<precursorList count='1'><precursor><isolationWindow>{target}</isolationWindow></precursor></precursorList>"  # noqa: E501
    scan = cv("MS:1000016", "scan start time", str(rt_min), unit=MINUTE)
    arrays = array_xml(("MS:1000514", "m/z array"), mz) + array_xml(
        ("MS:1000515", "intensity array"), intensity
    )
    return (
        f'<spectrum index="0" id="{sid}" defaultArrayLength="{len(mz)}">'
        f"{cv('MS:1000511', 'ms level', str(ms_level))}{cv(*_POL[polarity])}"
        f"<scanList count='1'><scan>{scan}</scan></scanList>{prec}"
        f"<binaryDataArrayList count='2'>{arrays}</binaryDataArrayList></spectrum>"
    )


def document(
    chroms: Sequence[str] = (),
    spectra: Sequence[str] = (),
    *,
    indexed: bool = False,
    namespace: bool = True,
    run_id: str = "run_7",
) -> str:
    ns = ' xmlns="http://psi.hupo.org/ms/mzml"' if namespace else ""
    spec = (
        f"<spectrumList count='{len(spectra)}'>{''.join(spectra)}</spectrumList>" if spectra else ""
    )
    chrom = (
        f"<chromatogramList count='{len(chroms)}'>{''.join(chroms)}</chromatogramList>"
        if chroms
        else ""
    )
    body = (
        f'<mzML{ns} id="doc" version="1.1.0"><cvList count="1"><cv id="MS" fullName="PSI-MS" '
        f'URI="x"/></cvList><instrumentConfigurationList count="1"><instrumentConfiguration '
        f'id="IC1">{cv("MS:1000931", "QTRAP 5500")}</instrumentConfiguration>'
        f'</instrumentConfigurationList><run id="{run_id}" startTimeStamp="2024-03-01T09:30:00Z"'
        f' defaultInstrumentConfigurationRef="IC1">{spec}{chrom}</run></mzML>'
    )
    if indexed:
        body = (
            f"<indexedmzML{ns}>{body}<indexList count='0'/><indexListOffset>0</indexListOffset>"
            "</indexedmzML>"
        )
    return f'<?xml version="1.0" encoding="utf-8"?>\n{body}\n'


RT = np.linspace(0.0, 6.0, 61)
PEAK = 100.0 + 5000.0 * np.exp(-(((RT - 3.2) / 0.1) ** 2))


def standard_chroms(polarity: str = "positive") -> list[str]:
    """The shipped assay's four transitions, msconvert-style ids."""
    pairs = [(133.1, 87.1), (133.1, 74.0), (139.1, 92.1), (139.1, 77.0)]
    return [
        chrom_xml(
            f"SRM SIC Q1={a} Q3={b} sample=1 period=1 experiment=1 transition={i}",
            RT,
            PEAK * (i + 1),
            q1=a,
            q3=b,
            polarity=polarity,
        )
        for i, (a, b) in enumerate(pairs)
    ]


def write(tmp_path: Path, text: str | bytes, name: str = "inj.mzML", gz: bool = False) -> Path:
    data = text.encode() if isinstance(text, str) else text
    path = tmp_path / name
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def make_assay(**assay: Any) -> Assay:
    transitions = assay.pop("transitions", None) or [
        {"id": "asn_quant", "q1": 133.1, "q3": 87.1, "role": "analyte_quant"},
        {"id": "is_quant", "q1": 139.1, "q3": 92.1, "role": "is_quant"},
    ]
    return parse_assay({"assay": {"name": "test", **assay}, "transitions": transitions})


# ---------------------------------------------------------------- reading


def test_reads_every_chromatogram_and_the_run_metadata(tmp_path: Path) -> None:
    raw = read_file(write(tmp_path, document(standard_chroms())))
    assert len(raw.chromatograms) == 4
    first = raw.chromatograms[0]
    assert (first.q1, first.q3, first.polarity, first.kind) == (133.1, 87.1, "positive", "srm")
    np.testing.assert_allclose(first.rt, RT)
    np.testing.assert_allclose(first.intensity, PEAK)
    assert raw.meta.run_id == "run_7"
    assert raw.meta.started_at == "2024-03-01T09:30:00Z"
    assert raw.meta.instrument == "QTRAP 5500"
    assert raw.meta.mzml_version == "1.1.0"
    assert raw.meta.polarity == "positive"


@pytest.mark.parametrize(
    ("unit", "factor"),
    [
        (SECOND, 1 / 60),
        (("", "second"), 1 / 60),
        (MINUTE, 1.0),
        (("", "minute"), 1.0),
        (("UO:0000028", "millisecond"), 1 / 60000),
        (("UO:0000032", "hour"), 60.0),
        (("MS:1000039", "second"), 1 / 60),  # the PSI-MS term of mzML 1.0 writers
        (("MS:1000038", ""), 1.0),
        (("", "Minute"), 1.0),
        (None, 1.0),
    ],
)
def test_time_is_normalized_to_minutes(
    tmp_path: Path, unit: tuple[str, str], factor: float
) -> None:
    stated = np.array([0.0, 30.0, 60.0, 90.0])
    doc = document([chrom_xml("c", stated, [1, 2, 3, 4], time_unit=unit)])
    np.testing.assert_allclose(read_file(write(tmp_path, doc)).chromatograms[0].rt, stated * factor)


@pytest.mark.parametrize("dtype", ["<f4", "<f8", "<i8"])
@pytest.mark.parametrize("compress", [True, False])
def test_number_types_and_compression(tmp_path: Path, dtype: str, compress: bool) -> None:
    values = np.array([0, 1, 250, 1e6, 3])
    doc = document([chrom_xml("c", RT[:5], values, dtype=dtype, compress=compress)])
    trace = read_file(write(tmp_path, doc)).chromatograms[0]
    np.testing.assert_array_equal(trace.intensity, values.astype(dtype).astype(np.float64))


@pytest.mark.parametrize("name", ["inj.mzML.gz", "inj.mzML"])
def test_gzip_is_detected_by_magic_bytes_not_name(tmp_path: Path, name: str) -> None:
    plain = read_file(write(tmp_path, document(standard_chroms()), "plain.mzML"))
    zipped = read_file(write(tmp_path, document(standard_chroms()), name, gz=True))
    assert [c.id for c in zipped.chromatograms] == [c.id for c in plain.chromatograms]
    np.testing.assert_array_equal(
        zipped.chromatograms[2].intensity, plain.chromatograms[2].intensity
    )


@pytest.mark.parametrize(("indexed", "namespace"), [(True, True), (False, False), (True, False)])
def test_indexed_and_namespace_less_read_the_same(
    tmp_path: Path, indexed: bool, namespace: bool
) -> None:
    ref = read_file(write(tmp_path, document(standard_chroms()), "ref.mzML"))
    other = read_file(write(tmp_path, document(standard_chroms(), indexed=indexed,
                                               namespace=namespace)))  # fmt: skip
    assert [(c.id, c.q1, c.q3) for c in other.chromatograms] == [
        (c.id, c.q1, c.q3) for c in ref.chromatograms
    ]


def test_duplicate_ids_are_all_kept(tmp_path: Path) -> None:
    doc = document([chrom_xml("same", RT, PEAK), chrom_xml("same", RT, PEAK * 2)])
    raw = read_file(write(tmp_path, doc))
    assert [(c.id, c.index) for c in raw.chromatograms] == [("same", 0), ("same", 1)]
    assert raw.chromatograms[1].intensity.max() == pytest.approx(2 * PEAK.max())


def test_q1_q3_and_polarity_fall_back_to_the_msconvert_id(tmp_path: Path) -> None:
    doc = document([chrom_xml("- SRM SIC Q1=133.014 Q3=115 sample=4 period=1", RT, PEAK,
                              q1=None, q3=None, polarity=None)])  # fmt: skip
    trace = read_file(write(tmp_path, doc)).chromatograms[0]
    assert (trace.q1, trace.q3, trace.polarity, trace.kind) == (133.014, 115.0, "negative", "srm")


def test_arrays_are_read_only(tmp_path: Path) -> None:
    trace = read_file(write(tmp_path, document(standard_chroms()))).chromatograms[0]
    with pytest.raises(ValueError, match="read-only"):
        trace.intensity[0] = 0.0
    # a decoded float64 array is kept without a copy: it must stay unwritable for good
    with pytest.raises(ValueError, match="WRITEABLE"):
        trace.intensity.setflags(write=True)
    source = np.arange(3.0)
    copied = frozen_array(source)
    source[0] = 9.0  # an array someone else can write is copied, as before
    assert copied[0] == 0.0 and not copied.flags.writeable


# ---------------------------------------------------------------- refusing


def test_array_length_must_match_default_array_length(tmp_path: Path) -> None:
    doc = document([chrom_xml("short one", RT, PEAK, length=len(RT) + 1)])
    with pytest.raises(CorruptDataError, match=r"short one.*61 values where the file states 62"):
        read_file(write(tmp_path, doc))


def test_time_and_intensity_lengths_must_agree(tmp_path: Path) -> None:
    arrays = array_xml(("MS:1000595", "time array"), RT, unit=MINUTE) + array_xml(
        ("MS:1000515", "intensity array"), PEAK[:-1]
    )
    doc = document([chrom_xml("ragged", RT, PEAK, length=-1, arrays=arrays)])
    doc = doc.replace('defaultArrayLength="-1"', "")
    with pytest.raises(CorruptDataError, match=r"ragged.*61 times but 60 intensities"):
        read_file(write(tmp_path, doc))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_is_corrupt(tmp_path: Path, bad: float) -> None:
    values = PEAK.copy()
    values[10] = bad
    with pytest.raises(CorruptDataError, match=r"'nan trace'.*NaN or infinite"):
        read_file(write(tmp_path, document([chrom_xml("nan trace", RT, values)])))


def test_mangled_base64_is_corrupt(tmp_path: Path) -> None:
    arrays = array_xml(("MS:1000595", "time array"), RT, unit=MINUTE) + array_xml(
        ("MS:1000515", "intensity array"), PEAK, payload="eJzzSM3JyVcozy/KSQEAGKsEPQ"
    )
    with pytest.raises(CorruptDataError, match="cannot be decoded"):
        read_file(write(tmp_path, document([chrom_xml("c", RT, PEAK, arrays=arrays)])))


@pytest.mark.parametrize(
    "term",
    [
        ("MS:1002312", "MS-Numpress linear prediction compression"),
        ("MS:1002746", "zlib compression"),  # accession says numpress, name does not
        ("MS:1000574", "MS-Numpress short logged float compression"),
    ],  # and the reverse
)
def test_numpress_is_refused_before_decoding(tmp_path: Path, term: tuple[str, str]) -> None:
    # the payload is not valid numpress: a decoder would crash or return garbage
    arrays = array_xml(("MS:1000595", "time array"), RT, unit=MINUTE) + array_xml(
        ("MS:1000515", "intensity array"), PEAK, compression_term=term, payload="AAAA////"
    )
    doc = document([chrom_xml("np trace", RT, PEAK, arrays=arrays)])
    with pytest.raises(UnsupportedDataError, match=r"'np trace'.*MS-Numpress.*without --numpress"):
        read_file(write(tmp_path, doc))


def test_doctype_and_entities_are_refused(tmp_path: Path) -> None:
    bomb = '<!DOCTYPE mzML [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>\n'
    doc = document(standard_chroms()).replace("\n", "\n" + bomb, 1)
    with pytest.raises(UnsafeXmlError, match="DOCTYPE"):
        read_file(write(tmp_path, doc))


@pytest.mark.parametrize("cut", [1, 8, 300, 2000])
def test_a_file_cut_before_its_closing_tag_is_truncated(tmp_path: Path, cut: int) -> None:
    doc = document(standard_chroms(), indexed=True).rstrip()
    with pytest.raises(TruncatedFileError, match="closing </indexedmzML>"):
        read_file(write(tmp_path, doc[:-cut]))


@pytest.mark.parametrize(
    ("content", "error", "words"),
    [
        (b"", EmptyFileError, "empty"),
        (b"  \n\t", EmptyFileError, "empty"),
        (b"PK\x03\x04 zip", NotXmlError, "not XML"),
        (b"<?xml version='1.0'?><traML></traML>", NotMzmlError, "<traML>"),
        (b"<?xml version='1.0'?><mzXML><msRun/></mzXML>", MzxmlError, "msconvert --mzML"),
        (b"<mzML><run><chromatogramList></run></mzML>", NotXmlError, "well-formed"),
    ],
)
def test_unreadable_files_raise_typed_errors(
    tmp_path: Path, content: bytes, error: type[ReadError], words: str
) -> None:
    with pytest.raises(error, match=words):
        read_file(write(tmp_path, content))


def test_a_broken_array_before_a_syntax_error_is_what_is_reported(tmp_path: Path) -> None:
    # a small document is parsed whole; one that does not parse is streamed again, so the
    # first fault in document order is still the one reported
    values = PEAK.copy()
    values[10] = np.nan
    doc = document([chrom_xml("nan trace", RT, values), "<chromatogram><oops></chromatogram>"])
    with pytest.raises(CorruptDataError, match=r"'nan trace'.*NaN or infinite"):
        read_file(write(tmp_path, doc))
    doc = document([chrom_xml("fine", RT, PEAK), "<chromatogram><oops></chromatogram>"])
    with pytest.raises(NotXmlError, match=r"line 2: Opening and ending tag mismatch"):
        read_file(write(tmp_path, doc))


def test_a_document_past_the_whole_tree_size_streams_to_the_same_traces(tmp_path: Path) -> None:
    small = document(standard_chroms())
    pad = [chrom_xml(f"pad {i}", RT, PEAK) for i in range(WHOLE_TREE_BYTES // 1500)]
    big = document(standard_chroms() + pad)
    assert len(small) < WHOLE_TREE_BYTES < len(big)
    a = read_file(write(tmp_path, small, "small.mzML"))
    b = read_file(write(tmp_path, big, "big.mzML"))
    assert len(b.chromatograms) == 4 + len(pad)
    assert a.meta == b.meta
    for x, y in zip(a.chromatograms, b.chromatograms, strict=False):
        assert (x.id, x.index, x.q1, x.q3, x.polarity, x.kind) == (
            y.id, y.index, y.q1, y.q3, y.polarity, y.kind
        )  # fmt: skip
        assert x.rt.tobytes() == y.rt.tobytes()
        assert x.intensity.tobytes() == y.intensity.tobytes()


def test_elements_nested_where_mzml_never_has_them_read_as_when_streamed(tmp_path: Path) -> None:
    # a small document's elements are taken in document order, not walked, unless one that
    # is read once complete lies inside another: then what streaming would read is read
    negative = cv("MS:1000129", "negative scan")
    group = f'<referenceableParamGroup id="g">{negative}</referenceableParamGroup>'
    chroms = standard_chroms()
    chroms[1] = chroms[1].replace("<precursor>", group + "<precursor>", 1)
    pad = [chrom_xml(f"pad {i}", RT, PEAK) for i in range(WHOLE_TREE_BYTES // 1500)]
    a = read_file(write(tmp_path, document(chroms), "small.mzML"))
    b = read_file(write(tmp_path, document(chroms + pad), "big.mzML"))
    assert len(b.chromatograms) == 4 + len(pad)
    assert [(x.id, x.polarity, x.kind) for x in a.chromatograms] == [
        (y.id, y.polarity, y.kind) for y in b.chromatograms[:4]
    ]


def test_a_raw_folder_is_not_mzml(tmp_path: Path) -> None:
    (tmp_path / "sample.raw").mkdir()
    with pytest.raises(NotMzmlError, match=r"vendor raw folder.*converter"):
        read_file(tmp_path / "sample.raw")


def test_a_missing_file_is_a_read_error(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="does not exist"):
        read_file(tmp_path / "gone.mzML")


# ---------------------------------------------------------------- matching the assay


def test_injection_matches_the_assay_and_hashes_the_bytes(tmp_path: Path, assay: Assay) -> None:
    path = write(tmp_path, document(standard_chroms()), gz=True)
    inj = read_injection(path, assay)
    assert set(inj.traces) == {"asn_quant", "asn_qual", "is_quant", "is_qual"}
    assert (inj.traces["is_quant"].q1, inj.traces["is_quant"].q3) == (139.1, 92.1)
    assert inj.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == file_sha256(path)
    assert inj.notes == ()
    assert inj.meta.polarity == "positive"


def test_missing_qualifier_is_absent_and_noted(tmp_path: Path, assay: Assay) -> None:
    chroms = [c for c in standard_chroms() if "Q3=74.0" not in c]
    inj = read_injection(write(tmp_path, document(chroms)), assay)
    assert "asn_qual" not in inj.traces
    assert any("asn_qual" in n and "not in the file" in n for n in inj.notes)


def test_duplicate_q1_q3_takes_the_closest_then_the_first_and_says_so(tmp_path: Path) -> None:
    chroms = [
        chrom_xml("far", RT, PEAK, q1=133.4, q3=87.1),
        chrom_xml("first exact", RT, PEAK, q1=133.1, q3=87.1),
        chrom_xml("second exact", RT, PEAK * 3, q1=133.1, q3=87.1),
        chrom_xml("is", RT, PEAK, q1=139.1, q3=92.1),
    ]
    inj = read_injection(write(tmp_path, document(chroms)), make_assay())
    assert inj.traces["asn_quant"].id == "first exact"
    (note,) = inj.notes
    assert "3 traces match asn_quant" in note
    assert "took 'first exact' (#1)" in note
    assert "'second exact' (#2)" in note
    assert "'far' (#0)" in note


def test_other_polarity_never_matches(tmp_path: Path) -> None:
    # malate-like negative trace first: a naive Q1 lookup would take it
    chroms = [chrom_xml("neg", RT, PEAK * 9, polarity="negative"), *standard_chroms()]
    inj = read_injection(write(tmp_path, document(chroms)), make_assay())
    assert inj.traces["asn_quant"].id.startswith("SRM SIC Q1=133.1 Q3=87.1")
    assert inj.notes == ()


def test_only_the_other_polarity_raises_wrong_polarity(tmp_path: Path) -> None:
    path = write(tmp_path, document(standard_chroms("negative")))
    with pytest.raises(WrongPolarityError, match="negative mode but the assay is positive"):
        read_injection(path, make_assay())


def test_missing_is_names_what_was_looked_for_and_what_is_there(tmp_path: Path) -> None:
    chroms = [chrom_xml(f"t{i}", RT, PEAK, q1=q1, q3=60.0) for i, q1 in
              enumerate([71.0, 133.1, 204.1])]  # fmt: skip
    chroms.append(chrom_xml("asn", RT, PEAK, q1=133.1, q3=87.1))
    with pytest.raises(NoMatchingTransitionError) as info:
        read_injection(write(tmp_path, document(chroms)), make_assay())
    msg = str(info.value)
    assert "is_quant (Q1=139.1 Q3=92.1)" in msg
    assert "asn_quant" not in msg
    assert "4 SRM traces, Q1 71.0-204.1 (positive)" in msg


# ---------------------------------------------------------------- full scan


def full_scan_assay() -> Assay:
    return make_assay(
        acquisition="full_scan",
        ppm=10.0,
        transitions=[
            {"id": "asn_ms1", "q1": 133.0608, "role": "analyte_quant"},
            {"id": "is_ms2", "q1": 139.07, "q3": 92.05, "role": "is_quant"},
        ],
    )


def test_full_scan_xic_from_ms1_and_ms2_spectra(tmp_path: Path) -> None:
    spectra = []
    for i, rt in enumerate([1.0, 1.1, 1.2]):
        # 133.0608 +/- 10 ppm is +/- 0.0013: 133.0615 is in, 133.0640 is out
        spectra.append(spectrum_xml(f"ms1 {i}", rt, [100.0, 133.0615, 133.0640],
                                    [7.0, 10.0 * (i + 1), 1000.0]))  # fmt: skip
        spectra.append(spectrum_xml(f"ms2 {i}", rt + 0.05, [92.0505, 92.10], [5.0 + i, 999.0],
                                    ms_level=2, precursor=139.2))  # fmt: skip
        spectra.append(spectrum_xml(f"ms2 other {i}", rt + 0.06, [92.0505], [1e6],
                                    ms_level=2, precursor=150.0))  # fmt: skip
    path = write(tmp_path, document(spectra=spectra))
    inj = read_injection(path, full_scan_assay())
    ms1, ms2 = inj.traces["asn_ms1"], inj.traces["is_ms2"]
    assert (ms1.kind, ms2.kind) == ("xic_ms1", "xic_ms2")
    np.testing.assert_allclose(ms1.rt, [1.0, 1.1, 1.2])
    np.testing.assert_allclose(ms1.intensity, [10.0, 20.0, 30.0])
    np.testing.assert_allclose(ms2.rt, [1.05, 1.15, 1.25])
    np.testing.assert_allclose(ms2.intensity, [5.0, 6.0, 7.0])
    assert read_file(path, spectra=True).n_spectra == 9


def test_full_scan_in_the_other_polarity_is_refused(tmp_path: Path) -> None:
    spectra = [spectrum_xml("s", 1.0, [133.0608], [1.0], polarity="negative")]
    with pytest.raises(WrongPolarityError):
        read_injection(write(tmp_path, document(spectra=spectra)), full_scan_assay())


# ---------------------------------------------------------------- time units


@pytest.mark.parametrize(
    ("unit", "words"),
    [
        (("", "fortnight"), "'fortnight', a time unit asnmon does not know"),
        (("UO:0000999", "fortnight"), "UO:0000999 'fortnight', a time unit"),
        (("UO:0000999", ""), "UO:0000999, a time unit"),
        (("UO:0000010", "fortnight"), "'fortnight', a time unit"),
        (("UO:0000010", "minute"), "UO:0000010 \\(second\\) but names it 'minute'"),
    ],
)
def test_an_unknown_or_contradictory_time_unit_is_refused(
    tmp_path: Path, unit: tuple[str, str], words: str
) -> None:
    doc = document([chrom_xml("odd time", RT, PEAK, time_unit=unit)])
    with pytest.raises(UnsupportedDataError, match=words) as info:
        read_file(write(tmp_path, doc))
    assert "'odd time'" in str(info.value)


def test_an_unknown_scan_time_unit_is_refused(tmp_path: Path) -> None:
    doc = document(spectra=[spectrum_xml("s", 1.0, [133.06], [1.0])]).replace(
        'unitAccession="UO:0000031" unitName="minute"', 'unitAccession="" unitName="fortnight"'
    )
    with pytest.raises(UnsupportedDataError, match="scan start time is in 'fortnight'"):
        read_file(write(tmp_path, doc), spectra=True)


# ---------------------------------------------------------------- trailing whitespace


@pytest.mark.parametrize("padding", [" " * 257, "\n" * 5000, " \t\r\n" * 300_000])
@pytest.mark.parametrize("indexed", [False, True])
def test_trailing_whitespace_after_the_closing_tag_is_fine(
    tmp_path: Path, padding: str, indexed: bool
) -> None:
    doc = document(standard_chroms(), indexed=indexed) + padding
    assert len(read_file(write(tmp_path, doc)).chromatograms) == 4


def test_whitespace_alone_after_a_cut_is_still_truncated(tmp_path: Path) -> None:
    doc = document(standard_chroms(), indexed=True).rstrip()[:-40] + " " * 10_000
    with pytest.raises(TruncatedFileError, match="closing </indexedmzML>"):
        read_file(write(tmp_path, doc))


# ---------------------------------------------------------------- <fileChecksum>


@functools.cache
def psims_uncompressed(position: int = 6) -> bytes:
    """An indexed mzML written by psims (the simulator's writer, computing its own
    SHA-1) from the simulator's traces, with arrays uncompressed: the case where a
    changed character decodes into a plausible, wrong number."""
    import io

    from psims.mzml.writer import IndexedMzMLWriter

    from asnmon.simulate import TRACES, SimConfig, plan_run, render_traces
    from asnmon.simulate import time_axis as sim_time
    from asnmon.simulate.writer import _vocabularies

    config = SimConfig()
    inj = plan_run(config)[position - 1]
    t, ys = sim_time(config), render_traces(inj, config)
    buf = io.BytesIO()
    w = IndexedMzMLWriter(buf, close=False, vocabulary_resolver=_vocabularies())
    win = {"lower": 0.5, "upper": 0.5}
    software = {"id": "sim", "version": "1", "params": ["custom unreleased software tool"]}
    with w:
        parts = w.ComponentList([w.Source(1, ["electrospray ionization"]),
                                 w.Analyzer(2, ["quadrupole"]),
                                 w.Detector(3, ["electron multiplier"])])  # fmt: skip
        w.controlled_vocabularies()
        w.file_description(["selected reaction monitoring chromatogram"])
        w.software_list([software])
        method = w.ProcessingMethod(
            order=0, software_reference="sim", params=["Conversion to mzML"]
        )
        config_ = w.InstrumentConfiguration(
            id="IC1", params=[config.instrument], component_list=parts
        )
        w.instrument_configuration_list([config_])
        w.data_processing_list([w.DataProcessing([method], id="dp")])
        with w.run(id="plain", instrument_configuration="IC1"), w.chromatogram_list(count=8):
            for i, (tr, y) in enumerate(zip(TRACES, ys, strict=True)):
                chrom = w.chromatogram(
                    t, y, id=f"SRM SIC Q1={tr.q1:g} Q3={tr.q3:g} transition={i}",
                    chromatogram_type="selected reaction monitoring chromatogram",
                    precursor_information={"mz": None, "activation": [
                        "collision-induced dissociation", {"collision energy": tr.ce}],
                        "isolation_window_args": {"target": tr.q1, **win}},
                    params=["positive scan"], encoding=64, compression="none",
                )  # fmt: skip
                chrom.product = w.Product(isolation_window={"target": tr.q3, **win})
                chrom.write(w.writer)
    return buf.getvalue()


def change_one_character_in_the_peak(data: bytes, assay: Assay, path: Path) -> bytes:
    """The file with one base64 character changed inside the analyte peak's apex value."""
    apex = int(np.argmax(read_injection(path, assay).traces["asn_quant"].intensity))
    chrom = data.index(b'id="SRM SIC Q1=133.1 Q3=87.1')
    array = data.index(b'name="intensity array"', chrom)
    start = data.index(b"<binary>", array) + len(b"<binary>")
    at = start + (8 * apex + 5) * 4 // 3  # a character of the apex value's mantissa
    assert at < data.index(b"</binary>", start)
    new = b"A" if data[at : at + 1] != b"A" else b"B"
    return data[:at] + new + data[at + 1 :]


_STATED_SHA1 = re.compile(rb"(<fileChecksum>)([0-9a-f]{40})(</fileChecksum>)")


def test_the_simulators_checksums_verify(tmp_path: Path, assay: Assay) -> None:
    from asnmon.simulate import SimConfig, plan_run, render_mzml

    config = SimConfig()
    for name, data in [("zlib.mzML", render_mzml(plan_run(config)[5], config)),
                       ("plain.mzML", psims_uncompressed())]:  # fmt: skip
        assert _STATED_SHA1.search(data)
        assert set(read_injection(write(tmp_path, data, name), assay).traces) >= {"asn_quant"}


@pytest.mark.parametrize("source", ["uncompressed", "zlib"])
def test_one_changed_character_in_a_peak_fails_the_checksum(
    tmp_path: Path, assay: Assay, source: str
) -> None:
    from asnmon.simulate import SimConfig, plan_run, render_mzml

    config = SimConfig()
    data = (
        psims_uncompressed()
        if source == "uncompressed"
        else render_mzml(plan_run(config)[5], config)
    )
    changed = change_one_character_in_the_peak(data, assay, write(tmp_path, data, "good.mzML"))
    stated = _STATED_SHA1.search(data)
    assert stated is not None
    with pytest.raises(ChecksumError) as info:
        read_injection(write(tmp_path, changed, "changed.mzML"), assay)
    message = str(info.value)
    assert "changed.mzML" in message and "<fileChecksum>" in message
    assert f"expected {stated.group(2).decode()}, computed " in message
    assert "changed after it was written" in message
    if source == "uncompressed":  # without the checksum the change is silent and wrong
        blank = _STATED_SHA1.sub(lambda m: m[1] + b"0" * 40 + m[3], changed)
        wrong = read_injection(write(tmp_path, blank, "blank.mzML"), assay).traces["asn_quant"]
        right = read_injection(tmp_path / "good.mzML", assay).traces["asn_quant"]
        assert not np.array_equal(wrong.intensity, right.intensity)
        assert np.isfinite(wrong.intensity).all()


def test_a_checksum_that_is_not_a_sha1_is_noted(tmp_path: Path, assay: Assay) -> None:
    data = _STATED_SHA1.sub(lambda m: m[1] + b"not-a-digest" + m[3], psims_uncompressed())
    inj = read_injection(write(tmp_path, data), assay)
    assert any("'not-a-digest' is not a SHA-1" in n for n in inj.notes)


def test_the_checksum_covers_a_gzipped_document(tmp_path: Path, assay: Assay) -> None:
    data = psims_uncompressed()
    read_injection(write(tmp_path, data, "ok.mzML.gz", gz=True), assay)
    changed = change_one_character_in_the_peak(data, assay, write(tmp_path, data, "p.mzML"))
    with pytest.raises(ChecksumError):
        read_injection(write(tmp_path, changed, "changed.mzML.gz", gz=True), assay)

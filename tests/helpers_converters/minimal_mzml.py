"""A small, valid mzML document (one TIC chromatogram), for tests and stand-in converters.

Written by hand on purpose: the watch tests need only a closed document, and must
not depend on the simulator or on psims.
"""

from __future__ import annotations

import base64
import struct
from xml.sax.saxutils import escape


def _b64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}d", *values)).decode("ascii")


def _array(values: list[float], accession: str, name: str, unit: str) -> str:
    data = _b64(values)
    return (
        f'          <binaryDataArray encodedLength="{len(data)}">\n'
        '            <cvParam cvRef="MS" accession="MS:1000523" name="64-bit float"/>\n'
        '            <cvParam cvRef="MS" accession="MS:1000576" name="no compression"/>\n'
        f'            <cvParam cvRef="MS" accession="{accession}" name="{name}" {unit}/>\n'
        f"            <binary>{data}</binary>\n"
        "          </binaryDataArray>\n"
    )


def mzml_doc(run_id: str = "run1", *, comment: str = "", points: int = 5) -> bytes:
    """A complete plain ``<mzML>`` document; ``comment`` lands in an XML comment."""
    rt = [0.1 * i for i in range(points)]
    intensity = [1000.0 * (i + 1) for i in range(points)]
    note = f"  <!-- {escape(comment).replace('--', '- -')} -->\n" if comment else ""
    text = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<mzML xmlns="http://psi.hupo.org/ms/mzml" id="{run_id}" version="1.1.0">\n'
        f"{note}"
        '  <cvList count="2">\n'
        '    <cv id="MS" fullName="Proteomics Standards Initiative Mass Spectrometry Ontology"'
        ' version="4.1.30"'
        ' URI="https://raw.githubusercontent.com/HUPO-PSI/psi-ms-CV/master/psi-ms.obo"/>\n'
        '    <cv id="UO" fullName="Unit Ontology" version="09:04:2014"'
        ' URI="https://raw.githubusercontent.com/bio-ontology-research-group/unit-ontology/master/unit.obo"/>\n'
        "  </cvList>\n"
        "  <fileDescription><fileContent>\n"
        '    <cvParam cvRef="MS" accession="MS:1001473"'
        ' name="selected reaction monitoring chromatogram"/>\n'
        "  </fileContent></fileDescription>\n"
        '  <softwareList count="1"><software id="asnmon_test" version="0">\n'
        '    <cvParam cvRef="MS" accession="MS:1000799" name="custom unreleased software tool"'
        ' value="asnmon test"/>\n'
        "  </software></softwareList>\n"
        '  <instrumentConfigurationList count="1"><instrumentConfiguration id="IC1">\n'
        '    <cvParam cvRef="MS" accession="MS:1000031" name="instrument model"/>\n'
        "  </instrumentConfiguration></instrumentConfigurationList>\n"
        '  <dataProcessingList count="1"><dataProcessing id="DP1">\n'
        '    <processingMethod order="1" softwareRef="asnmon_test">\n'
        '      <cvParam cvRef="MS" accession="MS:1000544" name="Conversion to mzML"/>\n'
        "    </processingMethod>\n"
        "  </dataProcessing></dataProcessingList>\n"
        f'  <run id="{run_id}" defaultInstrumentConfigurationRef="IC1">\n'
        '    <chromatogramList count="1" defaultDataProcessingRef="DP1">\n'
        f'      <chromatogram index="0" id="TIC" defaultArrayLength="{points}">\n'
        '        <cvParam cvRef="MS" accession="MS:1000235"'
        ' name="total ion current chromatogram"/>\n'
        '        <binaryDataArrayList count="2">\n'
        + _array(
            rt,
            "MS:1000595",
            "time array",
            'unitCvRef="UO" unitAccession="UO:0000031" unitName="minute"',
        )
        + _array(
            intensity,
            "MS:1000515",
            "intensity array",
            'unitCvRef="MS" unitAccession="MS:1000131" unitName="number of detector counts"',
        )
        + "        </binaryDataArrayList>\n"
        "      </chromatogram>\n"
        "    </chromatogramList>\n"
        "  </run>\n"
        "</mzML>\n"
    )
    return text.encode("utf-8")


def indexed_mzml_doc(run_id: str = "run1") -> bytes:
    """The same document wrapped as indexedmzML (offsets not meaningful: completeness only)."""
    inner = mzml_doc(run_id).split(b"\n", 1)[1]
    return (
        b'<?xml version="1.0" encoding="utf-8"?>\n'
        b'<indexedmzML xmlns="http://psi.hupo.org/ms/mzml">\n'
        + inner
        + b'  <indexList count="1">\n'
        b'    <index name="chromatogram"><offset idRef="TIC">0</offset></index>\n'
        b"  </indexList>\n"
        b"  <indexListOffset>0</indexListOffset>\n"
        b"  <fileChecksum>0000000000000000000000000000000000000000</fileChecksum>\n"
        b"</indexedmzML>\n"
    )

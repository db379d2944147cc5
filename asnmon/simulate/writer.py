"""mzML bytes for one injection: psims, the PSI writer, in msconvert's layout for SCIEX SRM."""

from __future__ import annotations

import gzip
import io
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources

import numpy as np
from psims.controlled_vocabulary.controlled_vocabulary import ControlledVocabulary, OBOCache
from psims.document import ChildTrackingMeta
from psims.mzml.writer import IndexedMzMLWriter, PlainMzMLWriter

from asnmon.simulate.acquire import render_acquisition
from asnmon.simulate.config import SimConfig
from asnmon.simulate.plan import PlannedInjection
from asnmon.simulate.signals import AcquiredTrace


def _vendored_obo(name: str) -> Callable[[OBOCache], ControlledVocabulary]:
    def load(cache_: OBOCache) -> ControlledVocabulary:
        ref = resources.files("psims.controlled_vocabulary.vendor").joinpath(name)
        with ref.open("rb") as raw, gzip.GzipFile(fileobj=raw) as fh:
            return ControlledVocabulary.from_obo(fh, import_resolver=cache_.load)

    return load


@cache
def _vocabularies() -> OBOCache:
    """psims' bundled CVs, never the network: offline labs, reproducible bytes, no fd leak."""
    resolver = OBOCache(enabled=False, use_remote=False)
    resolver.set_resolver(
        "http://purl.obolibrary.org/obo/ms/psi-ms.obo", _vendored_obo("psi-ms.obo.gz")
    )
    resolver.set_resolver("http://purl.obolibrary.org/obo/uo.obo", _vendored_obo("unit.obo.gz"))
    return resolver


_REGISTRY_LOCK = threading.Lock()


@contextmanager
def _psims_registry_kept() -> Iterator[None]:
    """psims' component registry as it was before this document.

    psims 1.4 binds each writer's components by subclassing the registered class
    and registers the subclass under the same name, so the next writer subclasses
    that one: after k documents every component's class is k levels deep and a
    document takes ~k x 0.1 ms more to write (measured: 20 ms at the 20th file of
    a process, 130 ms at the 600th, ~1 s at the 1,400th; 23 types leaked per
    file). Putting the registry back after each document keeps every writer one
    level above psims' own classes; the bytes written are the same.
    """
    with _REGISTRY_LOCK:
        registry = getattr(ChildTrackingMeta, "_cache", None)
        saved = {ns: dict(d) for ns, d in registry.items()} if registry is not None else None
        try:
            yield
        finally:
            if registry is not None and saved is not None:
                registry.clear()
                registry.update(saved)


def _timestamp(config: SimConfig, position: int) -> str:
    start = datetime.fromisoformat(config.start_time.replace("Z", "+00:00"))
    at = start + timedelta(minutes=config.injection_minutes * (position - 1))
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tic(traces: tuple[AcquiredTrace, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Total ion current over every cycle any trace was acquired in."""
    t = np.unique(np.concatenate([a.rt for a in traces]))
    tic = np.zeros(t.size)
    for a in traces:
        np.add.at(tic, np.searchsorted(t, a.rt), a.intensity)
    return t, tic


def render_mzml(
    inj: PlannedInjection, config: SimConfig, *, started_at: str | None = None
) -> bytes:
    """The injection's complete mzML document, as bytes (msconvert's layout for SCIEX SRM)."""
    with _psims_registry_kept():
        return _render(inj, config, started_at)


def _render(inj: PlannedInjection, config: SimConfig, started_at: str | None) -> bytes:
    traces = render_acquisition(inj, config)
    tic_t, tic = _tic(traces)
    k = 60.0 if config.time_unit == "second" else 1.0
    buf = io.BytesIO()
    cls = IndexedMzMLWriter if config.indexed else PlainMzMLWriter
    w = cls(buf, close=False, vocabulary_resolver=_vocabularies())
    win = {"lower": 0.5, "upper": 0.5}
    with w:
        w.controlled_vocabularies()
        source = w.SourceFile(
            location="file://instrument/data",
            name=f"{inj.stem}.wiff",
            id="WIFF",
            params=["WIFF nativeID format", "ABI WIFF format"],
        )
        w.file_description(["selected reaction monitoring chromatogram"], [source])
        w.software_list(
            [
                {"id": "Analyst", "version": "1.7.3", "params": ["Analyst"]},
                {
                    "id": "asnmon_simulate",
                    "version": "0.1.0",
                    "params": ["custom unreleased software tool"],
                },
            ]
        )
        w.instrument_configuration_list(
            [
                w.InstrumentConfiguration(
                    id="IC1",
                    params=[config.instrument],
                    software_reference="Analyst",
                    component_list=w.ComponentList(
                        [
                            w.Source(1, ["electrospray ionization"]),
                            w.Analyzer(2, ["quadrupole"]),
                            w.Analyzer(3, ["quadrupole"]),
                            w.Detector(4, ["electron multiplier"]),
                        ]
                    ),
                )
            ]
        )
        w.data_processing_list(
            [
                w.DataProcessing(
                    [
                        w.ProcessingMethod(
                            order=0,
                            software_reference="asnmon_simulate",
                            params=["Conversion to mzML"],
                        )
                    ],
                    id="simulation",
                )
            ]
        )
        with w.run(
            id=f"{config.run_name}_{inj.stem}",
            instrument_configuration="IC1",
            start_time=started_at or _timestamp(config, inj.position),
        ):
            n = len(traces) + int(config.include_tic)
            with w.chromatogram_list(count=n):
                if config.include_tic:
                    w.write_chromatogram(
                        tic_t * k,
                        tic,
                        id="TIC",
                        chromatogram_type="total ion current chromatogram",
                        encoding=64,
                        time_unit=config.time_unit,
                    )
                for i, acquired in enumerate(traces):
                    trace = acquired.trace
                    chrom = w.chromatogram(
                        acquired.rt * k,
                        acquired.intensity,
                        chromatogram_type="selected reaction monitoring chromatogram",
                        id=f"SRM SIC Q1={trace.q1:g} Q3={trace.q3:g} sample=1 period=1 "
                        f"experiment=1 transition={i}",
                        precursor_information={
                            "mz": None,
                            "isolation_window_args": {"target": trace.q1, **win},
                            "activation": [
                                "collision-induced dissociation",
                                {"collision energy": trace.ce},
                            ],
                        },
                        params=["positive scan"],
                        encoding=64,
                        time_unit=config.time_unit,
                    )
                    chrom.product = w.Product(isolation_window={"target": trace.q3, **win})
                    chrom.write(w.writer)
    return buf.getvalue()

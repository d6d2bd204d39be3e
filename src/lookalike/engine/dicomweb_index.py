"""Indexing a DICOMweb server (a PACS such as Orthanc): list every instance with QIDO-RS, fetch
the ones not indexed yet with WADO-RS, index them like scan files.

An instance's entries are stored under its WADO-RS address (`dicomweb+http://.../studies/S/
series/SE/instances/I`, plus `#frame=N` for multi-frame), with its study and series UIDs in
`fields`: results link back to the PACS. DICOM instances never change under their UID, so an
instance that is indexed is never fetched again; one that left the server is forgotten with
`prune`."""

from __future__ import annotations

import time
from typing import Any

from ..config import dicomweb_auth
from ..errors import ImageLoadError, NotFound, TooLarge
from ..medical.dicomweb import DicomWebClient
from ..store import SearchFilter
from .entries import file_of
from .indexer import AddReport, ProgressFn
from .medical_index import ScanIndexer
from .scan import FileEntry


def index_dicomweb(lib: Any, source: str, *, prune: bool = False, progress: ProgressFn | None = None,
                   auth: str | None = None) -> AddReport:
    """Index every instance of the DICOMweb server at `source` that is not indexed yet."""
    refusal = lib.store.write_refusal()
    if refusal is not None:
        raise refusal
    progress = progress or (lambda done, total: None)
    t0 = time.perf_counter()
    client = DicomWebClient(source, auth if auth is not None else dicomweb_auth())
    report = AddReport()
    refs = client.all_instances()
    prefix = client.source + "/studies/"
    indexed: dict[str, list[int]] = {}
    for rec in lib.store.iter_records(where=SearchFilter(path_prefix=prefix)):
        indexed.setdefault(file_of(rec.path), []).append(rec.stored_id)
    todo = [r for r in refs if client.entry_file(r) not in indexed]
    report.unchanged = len(refs) - len(todo)
    indexer = ScanIndexer(lib.store, lib.extractor, 32, {})
    progress(0, len(todo))
    for i, ref in enumerate(todo):
        name = client.entry_file(ref)
        try:
            data = client.instance(ref)
        except ImageLoadError as e:
            report.failed.append((name, e.reason))
        except (NotFound, TooLarge) as e:  # gone since the listing, or over the limit: the rest goes on
            report.failed.append((name, str(e).removeprefix(name + ": ")))
        else:
            indexer.write(indexer.prepare_data(FileEntry(name, len(data), 0.0), data), report)
        progress(i + 1, len(todo))
    indexer.flush(report)
    if prune:
        listed = {client.entry_file(r) for r in refs}
        gone = [id_ for path, ids in indexed.items() if path not in listed for id_ in ids]
        if gone:
            lib.store.write(removes=gone)
        report.removed = len(gone)
    report.seconds = time.perf_counter() - t0
    lib.sync_index()
    return report

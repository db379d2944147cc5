"""Every unexpected condition asnmon raises, as one tree.

Expected QC outcomes (a sample over the curve, a fading IS) are *data*: a
``Flag``. What is here is for input that cannot be processed at all. The
pipeline catches ``AsnmonError`` per file, stores it as a flag (READ_ERROR,
CONVERT_ERROR, ...) and goes on with the run.

    AsnmonError
    ├── ReadError                      -> flag READ_ERROR
    │   ├── EmptyFileError             0 bytes, or nothing but whitespace
    │   ├── NotXmlError                the bytes are not XML at all
    │   ├── NotMzmlError               XML, but not an mzML document
    │   │   └── MzxmlError             an mzXML file (the older format)
    │   ├── NotRegularFileError        a FIFO, device or socket (also through a symlink)
    │   ├── TooLargeError              over a [read] limit: file size, inflated size
    │   │                              or inflation ratio (a decompression bomb)
    │   ├── TruncatedFileError         the document stops before its end
    │   ├── CorruptDataError           an array cannot be decoded, has the wrong
    │   │   │                          length or holds NaN/inf
    │   │   └── ChecksumError          the indexed mzML's <fileChecksum> (SHA-1)
    │   │                              does not match its content
    │   ├── UnsupportedDataError       valid, but not something we decode
    │   │                              (MS-Numpress, unknown compression or time unit)
    │   ├── UnsafeXmlError             DOCTYPE/entity declarations (never in mzML)
    │   ├── NoMatchingTransitionError  none of the assay's transitions is present
    │   └── WrongPolarityError         acquired in the other ion mode
    ├── ConfigError                    a configuration file is invalid
    │   ├── AssayError                 (names the key and the problem)
    │   ├── WorklistError              (names the row, column and problem)
    │   └── SettingsError
    ├── ConvertError                   -> flag CONVERT_ERROR
    ├── StoreError                     the database cannot be used
    │   ├── DatabaseLockedError        another process holds the file (DuckDB allows
    │   │                              one writer); ``asnmon run`` waits and retries
    │   └── NotADatabaseError          the file is not a DuckDB database (nor an empty
    │                                  one left by a failed creation); never overwritten
    ├── BadInput                       a dashboard request its own page never sends
    │                                  (wrong type, too long): HTTP 400
    └── AccessDenied                   a person's change refused (role, password, account)
        └── RunLocked                  the run is approved: reopen it first

A test (tests/test_errors.py) imports every module and checks that each
subclass of ``AsnmonError`` is in this tree.
"""

from __future__ import annotations


class AsnmonError(Exception):
    """Base of every error asnmon raises on purpose; its message is for people."""

    code = "ERROR"


class ReadError(AsnmonError):
    """An injection file could not be read; stored as a READ_ERROR flag."""

    code = "READ_ERROR"


class EmptyFileError(ReadError):
    pass


class NotXmlError(ReadError):
    pass


class NotMzmlError(ReadError):
    pass


class MzxmlError(NotMzmlError):
    pass


class NotRegularFileError(ReadError):
    pass


class TooLargeError(ReadError):
    pass


class TruncatedFileError(ReadError):
    pass


class CorruptDataError(ReadError):
    pass


class ChecksumError(CorruptDataError):
    pass


class UnsupportedDataError(ReadError):
    pass


class UnsafeXmlError(ReadError):
    pass


class NoMatchingTransitionError(ReadError):
    pass


class WrongPolarityError(ReadError):
    pass


class ConfigError(AsnmonError):
    """A configuration file is invalid. ``problems`` lists every one found."""

    code = "CONFIG_ERROR"

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


class AssayError(ConfigError):
    pass


class WorklistError(ConfigError):
    pass


class SettingsError(ConfigError):
    pass


class ConvertError(AsnmonError):
    """The vendor-file converter failed or timed out."""

    code = "CONVERT_ERROR"


class StoreError(AsnmonError):
    code = "STORE_ERROR"


class DatabaseLockedError(StoreError):
    """Another process holds the database file; ``pid`` is its process id when DuckDB names it."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class NotADatabaseError(StoreError):
    pass


class BadInput(AsnmonError):
    """A dashboard callback request the dashboard's own page would never send; HTTP 400."""


class AccessDenied(AsnmonError):
    """A person may not make this change now; the message says who may, or what to do."""

    code = "ACCESS_DENIED"


class RunLocked(AccessDenied):
    """The run is approved (signed and locked): an approver must reopen it first."""

    code = "RUN_LOCKED"

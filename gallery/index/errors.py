"""Errors raised by the vector index; one base class so callers can catch them all."""


class VectorIndexError(Exception):
    """Base class of every error the gallery vector index raises."""


class IndexCorruptError(VectorIndexError):
    """Snapshots exist on disk but none passes its checksum, so nothing trustworthy can load."""


class SnapshotNotFoundError(VectorIndexError, FileNotFoundError):
    """The directory holds no snapshot at all (a fresh gallery, or the wrong path)."""


class DuplicateIdError(VectorIndexError, ValueError):
    """An id is already in the index; ids are stable keys, so re-adding one is a caller bug."""

"""Versioned .npz files for params, optimizer state and checkpoints.

One layout for all three: a JSON header (format name, kind of content,
version, and the content's small fields) plus float64 arrays.  Reading
checks everything a file could get wrong -- not an archive, not csvi's, a
newer version, a corrupt member, a missing or non-finite array -- and says
so naming the file, so a bad file never leaves NumPy's or JSON's internals
in the error, nor half-loaded state behind.
"""
import json
import zipfile

import numpy as np

__all__ = ["VERSION", "write", "read", "Contents"]

VERSION = 1
_HEADER = "__csvi__"


def write(path, kind, header, arrays):
    """Write `header` (JSON-able) and `arrays` (name -> array) as a csvi
    `kind` file at `path`."""
    data = {name: np.asarray(a, dtype=np.float64) for name, a in arrays.items()}
    meta = {"format": "csvi", "kind": kind, "version": VERSION, **header}
    data[_HEADER] = np.array(json.dumps(meta, allow_nan=True))
    with open(path, "wb") as f:
        np.savez(f, **data)


class Contents:
    """A file's checked header and arrays; `error(what)` makes the ValueError
    a loader raises about this file."""

    def __init__(self, path, kind, header, arrays):
        self.path = path
        self.kind = kind
        self.header = header
        self.arrays = arrays

    def error(self, what):
        return ValueError(f"{self.path}: {what}")

    def field(self, key, type_):
        """Header field `key`, which must be a `type_`."""
        value = self.header.get(key)
        if not isinstance(value, type_):
            raise self.error(f"corrupt csvi {self.kind} file: header field {key!r} is "
                             f"missing or not a {type_.__name__}")
        return value

    def array(self, name, what):
        """Array `name` as float64, finite; `what` names it in errors."""
        if name not in self.arrays:
            raise self.error(f"corrupt csvi {self.kind} file: {what} is missing")
        a = self.arrays[name]
        if not np.all(np.isfinite(a)):
            raise self.error(f"{what} has non-finite values (NaN or inf)")
        return a


def read(path, kind):
    """The Contents of csvi `kind` file `path`, or a ValueError saying what is
    wrong with it (OSError when it cannot be opened at all)."""
    name = str(path)
    with open(path, "rb") as f:  # a missing file: the usual FileNotFoundError
        try:
            arrays, raw = {}, None
            with np.load(f, allow_pickle=False) as data:
                for key in data.files:
                    value = data[key]
                    if key == _HEADER:
                        raw = value
                    elif value.dtype.kind not in "fiub":
                        raise ValueError(f"{name}: not a csvi {kind} file (array {key!r} "
                                         f"holds {value.dtype} values, not numbers)")
                    else:
                        arrays[key] = np.array(value, dtype=np.float64, order="C")
        except ValueError as e:
            if str(e).startswith(name):
                raise
            raise ValueError(f"{name}: not a csvi {kind} file (it is not a NumPy .npz "
                             "archive of numeric arrays)") from None
        except (OSError, EOFError, zipfile.BadZipFile, KeyError, TypeError):
            raise ValueError(f"{name}: not a csvi {kind} file, or a truncated or corrupt "
                             "one (its .npz archive cannot be read)") from None
        except Exception:  # zlib.error and kin from a damaged member
            raise ValueError(f"{name}: corrupt csvi {kind} file (an array in it cannot "
                             "be decompressed)") from None
    if raw is None or raw.dtype.kind != "U" or raw.ndim != 0:
        raise ValueError(f"{name}: not a csvi {kind} file (no csvi header)")
    try:
        header = json.loads(str(raw))
    except ValueError:
        raise ValueError(f"{name}: corrupt csvi {kind} file (its header is not valid "
                         "JSON)") from None
    if not isinstance(header, dict) or header.get("format") != "csvi":
        raise ValueError(f"{name}: not a csvi {kind} file (no csvi header)")
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{name}: corrupt csvi {kind} file (no format version)")
    if version > VERSION:
        raise ValueError(f"{name}: written by a newer csvi (format version {version}); "
                         f"this csvi reads versions up to {VERSION}")
    if header.get("kind") != kind:
        raise ValueError(f"{name}: a csvi {header.get('kind')!r} file, not a {kind} file")
    return Contents(name, kind, header, arrays)

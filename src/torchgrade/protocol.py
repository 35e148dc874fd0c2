"""The wire format between the trusted grader and the untrusted student worker.

Only plain data crosses the trust boundary, in a format whose decoding never runs code: a
length-prefixed JSON header followed by raw byte buffers. Tensors travel as (dtype, shape,
bytes) triples and are rebuilt with ``torch.frombuffer`` on the receiving side, so a tensor
subclass, a lying ``__torch_function__`` or a pickled payload cannot reach the grader.

A frame is::

    8 bytes  big-endian length of the JSON header
    header   UTF-8 JSON: {"msg": <tree>, "buffers": [len0, len1, ...]}
    buffers  the raw bytes, back to back

Values in ``msg`` are JSON scalars, lists, string-keyed objects, or tagged objects
``{"~": tag, ...}`` for everything JSON cannot say. This module is imported on both sides, so
it depends on nothing but the standard library, numpy and torch (imported lazily).
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
import sys
from pathlib import PurePath
from typing import Any, BinaryIO

TAG = "~"
HEADER = struct.Struct(">Q")
MAX_HEADER_BYTES = 64 * 1024 * 1024
MAX_FRAME_BYTES = 8 * 1024 * 1024 * 1024
MAX_DEPTH = 64

# dtypes allowed across the boundary; names are torch's (``str(dtype)`` without "torch.").
TENSOR_DTYPES = (
    "float64", "float32", "float16", "bfloat16",
    "int64", "int32", "int16", "int8", "uint8", "bool",
    "complex64", "complex128",
)  # fmt: skip
NUMPY_DTYPES = (
    "float64", "float32", "float16", "int64", "int32", "int16", "int8",
    "uint8", "uint16", "uint32", "uint64", "bool",
)  # fmt: skip


class ProtocolError(Exception):
    """A frame or value that does not follow the protocol (or is not plain data)."""


@dataclasses.dataclass(frozen=True)
class HandleRef:
    """A reference to an object that lives in the worker (a student's ``nn.Module``...).

    Only its id and its type's name cross; the object itself never leaves the worker.
    """

    id: int
    type_name: str


@dataclasses.dataclass(frozen=True)
class DataclassRecord:
    """A dataclass instance reduced to its class name and plain fields."""

    type_name: str
    fields: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "fields":  # copy/pickle probe before __init__
            raise AttributeError(name)
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(f"{self.type_name} record has no field {name!r}") from None


@dataclasses.dataclass(frozen=True)
class GeneratorState:
    """A ``torch.Generator`` as its device and state bytes: the receiver rebuilds an equal one."""

    device: str
    state: bytes


class Encoder:
    """Turns a value into a JSON-able tree plus buffers; rejects anything that is not plain."""

    def __init__(self, handle_for: Any = None, max_bytes: int = MAX_FRAME_BYTES) -> None:
        # handle_for(obj) -> HandleRef | None: lets the worker turn unknown objects into handles.
        self.buffers: list[bytes] = []
        self.handle_for = handle_for
        self.max_bytes = max_bytes
        self.reserved = 0  # bytes of the buffers so far, counted before any copy is made

    def _reserve(self, nbytes: int) -> None:
        """Refuse a value that cannot fit before copying it: a 1 GB tensor is refused at once,
        instead of after a gigabyte copy that a loaded machine may not finish in time."""
        self.reserved += nbytes
        if self.reserved > self.max_bytes:
            raise ProtocolError(_too_large(self.reserved, self.max_bytes))

    def _buf(self, data: bytes) -> int:
        self.buffers.append(data)
        return len(self.buffers) - 1

    def encode(self, value: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise ProtocolError("value nested too deeply")
        t = type(value)
        if t is str and len(value) > MAX_HEADER_BYTES:
            raise ProtocolError(_too_large(len(value), self.max_bytes))
        if value is None or t is bool or t is str:
            return value
        if t is int:
            return value if abs(value) < 2**53 else {TAG: "int", "v": str(value)}
        if t is float:
            return value if math.isfinite(value) else {TAG: "float", "v": repr(value)}
        if isinstance(value, list):
            return [self.encode(v, depth + 1) for v in value]
        if isinstance(value, tuple):  # named tuples, torch.return_types too
            return {TAG: "tuple", "v": [self.encode(v, depth + 1) for v in value]}
        if isinstance(value, dict):  # OrderedDict from state_dict() too
            if all(type(k) is str for k in value):
                if TAG not in value:
                    return {k: self.encode(v, depth + 1) for k, v in value.items()}
            items = [[self.encode(k, depth + 1), self.encode(v, depth + 1)]
                     for k, v in value.items()]
            return {TAG: "dict", "items": items}
        if t is bytes or t is bytearray:
            self._reserve(len(value))
            return {TAG: "bytes", "buf": self._buf(bytes(value))}
        if isinstance(value, PurePath):
            return {TAG: "path", "v": str(value)}
        if t is HandleRef:
            return {TAG: "handle", "id": value.id, "type": value.type_name}
        if t is DataclassRecord:
            return self._record(value.type_name, value.fields, depth)
        if t is GeneratorState:
            return {TAG: "generator", "device": value.device, "buf": self._buf(value.state)}
        encoded = self._encode_library_value(value, depth)
        if encoded is not None:
            return encoded
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(value, torch.Tensor):
            return self._tensor(value)  # a subclass from elsewhere: refused with a clear error
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            return self._record(t.__name__, fields, depth)
        if self.handle_for is not None:
            ref = self.handle_for(value)
            if ref is not None:
                return {TAG: "handle", "id": ref.id, "type": ref.type_name}
        raise ProtocolError(f"cannot send a value of type {t.__module__}.{t.__qualname__}")

    def _record(self, type_name: str, fields: dict[str, Any], depth: int) -> Any:
        return {
            TAG: "record",
            "type": type_name,
            "fields": {k: self.encode(v, depth + 1) for k, v in fields.items()},
        }

    def _encode_library_value(self, value: Any, depth: int) -> Any:
        """Tensors, numpy arrays and scalars, generators, dtypes, devices; else None."""
        module = type(value).__module__ or ""
        if module.startswith("torch"):
            import torch

            if isinstance(value, torch.Tensor):
                return self._tensor(value)
            if type(value) is torch.Generator:
                state = value.get_state()
                return {TAG: "generator", "device": str(value.device), "buf": self._buf(
                    state.numpy().tobytes())}
            if type(value) is torch.dtype:
                return {TAG: "dtype", "v": str(value).removeprefix("torch.")}
            if type(value) is torch.device:
                return {TAG: "device", "v": str(value)}
            if type(value) is torch.Size:
                return {TAG: "tuple", "v": [int(v) for v in value]}
        if module == "numpy":
            import numpy as np

            if type(value) is np.ndarray:
                return self._ndarray(value)
            if isinstance(value, np.bool_):
                return bool(value)
            if isinstance(value, np.integer):
                return self.encode(int(value), depth)
            if isinstance(value, np.floating):
                return self.encode(float(value), depth)
        return None

    def _tensor(self, t: Any) -> Any:
        import torch

        if type(t) not in (torch.Tensor, torch.nn.Parameter):
            raise ProtocolError(
                f"a tensor subclass ({type(t).__qualname__}) cannot be sent: return a plain "
                "torch.Tensor"
            )
        if t.is_nested or t.layout != torch.strided:
            raise ProtocolError("only dense tensors can be sent, not nested or sparse ones")
        dtype = str(t.dtype).removeprefix("torch.")
        if dtype not in TENSOR_DTYPES:
            raise ProtocolError(f"tensors of dtype {dtype} cannot be sent")
        self._reserve(t.numel() * t.element_size())
        data = t.detach()
        if data.is_conj():
            data = data.resolve_conj()
        if data.is_neg():
            data = data.resolve_neg()
        data = data.to("cpu").contiguous()
        raw = _raw_bytes(data) if data.numel() else b""
        return {
            TAG: "tensor",
            "dtype": dtype,
            "shape": list(data.shape),
            "device": str(t.device),
            "requires_grad": bool(t.requires_grad),
            "buf": self._buf(raw),
        }

    def _ndarray(self, a: Any) -> Any:
        import numpy as np

        dtype = a.dtype.name
        if dtype not in NUMPY_DTYPES:
            raise ProtocolError(f"numpy arrays of dtype {dtype} cannot be sent")
        self._reserve(a.nbytes)
        data = np.ascontiguousarray(a)  # at least 1-D: the shape sent is the original's
        return {TAG: "ndarray", "dtype": dtype, "shape": list(a.shape),
                "buf": self._buf(data.tobytes())}


class Decoder:
    """Rebuilds values from a tree and its buffers, checking every size it is told."""

    def __init__(self, buffers: list[bytes], resolve_handle: Any = None,
                 device_map: Any = None) -> None:
        self.buffers = buffers
        self.resolve_handle = resolve_handle  # HandleRef -> object (worker side)
        self.device_map = device_map  # device string -> device to place tensors on

    def _get_buf(self, index: Any) -> bytes:
        if type(index) is not int or not 0 <= index < len(self.buffers):
            raise ProtocolError(f"bad buffer index {index!r}")
        return self.buffers[index]

    def decode(self, node: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise ProtocolError("value nested too deeply")
        t = type(node)
        if node is None or t in (bool, int, float):
            return node
        if t is str:
            return _text(node)
        if t is list:
            return [self.decode(v, depth + 1) for v in node]
        if t is not dict:
            raise ProtocolError(f"unexpected JSON node {t.__name__}")
        tag = node.get(TAG)
        if tag is None:
            return {_text(k): self.decode(v, depth + 1) for k, v in node.items()}
        decode_tagged = getattr(self, f"_d_{tag}", None) if isinstance(tag, str) else None
        if decode_tagged is None:
            raise ProtocolError(f"unknown tag {tag!r}")
        try:
            return decode_tagged(node, depth)
        except ProtocolError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError,
                OverflowError) as exc:
            raise ProtocolError(f"malformed {tag} value: {exc}") from exc

    def _d_int(self, node: dict, depth: int) -> int:
        return int(str(node["v"]))

    def _d_float(self, node: dict, depth: int) -> float:
        v = node["v"]
        if v not in ("nan", "inf", "-inf"):
            raise ProtocolError(f"bad float {v!r}")
        return float(v)

    def _d_tuple(self, node: dict, depth: int) -> tuple:
        return tuple(self.decode(v, depth + 1) for v in node["v"])

    def _d_dict(self, node: dict, depth: int) -> dict:
        out = {}
        for k, v in node["items"]:
            key = self.decode(k, depth + 1)
            if isinstance(key, (list, dict)):
                raise ProtocolError("unhashable dict key")
            out[key] = self.decode(v, depth + 1)
        return out

    def _d_bytes(self, node: dict, depth: int) -> bytes:
        return self._get_buf(node["buf"])

    def _d_path(self, node: dict, depth: int) -> Any:
        from pathlib import Path

        return Path(_text(str(node["v"])))

    def _d_handle(self, node: dict, depth: int) -> Any:
        ref = HandleRef(int(node["id"]), _text(str(node["type"])))
        return self.resolve_handle(ref) if self.resolve_handle is not None else ref

    def _d_record(self, node: dict, depth: int) -> DataclassRecord:
        if type(node.get("fields")) is not dict:
            raise ProtocolError("a record's fields must be an object")
        fields = {_text(str(k)): self.decode(v, depth + 1) for k, v in node["fields"].items()}
        return DataclassRecord(_text(str(node["type"])), fields)

    def _d_dtype(self, node: dict, depth: int) -> Any:
        import torch

        name = node["v"]
        if name not in TENSOR_DTYPES:
            raise ProtocolError(f"unknown dtype {name!r}")
        return getattr(torch, name)

    def _d_device(self, node: dict, depth: int) -> Any:
        import torch

        return torch.device(str(node["v"]))

    def _d_generator(self, node: dict, depth: int) -> Any:
        import torch

        device = self._place(str(node["device"]))
        gen = torch.Generator(device=device)
        state = torch.frombuffer(bytearray(self._get_buf(node["buf"])), dtype=torch.uint8)
        gen.set_state(state)
        return gen

    def _d_tensor(self, node: dict, depth: int) -> Any:
        import torch

        dtype_name = node["dtype"]
        if dtype_name not in TENSOR_DTYPES:
            raise ProtocolError(f"unknown tensor dtype {dtype_name!r}")
        dtype = getattr(torch, dtype_name)
        shape = _checked_shape(node["shape"])
        raw = self._get_buf(node["buf"])
        itemsize = torch.empty((), dtype=dtype).element_size()
        if len(raw) != math.prod(shape) * itemsize:
            raise ProtocolError("tensor buffer size does not match its shape and dtype")
        if not raw:
            t = torch.empty(shape, dtype=dtype)
        else:
            t = torch.frombuffer(bytearray(raw), dtype=dtype).reshape(shape)
        device = self._place(str(node.get("device", "cpu")))
        if str(device) != "cpu":
            t = t.to(device)
        if node.get("requires_grad") is True and (t.is_floating_point() or t.is_complex()):
            t.requires_grad_(True)
        return t

    def _d_ndarray(self, node: dict, depth: int) -> Any:
        import numpy as np

        dtype_name = node["dtype"]
        if dtype_name not in NUMPY_DTYPES:
            raise ProtocolError(f"unknown array dtype {dtype_name!r}")
        shape = _checked_shape(node["shape"])
        raw = self._get_buf(node["buf"])
        dtype = np.dtype(dtype_name)
        if len(raw) != math.prod(shape) * dtype.itemsize:
            raise ProtocolError("array buffer size does not match its shape and dtype")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()

    def _place(self, device: str) -> Any:
        return self.device_map(device) if self.device_map is not None else "cpu"


def _text(s: str) -> str:
    """``s`` as valid Unicode. JSON can carry lone surrogates (``"\\ud800"``) that no UTF-8 file
    can hold: one in an exception message would make every report writer raise."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "replace").decode("utf-8")


def _too_large(size: int, max_bytes: int) -> str:
    return (f"the value is too large to send ({size / 2**20:.0f} MiB; the limit is "
            f"{min(max_bytes, MAX_FRAME_BYTES) / 2**20:.0f} MiB, and {MAX_HEADER_BYTES // 2**20} "
            "MiB for everything that is not a tensor or array buffer)")


def _raw_bytes(data: Any) -> bytes:
    import torch

    try:
        return data.reshape(-1).view(torch.uint8).numpy().tobytes()
    except RuntimeError:
        # .contiguous() keeps odd strides on size-1 dimensions (e.g. a .imag view), which
        # .view(torch.uint8) refuses: copy into standard strides (rare, and small then).
        fresh = torch.empty(data.shape, dtype=data.dtype).copy_(data)
        return fresh.reshape(-1).view(torch.uint8).numpy().tobytes()


def _checked_shape(shape: Any) -> tuple[int, ...]:
    if type(shape) is not list or len(shape) > 32:
        raise ProtocolError("bad tensor shape")
    if not all(type(d) is int and d >= 0 for d in shape):
        raise ProtocolError("bad tensor shape")
    return tuple(shape)


def dumps(msg: Any, handle_for: Any = None, max_bytes: int = MAX_FRAME_BYTES) -> bytes:
    """Encode ``msg`` as one frame; ProtocolError when the peer would refuse it as too large."""
    enc = Encoder(handle_for, max_bytes)
    tree = enc.encode(msg)
    header = json.dumps(
        {"msg": tree, "buffers": [len(b) for b in enc.buffers]},
        allow_nan=False, separators=(",", ":"),
    ).encode("utf-8")
    size = len(header) + sum(len(b) for b in enc.buffers)
    if len(header) > MAX_HEADER_BYTES or size > max_bytes:
        raise ProtocolError(_too_large(size, max_bytes))
    return b"".join([HEADER.pack(len(header)), header, *enc.buffers])


def write_frame(stream: BinaryIO, msg: Any, handle_for: Any = None) -> None:
    stream.write(dumps(msg, handle_for))
    stream.flush()


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    chunks = []
    remaining = n
    while remaining:
        chunk = stream.read(min(remaining, 1 << 24))
        if not chunk:
            raise EOFError("channel closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(stream: BinaryIO, resolve_handle: Any = None, device_map: Any = None,
               max_bytes: int = MAX_FRAME_BYTES) -> Any:
    """Read and decode one frame. Raises EOFError when the peer has gone.

    ``max_bytes`` bounds the whole frame: sizes are checked against it as announced, before
    anything is buffered, so a peer cannot make this process allocate more than that.
    """
    (n,) = HEADER.unpack(_read_exact(stream, HEADER.size))
    if n > min(MAX_HEADER_BYTES, max_bytes):
        raise ProtocolError(f"frame header too large ({n} bytes)")
    try:
        header = json.loads(_read_exact(stream, n).decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8/JSON, huge ints, deep nesting
        raise ProtocolError(f"frame header is not JSON: {exc}") from exc
    if not isinstance(header, dict) or not isinstance(header.get("buffers"), list):
        raise ProtocolError("frame header lacks its buffer table")
    sizes = header["buffers"]
    if not all(type(s) is int and s >= 0 for s in sizes) or n + sum(sizes) > max_bytes:
        raise ProtocolError("frame buffers too large or malformed")
    buffers = [_read_exact(stream, s) for s in sizes]
    return Decoder(buffers, resolve_handle, device_map).decode(header.get("msg"))

"""Tests for the wire format: what may cross the trust boundary, and what never can.

Round trips go through the real byte stream (``dumps`` then ``read_frame`` on a ``BytesIO``),
for every kind of value the protocol supports. Rejections cover values that are not plain data
(the encoder's job) and hostile frames such as a compromised worker could write (the decoder's
job: it must fail with ``ProtocolError``, or ``EOFError`` for a closed channel, must never
allocate what a header merely claims, and must never run code).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import pickle
import warnings
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pytest
import torch

from torchgrade import protocol
from torchgrade.protocol import (
    MAX_DEPTH,
    MAX_HEADER_BYTES,
    NUMPY_DTYPES,
    TENSOR_DTYPES,
    DataclassRecord,
    GeneratorState,
    HandleRef,
    ProtocolError,
)


def roundtrip(value: Any, **kwargs: Any) -> Any:
    return protocol.read_frame(io.BytesIO(protocol.dumps(value)), **kwargs)


def frame(msg: Any, buffers: tuple[bytes, ...] = (), sizes: list[Any] | None = None) -> bytes:
    """A hand-made frame, as a hostile worker could write it."""
    header = {"msg": msg, "buffers": [len(b) for b in buffers] if sizes is None else sizes}
    return header_frame(json.dumps(header).encode("utf-8"), b"".join(buffers))


def header_frame(header: bytes, payload: bytes = b"") -> bytes:
    return protocol.HEADER.pack(len(header)) + header + payload


def decode(data: bytes, **kwargs: Any) -> Any:
    return protocol.read_frame(io.BytesIO(data), **kwargs)


def tensor_node(dtype: str = "float32", shape: Any = (2,), buf: Any = 0, **extra: Any) -> dict:
    shape = list(shape) if isinstance(shape, tuple) else shape
    return {"~": "tensor", "dtype": dtype, "shape": shape, "buf": buf, **extra}


def sample_tensor(dtype_name: str) -> torch.Tensor:
    """A [2, 3] tensor of ``dtype_name`` with distinct, non-trivial values."""
    dtype = getattr(torch, dtype_name)
    g = torch.Generator().manual_seed(0)
    if dtype is torch.bool:
        return torch.tensor([[True, False, True], [False, False, True]])
    if dtype.is_complex:
        return torch.randn(2, 3, generator=g, dtype=dtype)
    if dtype.is_floating_point:
        return torch.randn(2, 3, generator=g, dtype=torch.float64).to(dtype)
    return torch.tensor([[0, 1, -2], [3, 100, -7]]).to(dtype)


# -- round trips: JSON-like values ------------------------------------------------------------
@pytest.mark.parametrize("value", [
    None, True, False, 0, 1, -1, 2**53 - 1, -(2**53 - 1), 2**53, -(2**53), 2**64 + 1,
    -(2**100), 10**40, 0.0, 1.5, -2.25, 1e308, 5e-324, "", "plain", "héllo ~ \u2603 \x00",
    b"", b"\x00\xff raw", [], [1, "a", None], (), (1, "two", 3.0),
    {}, {"a": 1, "b": [2, 3]},
], ids=repr)
def test_json_like_values_round_trip_with_their_exact_type(value):
    got = roundtrip(value)
    assert type(got) is type(value)
    assert got == value


def test_ints_beyond_float_precision_keep_every_digit():
    """Does an int above 2**53 survive without being rounded through a JSON float?"""
    for n in (2**53 + 1, -(2**53 + 1), 2**63 - 1, 2**64 + 1, 3**100):
        got = roundtrip(n)
        assert type(got) is int and got == n


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_infinities_round_trip(value):
    got = roundtrip(value)
    assert type(got) is float and got == value


def test_nan_round_trips_as_a_float_nan():
    got = roundtrip(math.nan)
    assert type(got) is float and math.isnan(got)


def test_negative_zero_keeps_its_sign():
    assert math.copysign(1.0, roundtrip(-0.0)) == -1.0


def test_bytearray_arrives_as_bytes():
    assert roundtrip(bytearray(b"abc")) == b"abc"


def test_dict_with_non_string_keys_round_trips_in_order():
    value = {1: "int", (1, "x"): "tuple", None: "none", 2.5: "float", b"k": "bytes",
             2**60: "big", "s": "str"}
    got = roundtrip(value)
    assert got == value
    assert list(got) == list(value)
    assert all(type(k) is type(v) for k, v in zip(got, value, strict=True))


def test_dict_holding_the_tag_key_is_not_mistaken_for_a_tagged_value():
    """A str-keyed dict that looks like a tagged tensor must come back as that same dict."""
    lookalike = {"~": "tensor", "dtype": "float32", "shape": [1], "buf": 0}
    assert roundtrip(lookalike) == lookalike
    assert roundtrip({"~": 1, "a": [2]}) == {"~": 1, "a": [2]}
    assert roundtrip({"~": {"~": "bytes"}}) == {"~": {"~": "bytes"}}


def test_nested_containers_round_trip():
    value = {"a": [1, (2, {"b": [b"x", None, {3: ("deep", 4.5)}]})], "c": ((), [[]], {})}
    got = roundtrip(value)
    assert got == value
    assert type(got["a"][1]) is tuple
    assert type(got["a"][1][1]["b"][2][3]) is tuple


def test_named_tuples_arrive_as_plain_tuples():
    values, indices = torch.tensor([[1.0, 5.0], [7.0, 2.0]]).max(dim=1)
    got = roundtrip(torch.tensor([[1.0, 5.0], [7.0, 2.0]]).max(dim=1))
    assert type(got) is tuple and len(got) == 2
    assert torch.equal(got[0], values) and torch.equal(got[1], indices)


@pytest.mark.parametrize("path", [Path("a/b.txt"), Path("/abs/dir"), PurePosixPath("x/y.pt")],
                         ids=str)
def test_paths_round_trip_as_paths(path):
    got = roundtrip(path)
    assert isinstance(got, Path)
    assert str(got) == str(path)


def test_several_frames_on_one_stream_are_read_in_order_then_eof():
    stream = io.BytesIO()
    protocol.write_frame(stream, {"n": 1})
    protocol.write_frame(stream, [torch.ones(2)])
    stream.seek(0)
    assert protocol.read_frame(stream) == {"n": 1}
    assert torch.equal(protocol.read_frame(stream)[0], torch.ones(2))
    with pytest.raises(EOFError):
        protocol.read_frame(stream)


# -- round trips: tensors -----------------------------------------------------------------------
@pytest.mark.parametrize("dtype_name", TENSOR_DTYPES)
def test_tensor_of_every_allowed_dtype_round_trips_bit_for_bit(dtype_name):
    t = sample_tensor(dtype_name)
    got = roundtrip(t)
    assert type(got) is torch.Tensor
    assert got.dtype == t.dtype and got.shape == t.shape
    assert torch.equal(got, t)
    assert got.view(torch.uint8).tolist() == t.view(torch.uint8).tolist()


@pytest.mark.parametrize("dtype_name", TENSOR_DTYPES)
def test_zero_dim_tensor_round_trips(dtype_name):
    t = sample_tensor(dtype_name)[1, 2].clone()
    got = roundtrip(t)
    assert got.shape == torch.Size([]) and got.dtype == t.dtype
    assert torch.equal(got, t)


@pytest.mark.parametrize("shape", [(0,), (0, 4), (3, 0, 2)], ids=str)
@pytest.mark.parametrize("dtype_name", ["float32", "int64", "bool", "complex64"])
def test_empty_tensor_round_trips_with_its_shape(shape, dtype_name):
    t = torch.zeros(shape, dtype=getattr(torch, dtype_name))
    got = roundtrip(t)
    assert type(got) is torch.Tensor
    assert got.shape == t.shape and got.dtype == t.dtype


@pytest.mark.parametrize("make", [
    lambda: torch.arange(12.0).reshape(3, 4).t(),
    lambda: torch.arange(24).reshape(4, 6)[:, ::2],
    lambda: torch.arange(3.0).reshape(3, 1).expand(3, 5),
    lambda: torch.arange(60.0).reshape(3, 4, 5).permute(2, 0, 1)[1:, :, 2:],
    lambda: torch.tensor([1 + 2j, 3 - 4j, -5 + 0.5j]).conj(),
    lambda: torch.randn(4, 6, generator=torch.Generator().manual_seed(1)).to(
        torch.bfloat16).t(),
], ids=["transposed", "strided-slice", "expanded", "permuted-slice", "conj-view",
        "bf16-transposed"])
def test_non_contiguous_tensor_arrives_with_the_same_values(make):
    t = make()
    got = roundtrip(t)
    assert type(got) is torch.Tensor
    assert got.shape == t.shape and got.dtype == t.dtype
    assert torch.equal(got, t.resolve_conj())


def test_bfloat16_and_complex_values_are_exact():
    b = torch.tensor([1 / 3, -1e30, 3.0e38, 1e-38], dtype=torch.bfloat16)
    c = torch.tensor([1 / 3 + 2j / 7, -1e300 + 1e-300j], dtype=torch.complex128)
    got_b, got_c = roundtrip([b, c])
    assert got_b.dtype == torch.bfloat16 and torch.equal(got_b, b)
    assert got_c.dtype == torch.complex128 and torch.equal(got_c, c)


def test_non_finite_tensor_values_survive():
    t = torch.tensor([math.nan, math.inf, -math.inf, -0.0, 1.0])
    got = roundtrip(t)
    assert got.view(torch.int32).tolist() == t.view(torch.int32).tolist()


def test_negative_bit_view_is_sent_with_its_true_values():
    """A legitimate student result such as ``z.conj().imag`` must arrive as its values."""
    view = torch.tensor([1 + 2j]).conj().imag  # one element: contiguous, so not copied
    assert view.is_neg() and view.is_contiguous()
    got = roundtrip(view)
    assert torch.equal(got, torch.tensor([-2.0]))


def test_requires_grad_flag_crosses_for_leaves_and_results():
    x = torch.randn(3, requires_grad=True)
    got_leaf, got_result, got_plain = roundtrip([x, x * 2, torch.ones(2)])
    assert got_leaf.requires_grad and got_leaf.is_leaf and got_leaf.grad_fn is None
    assert got_result.requires_grad and got_result.is_leaf
    assert torch.equal(got_result, (x * 2).detach())
    assert not got_plain.requires_grad


def test_parameter_arrives_as_a_plain_tensor_that_requires_grad():
    p = torch.nn.Parameter(torch.arange(4.0))
    got = roundtrip(p)
    assert type(got) is torch.Tensor
    assert got.requires_grad and torch.equal(got, p.detach())


def test_decoded_tensors_are_plain_and_own_their_memory():
    """Does mutating a decoded tensor leave a second decode of the same frame untouched?"""
    data = protocol.dumps({"t": torch.arange(6.0).reshape(2, 3), "n": np.arange(4)})
    snapshot = bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch.frombuffer on read-only bytes
        first = decode(data)
        second = decode(data)
    assert type(first["t"]) is torch.Tensor
    first["t"].add_(100)
    first["n"] += 100
    assert torch.equal(second["t"], torch.arange(6.0).reshape(2, 3))
    assert np.array_equal(second["n"], np.arange(4))
    assert data == snapshot


def test_device_map_places_decoded_tensors():
    seen = []

    def to_meta(device: str) -> str:
        seen.append(device)
        return "meta"

    got = roundtrip(torch.ones(2, 3), device_map=to_meta)
    assert seen == ["cpu"]
    assert got.device.type == "meta" and got.shape == (2, 3)


# -- round trips: torch objects -----------------------------------------------------------------
def test_torch_size_arrives_as_an_equal_tuple_of_ints():
    got = roundtrip(torch.Size([2, 0, 5]))
    assert isinstance(got, tuple) and got == (2, 0, 5)
    assert all(type(d) is int for d in got)


@pytest.mark.parametrize("dtype_name", TENSOR_DTYPES)
def test_every_allowed_dtype_round_trips(dtype_name):
    assert roundtrip(getattr(torch, dtype_name)) is getattr(torch, dtype_name)


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:1", "meta"])
def test_devices_round_trip(device):
    got = roundtrip(torch.device(device))
    assert type(got) is torch.device and got == torch.device(device)


def test_decoded_generator_reproduces_the_same_draws():
    g = torch.Generator().manual_seed(1234)
    torch.rand(17, generator=g)  # not at the seed's start
    got = roundtrip(g)
    assert type(got) is torch.Generator and got is not g
    assert torch.equal(torch.rand(50, generator=got), torch.rand(50, generator=g))
    assert torch.equal(torch.randn(3, 3, generator=got), torch.randn(3, 3, generator=g))


def test_generator_state_record_decodes_to_a_generator():
    g = torch.Generator().manual_seed(5)
    state = GeneratorState("cpu", g.get_state().numpy().tobytes())
    got = roundtrip(state)
    assert torch.equal(torch.rand(8, generator=got), torch.rand(8, generator=g))


# -- round trips: numpy -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype_name", NUMPY_DTYPES)
def test_numpy_array_of_every_allowed_dtype_round_trips(dtype_name):
    a = np.array([[0, 1, 2], [3, 4, 5]]).astype(dtype_name)
    got = roundtrip(a)
    assert type(got) is np.ndarray
    assert got.dtype == a.dtype and got.shape == a.shape
    assert np.array_equal(got, a)
    assert got.flags.writeable


@pytest.mark.parametrize("a", [
    np.arange(12.0).reshape(3, 4).T, np.arange(10)[::3], np.zeros((0, 2), dtype=np.int32),
    np.array([np.nan, np.inf, -np.inf]), np.array([2**64 - 1], dtype=np.uint64),
], ids=["transposed", "strided", "empty", "non-finite", "uint64-max"])
def test_numpy_edge_arrays_round_trip(a):
    got = roundtrip(a)
    assert got.dtype == a.dtype and got.shape == a.shape
    assert np.array_equal(got, a, equal_nan=a.dtype.kind == "f")


@pytest.mark.parametrize("dtype_name", ["float64", "int32", "bool"])
def test_zero_dim_numpy_array_keeps_its_shape(dtype_name):
    a = np.array(1).astype(dtype_name)
    got = roundtrip(a)
    assert type(got) is np.ndarray and got.shape == () and got.dtype == a.dtype
    assert got == a


@pytest.mark.parametrize(("scalar", "want"), [
    (np.float32(1.5), 1.5), (np.float64(-2.25), -2.25), (np.float16(0.5), 0.5),
    (np.int8(-3), -3), (np.int64(2**60), 2**60), (np.uint64(2**64 - 1), 2**64 - 1),
    (np.bool_(True), True), (np.bool_(False), False), (np.float64(np.inf), math.inf),
], ids=repr)
def test_numpy_scalars_arrive_as_python_numbers(scalar, want):
    got = roundtrip(scalar)
    assert type(got) is type(want) and got == want


def test_numpy_nan_scalar_arrives_as_float_nan():
    got = roundtrip(np.float32(np.nan))
    assert type(got) is float and math.isnan(got)


# -- round trips: dataclasses and handles -------------------------------------------------------
@dataclasses.dataclass
class Inner:
    label: str
    weight: torch.Tensor


@dataclasses.dataclass(frozen=True)
class Outer:
    step: int
    loss: float
    inner: Inner
    history: list


def test_dataclass_instance_becomes_a_record_with_attribute_access():
    value = Outer(step=3, loss=0.25, inner=Inner("w", torch.ones(2, 2)), history=[1.0, 0.5])
    got = roundtrip(value)
    assert type(got) is DataclassRecord
    assert got.type_name == "Outer"
    assert got.step == 3 and got.loss == 0.25 and got.history == [1.0, 0.5]
    assert type(got.inner) is DataclassRecord and got.inner.type_name == "Inner"
    assert got.inner.label == "w" and torch.equal(got.inner.weight, torch.ones(2, 2))
    assert set(got.fields) == {"step", "loss", "inner", "history"}
    with pytest.raises(AttributeError, match="no field 'missing'"):
        _ = got.missing


def test_record_round_trips_as_an_equal_record():
    record = DataclassRecord("Stats", {"mean": 0.5, "counts": [1, 2]})
    assert roundtrip(record) == record


def test_a_dataclass_type_itself_is_not_plain_data():
    with pytest.raises(ProtocolError):
        protocol.dumps(Inner)


def test_records_can_be_copied():
    record = DataclassRecord("Stats", {"mean": 0.5, "counts": [1, 2]})
    import copy

    assert copy.deepcopy(record) == record
    assert copy.copy(record) == record


def test_handle_ref_round_trips_and_can_be_resolved():
    ref = HandleRef(7, "ProjectionHead")
    assert roundtrip(ref) == ref
    resolved = []
    got = roundtrip([ref], resolve_handle=lambda r: resolved.append(r) or f"object {r.id}")
    assert got == ["object 7"] and resolved == [ref]


def test_unknown_objects_become_handles_through_handle_for():
    class Model:
        pass

    model = Model()
    calls = []

    def handle_for(obj):
        calls.append(obj)
        return HandleRef(42, type(obj).__qualname__)

    got = decode(protocol.dumps({"m": model}, handle_for=handle_for))
    assert calls == [model]
    assert got == {"m": HandleRef(42, model.__class__.__qualname__)}


# -- rejections by the encoder ------------------------------------------------------------------
class LyingTensor(torch.Tensor):
    """A submission's tensor whose torch functions lie (e.g. allclose always True)."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func is torch.allclose:
            return True
        return super().__torch_function__(func, types, args, kwargs or {})


def test_tensor_subclass_is_refused():
    lying = torch.zeros(3).as_subclass(LyingTensor)
    assert torch.allclose(lying, torch.ones(3))  # the lie the protocol must not carry
    with pytest.raises(ProtocolError):
        protocol.dumps(lying)
    with pytest.raises(ProtocolError):
        protocol.dumps({"nested": [lying]})


def test_tensor_subclass_is_refused_with_a_clear_message_even_where_handles_are_made():
    lying = torch.zeros(3).as_subclass(LyingTensor)
    with pytest.raises(ProtocolError, match="subclass"):
        protocol.dumps(lying, handle_for=lambda obj: HandleRef(1, type(obj).__qualname__))


@pytest.mark.parametrize("make", [
    lambda: torch.eye(3).to_sparse(),
    lambda: torch.eye(3).to_sparse_csr(),
], ids=["coo", "csr"])
def test_sparse_tensor_is_refused(make):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR is in beta"
        sparse = make()
    with pytest.raises(ProtocolError, match="dense"):
        protocol.dumps(sparse)


def test_nested_tensor_is_refused():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "nested tensors are a prototype"
        nested = torch.nested.nested_tensor([torch.zeros(2), torch.zeros(3)])
    with pytest.raises(ProtocolError):
        protocol.dumps(nested)


@pytest.mark.parametrize("dtype", [torch.uint16, torch.float8_e4m3fn, torch.quint8],
                         ids=str)
def test_tensor_of_an_unlisted_dtype_is_refused(dtype):
    if dtype is torch.quint8:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # quantized dtypes are deprecated
            t = torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.quint8)
    else:
        t = torch.zeros(2).to(dtype)
    with pytest.raises(ProtocolError):
        protocol.dumps(t)


@pytest.mark.parametrize("a", [
    np.array([object(), 1], dtype=object), np.array(["a", "b"]),
    np.array([1 + 2j]), np.zeros(2, dtype=[("x", "f4")]),
], ids=["object", "str", "complex", "structured"])
def test_numpy_array_of_an_unlisted_dtype_is_refused(a):
    with pytest.raises(ProtocolError):
        protocol.dumps(a)


@pytest.mark.parametrize("value", [
    object(), lambda: 1, {1, 2}, frozenset(), 1 + 2j, ..., type, print, iter([]),
    Path.cwd, np.complex64(1), torch.nn.Linear(2, 2),
], ids=lambda v: type(v).__name__)
def test_arbitrary_object_without_handle_for_is_refused(value):
    with pytest.raises(ProtocolError, match="cannot send"):
        protocol.dumps(value)


def test_handle_for_returning_none_still_refuses():
    with pytest.raises(ProtocolError):
        protocol.dumps(object(), handle_for=lambda obj: None)


def nested_lists(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_values_nested_up_to_the_limit_are_sent():
    assert roundtrip(nested_lists(MAX_DEPTH)) == nested_lists(MAX_DEPTH)


@pytest.mark.parametrize("wrap", [
    lambda v: v, lambda v: {"k": v}, lambda v: (v,), lambda v: {1: v},
], ids=["list", "dict", "tuple", "dict-non-str-key"])
def test_value_nested_deeper_than_max_depth_is_refused(wrap):
    with pytest.raises(ProtocolError, match="nested"):
        protocol.dumps(wrap(nested_lists(MAX_DEPTH + 5)))


def test_self_referential_value_is_refused_not_a_recursion_error():
    loop: list = []
    loop.append(loop)
    with pytest.raises(ProtocolError):
        protocol.dumps(loop)


# -- hostile frames -----------------------------------------------------------------------------
def test_frame_nested_deeper_than_max_depth_is_refused():
    deep: Any = 1
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(ProtocolError, match="nested"):
        decode(frame(deep))


def test_header_nested_beyond_the_json_parser_is_refused():
    header = b'{"msg":' + b"[" * 100_000 + b"]" * 100_000 + b',"buffers":[]}'
    with pytest.raises(ProtocolError):
        decode(header_frame(header))


def test_header_with_a_huge_integer_literal_is_refused():
    header = b'{"msg":' + b"7" * 5000 + b',"buffers":[]}'
    with pytest.raises(ProtocolError):
        decode(header_frame(header))


@pytest.mark.parametrize(("dtype", "shape", "nbytes"), [
    ("float32", [2], 7), ("float32", [2], 9), ("float32", [2, 3], 8), ("float64", [], 4),
    ("complex64", [1], 4), ("bool", [3], 0), ("float32", [0], 4),
])
def test_tensor_buffer_that_does_not_match_shape_and_dtype_is_refused(dtype, shape, nbytes):
    with pytest.raises(ProtocolError, match="does not match"):
        decode(frame(tensor_node(dtype, shape), (b"\0" * nbytes,)))


def test_ndarray_buffer_that_does_not_match_shape_and_dtype_is_refused():
    node = {"~": "ndarray", "dtype": "int32", "shape": [3], "buf": 0}
    with pytest.raises(ProtocolError, match="does not match"):
        decode(frame(node, (b"\0" * 11,)))


def test_huge_shape_with_a_small_buffer_is_refused_without_allocating():
    with pytest.raises(ProtocolError):
        decode(frame(tensor_node("float64", [2**31, 2**31, 2**31]), (b"\0" * 8,)))
    with pytest.raises(ProtocolError):
        decode(frame(tensor_node("float32", [0, 2**64]), (b"",)))


@pytest.mark.parametrize("shape", [
    [-1], [2, -3], [2.0], ["2"], [True], [None], [[2]], 4, "2,2", None, {"0": 2}, [1] * 33,
], ids=repr)
@pytest.mark.parametrize("tag", ["tensor", "ndarray"])
def test_bad_shape_is_refused(tag, shape):
    node = {"~": tag, "dtype": "float32", "shape": shape, "buf": 0}
    with pytest.raises(ProtocolError):
        decode(frame(node, (b"\0" * 8,)))


@pytest.mark.parametrize("tag", ["pickle", "object", "__init__", "", "TENSOR", 7, True, ["x"]],
                         ids=repr)
def test_unknown_tag_is_refused(tag):
    with pytest.raises(ProtocolError, match="unknown tag"):
        decode(frame({"~": tag, "v": 1}))


@pytest.mark.parametrize("name", ["object", "float8_e4m3fn", "uint16", "qint8", "torch.float32",
                                  "Tensor", "", 5, None])
def test_unknown_tensor_dtype_is_refused(name):
    with pytest.raises(ProtocolError):
        decode(frame(tensor_node(name, [1]), (b"\0" * 8,)))


@pytest.mark.parametrize("name", ["object", "O", "complex128", "U8", "V8", "<f8"])
def test_unknown_ndarray_dtype_is_refused(name):
    node = {"~": "ndarray", "dtype": name, "shape": [1], "buf": 0}
    with pytest.raises(ProtocolError):
        decode(frame(node, (b"\0" * 8,)))


@pytest.mark.parametrize("name", ["object", "Tensor", "nn", "manual_seed", 3])
def test_unknown_dtype_value_is_refused(name):
    with pytest.raises(ProtocolError):
        decode(frame({"~": "dtype", "v": name}))


@pytest.mark.parametrize("index", [1, 5, -1, "0", True, 0.0, None, [0]], ids=repr)
@pytest.mark.parametrize("tag", ["tensor", "bytes", "ndarray", "generator"])
def test_bad_buffer_index_is_refused(tag, index):
    node = {"~": tag, "dtype": "uint8", "shape": [1], "device": "cpu", "buf": index}
    with pytest.raises(ProtocolError, match="buffer index"):
        decode(frame(node, (b"\0",)))


@pytest.mark.parametrize("v", ["1e400", "NaN", "Infinity", "infinity", "nan ", "1.5", 1.5,
                               None, ["nan"], "__import__('os')"], ids=repr)
def test_float_tag_with_another_value_is_refused(v):
    with pytest.raises(ProtocolError):
        decode(frame({"~": "float", "v": v}))


@pytest.mark.parametrize("node", [
    {"~": "int", "v": "12x"}, {"~": "int", "v": "7" * 5000}, {"~": "tuple", "v": 5},
    {"~": "dict", "items": [[1]]}, {"~": "dict", "items": [[[1], 2]]},
    {"~": "dict", "items": [[{"~": "tuple", "v": [[1]]}, 2]]}, {"~": "handle", "id": "x"},
    {"~": "tensor"}, {"~": "record", "type": "A"},
], ids=lambda n: json.dumps(n)[:40])
def test_malformed_tagged_values_are_refused(node):
    with pytest.raises(ProtocolError):
        decode(frame(node))


@pytest.mark.parametrize("fields", [[], "ab", 3])
def test_record_whose_fields_are_not_an_object_is_refused(fields):
    with pytest.raises(ProtocolError):
        decode(frame({"~": "record", "type": "A", "fields": fields}))


def test_generator_with_a_bad_state_is_refused():
    with pytest.raises(ProtocolError):
        decode(frame({"~": "generator", "device": "cpu", "buf": 0}, (b"abc",)))


@pytest.mark.parametrize("node", [
    {"~": "device", "v": "bogus:0"},
    tensor_node("float32", [1], device="bogus"),
], ids=["device", "tensor-device"])
def test_unknown_device_is_refused(node):
    with pytest.raises(ProtocolError):
        decode(frame(node, (b"\0" * 4,)), device_map=lambda device: device)


class ReadRecorder(io.BytesIO):
    """A stream that records how much each read asked for."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.asked: list[int] = []

    def read(self, n: int | None = -1) -> bytes:
        self.asked.append(-1 if n is None else n)
        return super().read(n)


@pytest.mark.parametrize("claimed", [MAX_HEADER_BYTES + 1, 2**40, 2**64 - 1])
def test_header_claiming_a_huge_size_is_refused_before_reading_it(claimed):
    stream = ReadRecorder(protocol.HEADER.pack(claimed) + b"{}")
    with pytest.raises(ProtocolError, match="too large"):
        protocol.read_frame(stream)
    assert sum(stream.asked) == protocol.HEADER.size


def test_buffers_claiming_more_than_the_frame_limit_are_refused_before_reading():
    data = frame({"~": "bytes", "buf": 0}, sizes=[protocol.MAX_FRAME_BYTES + 1])
    stream = ReadRecorder(data)
    with pytest.raises(ProtocolError, match="too large"):
        protocol.read_frame(stream)
    assert max(stream.asked) < 1024
    small = frame({"~": "bytes", "buf": 0}, (b"x" * 100,))
    with pytest.raises(ProtocolError):
        decode(small, max_bytes=99)
    assert decode(small, max_bytes=len(small)) == b"x" * 100


def test_dumps_refuses_a_value_the_peer_would_refuse_as_too_large():
    with pytest.raises(ProtocolError, match="too large"):
        protocol.dumps(b"x" * 200, max_bytes=100)
    data = protocol.dumps(b"x" * 200, max_bytes=len(protocol.dumps(b"x" * 200)))
    assert decode(data, max_bytes=len(data)) == b"x" * 200


@pytest.mark.parametrize("sizes", [[-1], [1.5], ["3"], [True], 3, None, {"0": 1}], ids=repr)
def test_malformed_buffer_table_is_refused(sizes):
    header = json.dumps({"msg": None, "buffers": sizes}).encode()
    with pytest.raises(ProtocolError):
        decode(header_frame(header, b"\0" * 8))


@pytest.mark.parametrize("header", [
    b"{not json", b"\xff\xfe\x00", b"", b"[]", b'"msg"', b"null", b'{"msg": 1}',
], ids=repr)
def test_header_that_is_not_a_json_frame_object_is_refused(header):
    with pytest.raises(ProtocolError):
        decode(header_frame(header))


def test_truncated_stream_raises_eof_at_every_cut():
    data = protocol.dumps({"t": torch.arange(4.0), "b": b"tail"})
    for cut in range(len(data)):
        with pytest.raises(EOFError):
            decode(data[:cut])


# -- decoding never runs code -------------------------------------------------------------------
class CreatesFile:
    """Unpickling this creates ``path``: the canary for any unpickling on decode."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickle_payload_in_a_buffer_decodes_as_bytes_and_never_runs(tmp_path):
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(CreatesFile(str(control)))).close()
    assert control.exists()  # the payload is live: unpickling it would create the file

    canary = tmp_path / "canary"
    payload = pickle.dumps(CreatesFile(str(canary)))
    as_tensor = tensor_node("uint8", [len(payload)])
    as_array = {"~": "ndarray", "dtype": "uint8", "shape": [len(payload)], "buf": 0}
    got_tensor = decode(frame(as_tensor, (payload,)))
    got_array = decode(frame(as_array, (payload,)))
    got_bytes = decode(frame({"~": "bytes", "buf": 0}, (payload,)))
    assert type(got_tensor) is torch.Tensor and got_tensor.dtype == torch.uint8
    assert bytes(got_tensor.tolist()) == payload
    assert got_array.tobytes() == payload
    assert got_bytes == payload
    assert not canary.exists()


def test_decoding_every_kind_of_value_never_calls_pickle(monkeypatch):
    value = {
        "t": torch.randn(2, 3, requires_grad=True), "n": np.arange(3), "g": torch.Generator(),
        "d": torch.float16, "dev": torch.device("cpu"), "rec": Inner("x", torch.ones(1)),
        "h": HandleRef(1, "M"), "p": Path("a"), "b": b"\x80\x04", 1: (2**60, math.nan),
    }
    data = protocol.dumps(value)

    def forbidden(*args, **kwargs):
        raise AssertionError("decoding reached pickle")

    for name in ("loads", "load", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(np, "load", forbidden)
    got = decode(data)
    assert set(got) == set(value)

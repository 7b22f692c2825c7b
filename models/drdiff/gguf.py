"""GGUF v3 reader and writer (little-endian), written from the format description.

Layout: magic "GGUF", version u32 = 3, tensor_count u64, kv_count u64, the key/value
pairs, the tensor infos (name, n_dims u32, ne[] u64 fastest-first, type u32, offset u64
relative to the data section), padding to `general.alignment` (default 32), the data.

Tensors are exchanged as numpy arrays in their logical row-major shape; the reader
dequantizes every supported type to float32.
"""
import mmap
import struct
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"GGUF"
VERSION = 3
DEFAULT_ALIGNMENT = 32

# Metadata value types (GGUF numbering).
U8, I8, U16, I16, U32, I32, F32V, BOOL, STRING, ARRAY, U64, I64, F64V = range(13)
_SCALAR_FORMATS = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i",
                   F32V: "<f", BOOL: "<?", U64: "<Q", I64: "<q", F64V: "<d"}

# Tensor types (GGUF numbering), the subset SPEC section 3 allows.
F32, F16, Q8_0, BF16 = 0, 1, 8, 30
QK8_0 = 32                      # values per Q8_0 block
Q8_0_BLOCK_BYTES = 2 + QK8_0    # f16 scale + 32 int8


def tensor_nbytes(ttype, n_elements):
    if ttype == F32:
        return 4 * n_elements
    if ttype in (F16, BF16):
        return 2 * n_elements
    if ttype == Q8_0:
        return n_elements // QK8_0 * Q8_0_BLOCK_BYTES
    raise ValueError(f"unsupported tensor type {ttype}")


# ------------------------------------------------------------------ conversions

def f32_to_bf16_bits(x):
    """Round-to-nearest-even f32 -> bf16, NaN kept NaN (quiet bit set)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    rounded = np.where(nan, (bits >> 16) | 0x40, rounded)
    return rounded.astype(np.uint16)


def bf16_bits_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def quantize_q8_0(x):
    """Flat f32 values (a multiple of 32) -> Q8_0 bytes.

    d = max|x| / 127 per block and q = round(x / d) with halves away from zero (C's
    roundf, as ggml does); an all-zero block gets d = 0 and q = 0.
    """
    blocks = np.asarray(x, dtype=np.float32).reshape(-1, QK8_0)
    d = np.abs(blocks).max(axis=1) / np.float32(127)
    safe = np.where(d == 0, np.float32(1), d)
    scaled = blocks / safe[:, None]
    whole = np.trunc(scaled)
    # halves away from zero; scaled − whole is exact, unlike scaled + 0.5
    q = whole + np.sign(scaled) * (np.abs(scaled - whole) >= 0.5)
    q = np.where(d[:, None] == 0, 0, q)
    out = np.empty((blocks.shape[0], Q8_0_BLOCK_BYTES), dtype=np.uint8)
    out[:, :2] = d.astype(np.float16)[:, None].view(np.uint8)
    out[:, 2:] = np.clip(q, -127, 127).astype(np.int8).view(np.uint8)
    return out.reshape(-1)


def dequantize_q8_0(raw):
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q8_0_BLOCK_BYTES)
    d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    q = blocks[:, 2:].view(np.int8).astype(np.float32)
    return (d * q).reshape(-1)


def encode_tensor(x, ttype):
    """Logical-shape float array -> the bytes GGUF stores for `ttype`."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if ttype == F32:
        return x.reshape(-1).view(np.uint8)
    if ttype == F16:
        return x.astype(np.float16).reshape(-1).view(np.uint8)
    if ttype == BF16:
        return f32_to_bf16_bits(x).reshape(-1).view(np.uint8)
    if ttype == Q8_0:
        if x.ndim == 0 or x.shape[-1] % QK8_0:
            raise ValueError(f"Q8_0 needs rows that are a multiple of {QK8_0}, got {x.shape}")
        return quantize_q8_0(x)
    raise ValueError(f"unsupported tensor type {ttype}")


def decode_tensor(raw, ttype, shape):
    """Stored bytes -> float32 array of the logical (row-major) shape."""
    if ttype == F32:
        flat = np.frombuffer(raw, dtype="<f4").copy()
    elif ttype == F16:
        flat = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    elif ttype == BF16:
        flat = bf16_bits_to_f32(np.frombuffer(raw, dtype="<u2"))
    elif ttype == Q8_0:
        flat = dequantize_q8_0(raw)
    else:
        raise ValueError(f"unsupported tensor type {ttype}")
    return flat.reshape(shape)


# ------------------------------------------------------------------ writer

@dataclass
class TensorEntry:
    name: str
    shape: tuple          # logical row-major shape
    ttype: int
    data: object          # array, or a callable returning one (lets big files stream)


@dataclass
class GGUFWriter:
    """Collects typed key/values and tensors, then writes the file in one pass."""
    alignment: int = DEFAULT_ALIGNMENT
    kv: list = field(default_factory=list)        # (key, type, value[, elem type])
    tensors: list = field(default_factory=list)

    def add(self, key, vtype, value):
        self.kv.append((key, vtype, value, None))

    def add_array(self, key, elem_type, values):
        self.kv.append((key, ARRAY, list(values), elem_type))

    def add_tensor(self, name, shape, ttype, data):
        self.tensors.append(TensorEntry(name, tuple(int(s) for s in shape), ttype, data))

    def write(self, path):
        kv = list(self.kv)
        if self.alignment != DEFAULT_ALIGNMENT:
            kv.append(("general.alignment", U32, self.alignment, None))
        head = bytearray()
        head += MAGIC + struct.pack("<IQQ", VERSION, len(self.tensors), len(kv))
        for key, vtype, value, elem_type in kv:
            head += _pack_string(key) + struct.pack("<I", vtype)
            head += _pack_value(vtype, value, elem_type)
        offsets, offset = [], 0
        for t in self.tensors:
            offsets.append(offset)
            n = int(np.prod(t.shape, dtype=np.int64))
            offset = _align(offset + tensor_nbytes(t.ttype, n), self.alignment)
        for t, off in zip(self.tensors, offsets):
            head += _pack_string(t.name) + struct.pack("<I", len(t.shape))
            head += struct.pack(f"<{len(t.shape)}Q", *reversed(t.shape))  # ne: fastest first
            head += struct.pack("<IQ", t.ttype, off)
        with open(path, "wb") as f:
            f.write(head)
            f.write(bytes(_align(len(head), self.alignment) - len(head)))
            for t in self.tensors:
                arr = t.data() if callable(t.data) else t.data
                if tuple(np.shape(arr)) != t.shape:
                    raise ValueError(f"{t.name}: data shape {np.shape(arr)} != {t.shape}")
                raw = encode_tensor(arr, t.ttype)
                f.write(raw.tobytes())
                f.write(bytes(_align(raw.nbytes, self.alignment) - raw.nbytes))


def _align(x, a):
    return (x + a - 1) // a * a


def _pack_string(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


def _pack_value(vtype, value, elem_type=None):
    if vtype == STRING:
        return _pack_string(value)
    if vtype == ARRAY:
        out = struct.pack("<IQ", elem_type, len(value))
        return out + b"".join(_pack_value(elem_type, v) for v in value)
    return struct.pack(_SCALAR_FORMATS[vtype], value)


# ------------------------------------------------------------------ reader

@dataclass
class GGUFFile:
    metadata: dict        # key -> value (arrays as lists, strings as str)
    types: dict           # key -> value type; arrays as (ARRAY, elem type)
    tensors: dict         # name -> float32 array in logical shape
    tensor_types: dict    # name -> tensor type


class _Cursor:
    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, fmt):
        vals = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return vals[0] if len(vals) == 1 else vals

    def string(self):
        n = self.take("<Q")
        if self.pos + n > len(self.buf):
            raise ValueError("GGUF string runs past the end of the file")
        s = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return s.decode("utf-8")

    def value(self, vtype):
        if vtype == STRING:
            return self.string()
        if vtype == ARRAY:
            elem_type, count = self.take("<IQ")
            return [self.value(elem_type) for _ in range(count)]
        if vtype not in _SCALAR_FORMATS:
            raise ValueError(f"unknown GGUF value type {vtype}")
        return self.take(_SCALAR_FORMATS[vtype])


def read_gguf(path):
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        return _parse(buf)


def _parse(buf):
    c = _Cursor(buf)
    if bytes(buf[:4]) != MAGIC:
        raise ValueError("not a GGUF file (bad magic)")
    c.pos = 4
    version, n_tensors, n_kv = c.take("<IQQ")
    if version != VERSION:
        raise ValueError(f"GGUF version {version} unsupported (want {VERSION})")
    metadata, types = {}, {}
    for _ in range(n_kv):
        key = c.string()
        vtype = c.take("<I")
        # arrays record their element type too, peeked before value() consumes it
        types[key] = (ARRAY, struct.unpack_from("<I", buf, c.pos)[0]) if vtype == ARRAY else vtype
        metadata[key] = c.value(vtype)
    infos = []
    for _ in range(n_tensors):
        name = c.string()
        n_dims = c.take("<I")
        ne = [c.take("<Q") for _ in range(n_dims)]
        ttype, offset = c.take("<IQ")
        infos.append((name, tuple(reversed(ne)), ttype, offset))
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    data_start = _align(c.pos, alignment)
    tensors, tensor_types = {}, {}
    for name, shape, ttype, offset in infos:
        n = int(np.prod(shape, dtype=np.int64))
        if ttype == Q8_0 and (not shape or shape[-1] % QK8_0):
            raise ValueError(f"{name}: Q8_0 row length {shape} not a multiple of {QK8_0}")
        nbytes = tensor_nbytes(ttype, n)
        start = data_start + offset
        if offset % alignment or start + nbytes > len(buf):
            raise ValueError(f"{name}: offset {offset} misaligned or outside the file")
        tensors[name] = decode_tensor(buf[start:start + nbytes], ttype, shape)
        tensor_types[name] = ttype
    return GGUFFile(metadata, types, tensors, tensor_types)

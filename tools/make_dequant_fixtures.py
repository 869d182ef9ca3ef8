#!/usr/bin/env python3
"""Writes tests/fixtures/dequant_golden.json: blocks of GGUF quantized data and their values as
dequantized by the `gguf` Python package (gguf-py, llama.cpp's own reader), an implementation
independent of examples/llama3/dequant.hpp, for tests/examples/host/test_dequant.cpp to match bit for bit.

For each of Q4_0, Q4_1, Q5_0, Q8_0, Q4_K and Q6_K it makes 3 blocks of random bytes (seeded, so the
file is the same on every run) whose fp16 scale fields are set to finite values: block 0 a positive
normal d, block 1 a negative d, block 2 an fp16 subnormal d (the second fp16 field of Q4_1 / Q4_K,
m / dmin, is a normal value of either sign). With --from-gguf it also takes the first 2 blocks of
the first tensor (in file order) of each of Q4_K, Q5_0, Q6_K and Q8_0 in that model file, read
through gguf.GGUFReader, and records the tensor name and the file's size and md5 so the C++ test can
check the same blocks in the same file.

Every value is stored as the hex bit pattern of its float32 (uint32, "%08x"), raw bytes as a hex
string, so no decimal rounding is involved anywhere.

Needs numpy and gguf:
  pip install gguf numpy          (e.g. python3 -m venv /tmp/venv && /tmp/venv/bin/pip install gguf numpy)
  /tmp/venv/bin/python tools/make_dequant_fixtures.py \\
      [--from-gguf .cache/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf] [--out PATH]
"""
import argparse
import hashlib
import json
import os
import zlib

import numpy as np

import gguf
from gguf import GGMLQuantizationType as Q
from gguf.constants import GGML_QUANT_SIZES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "dequant_golden.json")

RANDOM_BLOCKS = 3
MODEL_BLOCKS = 2

# Byte offsets of the fp16 fields of each block type: (d, second field or None). The second field
# is m for Q4_1 and dmin for Q4_K. (Q6_K keeps d at the end of its 210 bytes.)
FP16_FIELDS = {
    Q.Q4_0: (0, None),
    Q.Q4_1: (0, 2),
    Q.Q5_0: (0, None),
    Q.Q8_0: (0, None),
    Q.Q4_K: (0, 2),
    Q.Q6_K: (208, None),
}
MODEL_TYPES = [Q.Q4_K, Q.Q5_0, Q.Q6_K, Q.Q8_0]


def fp16_bytes(value):
    return np.array([value], dtype=np.float16).tobytes()


def random_blocks(qtype):
    """RANDOM_BLOCKS blocks of `qtype`: random bytes with sane fp16 scale fields."""
    _, type_size = GGML_QUANT_SIZES[qtype]
    # One generator per type, seeded from its name, so adding a type changes no other case.
    rng = np.random.default_rng(zlib.crc32(qtype.name.encode()))
    d_at, second_at = FP16_FIELDS[qtype]
    raw = bytearray()
    for b in range(RANDOM_BLOCKS):
        block = bytearray(rng.integers(0, 256, size=type_size, dtype=np.uint8).tobytes())
        if b == 0:
            d = fp16_bytes(rng.uniform(1e-3, 0.1))
        elif b == 1:
            d = fp16_bytes(-rng.uniform(1e-3, 0.1))
        else:
            # fp16 subnormal: exponent bits 0, mantissa 1..1023 (values down to 2^-24).
            d = int(rng.integers(1, 1024)).to_bytes(2, "little")
        block[d_at:d_at + 2] = d
        if second_at is not None:
            sign = 1.0 if rng.integers(0, 2) else -1.0
            block[second_at:second_at + 2] = fp16_bytes(sign * rng.uniform(1e-3, 0.5))
        raw += block
    return bytes(raw)


def case(qtype, raw, **extra):
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    assert len(raw) % type_size == 0
    values = gguf.quants.dequantize(np.frombuffer(raw, dtype=np.uint8), qtype)
    values = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    n = len(raw) // type_size * block_size
    assert values.size == n, (qtype.name, values.size, n)
    assert np.isfinite(values).all(), qtype.name
    out = {"type": qtype.name}
    out.update(extra)
    out["n_elements"] = n
    out["raw"] = raw.hex()
    out["expected"] = ["%08x" % v for v in values.view(np.uint32).tolist()]
    return out


def model_cases(path):
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            md5.update(chunk)
    reader = gguf.GGUFReader(path)
    cases = []
    for qtype in MODEL_TYPES:
        tensor = next((t for t in reader.tensors if t.tensor_type == qtype), None)
        if tensor is None:
            raise SystemExit("%s has no tensor of type %s" % (path, qtype.name))
        _, type_size = GGML_QUANT_SIZES[qtype]
        raw = np.asarray(tensor.data).reshape(-1).view(np.uint8)[:MODEL_BLOCKS * type_size].tobytes()
        cases.append(case(qtype, raw, tensor=tensor.name))
    source = {"file": os.path.basename(path), "bytes": os.path.getsize(path), "md5": md5.hexdigest(),
              "blocks_per_tensor": MODEL_BLOCKS}
    return source, cases


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from-gguf", default="", metavar="PATH",
                    help="also take the first blocks of one tensor of each of Q4_K, Q5_0, Q6_K, Q8_0 here")
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()

    fixture = {
        "generator": "tools/make_dequant_fixtures.py",
        "oracle": "gguf.quants.dequantize (gguf %s, numpy %s)" % (
            getattr(gguf, "__version__", None) or _gguf_version(), np.__version__),
        "values": "float32 bit patterns as hex uint32",
        "random": [case(q, random_blocks(q), name="random") for q in FP16_FIELDS],
    }
    if args.from_gguf:
        fixture["model"], fixture["model_tensors"] = model_cases(args.from_gguf)

    text = json.dumps(fixture, indent=1) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    n_cases = len(fixture["random"]) + len(fixture.get("model_tensors", []))
    print("wrote %s: %d cases, %d bytes" % (args.out, n_cases, len(text)))


def _gguf_version():
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:  # noqa: BLE001 - the version is only informative
        return "unknown"


if __name__ == "__main__":
    main()

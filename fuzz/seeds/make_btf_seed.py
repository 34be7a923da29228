#!/usr/bin/env python3
"""Writes fuzz/seeds/btf_reader/all_kinds: a small valid BTF blob with one
type of every kind (1..19), as a starting point for the BTF fuzzer."""
import struct, os

strs = b"\0int\0foo\0a\0b\0u\0E\0V\0f\0p\0.data\0user\0tag\0float\0E64\0X\0"
def off(name): return strs.index(b"\0" + name.encode() + b"\0") + 1
def info(kind, vlen=0, kf=0): return (kf << 31) | (kind << 24) | vlen
t = []
def ty(*words): t.extend(words)
ty(off("int"), info(1), 4, (1 << 24) | 32)                         # 1 INT
ty(0, info(2), 3)                                                   # 2 PTR -> 3
ty(off("foo"), info(4, 3, 1), 16,                                   # 3 STRUCT bitfields
   off("a"), 1, 0, off("b"), 1, (3 << 24) | 35, 0, 4, 64)
ty(off("u"), info(5, 1), 8, off("a"), 2, 0)                         # 4 UNION
ty(0, info(3), 0, 1, 1, 4)                                          # 5 ARRAY int[4]
ty(off("E"), info(6, 1), 4, off("X"), 7)                            # 6 ENUM
ty(off("foo"), info(7, 0, 1), 0)                                    # 7 FWD union
ty(off("V"), info(8), 1)                                            # 8 TYPEDEF
ty(0, info(9), 1); ty(0, info(10), 1); ty(0, info(11), 2)           # 9-11 quals
ty(off("f"), info(12, 1), 13)                                       # 12 FUNC
ty(0, info(13, 2), 1, off("p"), 2, 0, 0)                            # 13 PROTO variadic
ty(off("V"), info(14), 1, 1)                                        # 14 VAR
ty(off(".data"), info(15, 1), 4, 14, 0, 4)                          # 15 DATASEC
ty(off("float"), info(16), 8)                                       # 16 FLOAT
ty(off("tag"), info(17), 3, 0xffffffff)                             # 17 DECL_TAG
ty(off("user"), info(18), 3)                                        # 18 TYPE_TAG
ty(off("E64"), info(19, 1, 1), 8, off("X"), 1, 2)                   # 19 ENUM64
types = b"".join(struct.pack("<I", w) for w in t)
hdr = struct.pack("<HBBIIIII", 0xeb9f, 1, 0, 24, 0, len(types), len(types), len(strs))
out = os.path.join(os.path.dirname(__file__), "btf_reader", "all_kinds")
open(out, "wb").write(hdr + types + strs)

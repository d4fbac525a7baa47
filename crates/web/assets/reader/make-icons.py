"""Regenerates the reader's PNG icons (the "H" of icon.svg) without an image library:
`python3 make-icons.py` in this directory. Not served; the PNGs are."""
import struct
import zlib

NAVY = (0x12, 0x35, 0x5B)
WHITE = (255, 255, 255)
GOLD = (0xF2, 0xB1, 0x34)


def shade(x, y, s, rounded, pad):
    u, v = x * 512 / s, y * 512 / s
    if pad:  # maskable: the drawing in the inner 80 %
        u, v = (u - 256) / 0.8 + 256, (v - 256) / 0.8 + 256
    if rounded:
        r = 96
        cx, cy = min(max(u, r), 512 - r), min(max(v, r), 512 - r)
        if (u - cx) ** 2 + (v - cy) ** 2 > r * r:
            return None
    if (150 <= u < 206 or 306 <= u < 362) and 120 <= v < 392:
        return WHITE
    if 206 <= u < 306 and 228 <= v < 280:
        return WHITE
    if 150 <= u < 362 and 420 <= v < 440:
        return GOLD
    return NAVY


def png(path, s, rounded=True, pad=False, mono=False):
    rows = []
    for y in range(s):
        row = bytearray([0])
        for x in range(s):
            c = shade(x + 0.5, y + 0.5, s, rounded, pad)
            if mono:
                row += bytes((255, 255, 255, 255)) if c in (WHITE, GOLD) else bytes(4)
            elif c is None:
                row += bytes(4)
            else:
                row += bytes((*c, 255))
        rows.append(bytes(row))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", s, s, 8, 6, 0, 0, 0)
    body = zlib.compress(b"".join(rows), 9)
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


png("icon-192.png", 192)
png("icon-512.png", 512)
png("icon-maskable-512.png", 512, rounded=False, pad=True)
png("badge-72.png", 72, rounded=False, mono=True)

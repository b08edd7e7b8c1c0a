#!/usr/bin/env python3
"""Writes N short Standard MIDI Files (a melody over a held bass note, 120 BPM, piano) for the deployment
tests: make_midi.py OUT_DIR N. Piece i transposes a fixed eight-note tune by i semitones and changes its
rhythm, so the pieces differ and every run writes the same bytes."""
import pathlib
import struct
import sys

TUNE = [(64, 2), (64, 2), (65, 2), (67, 2), (67, 2), (65, 2), (64, 2), (62, 2)]


def vlq(v):
    out = [v & 0x7F]
    while v := v >> 7:
        out.append((v & 0x7F) | 0x80)
    return bytes(reversed(out))


def piece(i):
    ev = vlq(0) + b"\xff\x51\x03" + (500000).to_bytes(3, "big") + vlq(0) + b"\xc0\x00"
    for rep in range(2):
        for k, (pitch, eighths) in enumerate(TUNE):
            p, length = pitch + i, eighths + ((k + i + rep) % 3 == 0)
            ev += vlq(0) + bytes([0x90, p, 90]) + vlq(0) + bytes([0x90, 48 + i, 60])
            ev += vlq(length * 240) + bytes([0x80, p, 0]) + vlq(0) + bytes([0x80, 48 + i, 0])
    ev += vlq(0) + b"\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(ev)) + ev


def main():
    if len(sys.argv) != 3 or not sys.argv[2].isdigit() or int(sys.argv[2]) < 1:
        sys.exit("usage: make_midi.py OUT_DIR N (N >= 1)")
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for i in range(int(sys.argv[2])):
        (out / f"piece{i:02d}.mid").write_bytes(piece(i))


if __name__ == "__main__":
    main()

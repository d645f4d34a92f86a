"""read_wav_s16le: the stdlib-wave decoder behind Client.stream_file (no server needed)."""

from __future__ import annotations

import struct
import tempfile
import unittest
import wave
from pathlib import Path

import grpc

from prosodia import ProsodiaError, read_wav_s16le


def _write(path: Path, width: int, rate: int, channels: int, frames: bytes) -> None:
    with wave.open(str(path), "wb") as w:
        w.setsampwidth(width)
        w.setframerate(rate)
        w.setnchannels(channels)
        w.writeframes(frames)


class ReadWav(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self._tmp.name)

    def tearDown(self) -> None:
        self._tmp.cleanup()

    def _read(self, width: int, raw: bytes, rate: int = 8000, channels: int = 1) -> list[int]:
        path = self.dir / f"w{width}.wav"
        _write(path, width, rate, channels, raw)
        pcm, got_rate, got_channels = read_wav_s16le(path)
        self.assertEqual((got_rate, got_channels), (rate, channels))
        return list(struct.unpack(f"<{len(pcm) // 2}h", pcm))

    def test_16_bit_is_passed_through(self) -> None:
        values = [0, 1, -1, 32767, -32768, 1234]
        self.assertEqual(self._read(2, struct.pack("<6h", *values)), values)

    def test_8_bit_unsigned_becomes_signed_16(self) -> None:
        self.assertEqual(self._read(1, bytes([0, 128, 255, 129])), [-32768, 0, 32512, 256])

    def test_24_and_32_bit_keep_their_top_16_bits(self) -> None:
        s24 = [0x7FFFFF, -0x800000, 0x012345, -2]
        raw = b"".join(v.to_bytes(3, "little", signed=True) for v in s24)
        self.assertEqual(self._read(3, raw), [v >> 8 for v in s24])
        s32 = [0x7FFFFFFF, -0x80000000, 0x12345678, -65536]
        self.assertEqual(self._read(4, struct.pack("<4i", *s32)), [v >> 16 for v in s32])

    def test_stereo_stays_interleaved(self) -> None:
        frames = struct.pack("<4h", 1, -1, 2, -2)
        self.assertEqual(self._read(2, frames, rate=44100, channels=2), [1, -1, 2, -2])

    def test_a_file_wave_cannot_read_is_invalid_argument(self) -> None:
        path = self.dir / "text.wav"
        path.write_bytes(b"this is not audio at all, just some text")
        with self.assertRaises(ProsodiaError) as caught:
            read_wav_s16le(path)
        self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("text.wav", caught.exception.message)


if __name__ == "__main__":
    unittest.main()

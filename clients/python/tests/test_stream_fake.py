"""Client.stream against an in-process fake server: what the client sends and how it types the
replies, independent of the real server's streaming (no PROSODIA_ADDR needed)."""

from __future__ import annotations

import struct
import tempfile
import threading
import unittest
import wave
from concurrent import futures
from pathlib import Path
from typing import Any, Iterator, List

import grpc

import prosodia
from prosodia.v1 import audio_pb2, emotion_pb2, emotion_pb2_grpc

LABELS = ["calm", "loud"]


def _scores(p: float) -> List[emotion_pb2.ClassScore]:
    return [
        emotion_pb2.ClassScore(label=LABELS[0], probability=1 - p),
        emotion_pb2.ClassScore(label=LABELS[1], probability=p),
    ]


class FakeEmotion(emotion_pb2_grpc.EmotionServicer):
    """Answers each audio chunk with a window, then one utterance and a summary; refuses a
    stream whose config names the model "refuse"."""

    def __init__(self) -> None:
        self.configs: List[emotion_pb2.StreamConfig] = []
        self.chunks: List[bytes] = []
        self.lock = threading.Lock()

    def StreamClassify(self, request_iterator: Any, context: Any) -> Iterator[Any]:
        first = next(request_iterator)
        if first.WhichOneof("message") != "config":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first message must be config")
        config = first.config
        with self.lock:
            self.configs.append(config)
        if config.model == "refuse":
            context.abort(grpc.StatusCode.NOT_FOUND, "no model named refuse")
        received = 0
        for n, req in enumerate(request_iterator):
            if req.WhichOneof("message") != "audio":
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "config sent twice")
            with self.lock:
                self.chunks.append(req.audio)
            received += len(req.audio)
            if config.interim_results:
                yield emotion_pb2.StreamClassifyResponse(
                    window=emotion_pb2.WindowResult(
                        start_seconds=n, end_seconds=n + 1, label="loud", scores=_scores(0.75)
                    )
                )
        seconds = received / (2 * config.raw.channels * config.raw.sample_rate)
        yield emotion_pb2.StreamClassifyResponse(
            utterance=emotion_pb2.UtteranceResult(
                index=0, start_seconds=0, end_seconds=seconds, label="calm", scores=_scores(0.25)
            )
        )
        yield emotion_pb2.StreamClassifyResponse(
            summary=emotion_pb2.StreamSummary(
                audio_seconds=seconds,
                utterances=1,
                label="calm",
                scores=_scores(0.25),
                model=config.model or "fake",
                model_version=7,
            )
        )


class StreamAgainstAFake(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.servicer = FakeEmotion()
        cls.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        emotion_pb2_grpc.add_EmotionServicer_to_server(cls.servicer, cls.server)
        port = cls.server.add_insecure_port("127.0.0.1:0")
        cls.server.start()
        cls.client = prosodia.Client(f"127.0.0.1:{port}", timeout=30)
        cls._tmp = tempfile.TemporaryDirectory()
        # 0.25 s of 16 kHz stereo 16-bit: a ramp, so chunk order is checkable.
        cls.wav = Path(cls._tmp.name) / "ramp.wav"
        cls.frames = 4000
        cls.pcm = struct.pack(f"<{2 * cls.frames}h", *[(i % 30000) - 15000 for i in range(2 * cls.frames)])
        with wave.open(str(cls.wav), "wb") as w:
            w.setsampwidth(2)
            w.setframerate(16000)
            w.setnchannels(2)
            w.writeframes(cls.pcm)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.client.close()
        cls.server.stop(None)
        cls._tmp.cleanup()

    def setUp(self) -> None:
        with self.servicer.lock:
            self.servicer.configs.clear()
            self.servicer.chunks.clear()

    def test_stream_file_sends_config_then_the_pcm_in_chunks(self) -> None:
        events = list(self.client.stream_file(self.wav, chunk_ms=20, model="m", window=1.5, hop=0.5))
        config = self.servicer.configs[-1]
        self.assertEqual(config.WhichOneof("format"), "raw")
        self.assertEqual(config.raw.encoding, audio_pb2.PCM_ENCODING_S16LE)
        self.assertEqual((config.raw.sample_rate, config.raw.channels), (16000, 2))
        self.assertEqual((config.model, config.window_seconds, config.hop_seconds), ("m", 1.5, 0.5))
        self.assertTrue(config.interim_results)
        # 20 ms of 16 kHz stereo s16 = 320 frames = 1280 bytes; 4000 frames -> 12.5 chunks.
        sizes = [len(c) for c in self.servicer.chunks]
        self.assertEqual(sizes, [1280] * 12 + [640])
        self.assertEqual(b"".join(self.servicer.chunks), self.pcm)

        windows = [e for e in events if isinstance(e, prosodia.WindowResult)]
        self.assertEqual(len(windows), 13)
        self.assertEqual(windows[0].scores, {"calm": 0.25, "loud": 0.75})
        self.assertIsInstance(events[-2], prosodia.UtteranceResult)
        summary = events[-1]
        self.assertIsInstance(summary, prosodia.StreamSummary)
        assert isinstance(summary, prosodia.StreamSummary)
        self.assertAlmostEqual(summary.audio_seconds, 0.25)
        self.assertEqual((summary.model, summary.model_version, summary.kind), ("m", 7, "summary"))

    def test_no_interim_results_when_asked(self) -> None:
        events = list(self.client.stream([self.pcm[:3200]], rate=16000, channels=2, interim=False))
        self.assertEqual([e.kind for e in events], ["utterance", "summary"])
        self.assertFalse(self.servicer.configs[-1].interim_results)

    def test_server_errors_become_prosodia_errors(self) -> None:
        with self.assertRaises(prosodia.ProsodiaError) as caught:
            list(self.client.stream([b"\0\0"], rate=16000, model="refuse"))
        self.assertEqual(caught.exception.code, grpc.StatusCode.NOT_FOUND)
        self.assertIn("refuse", caught.exception.message)

    def test_bad_arguments_are_refused_before_sending(self) -> None:
        for kwargs in ({"rate": 0}, {"rate": 16000, "encoding": "mp3"}):
            with self.assertRaises(prosodia.ProsodiaError) as caught:
                self.client.stream([b"\0\0"], **kwargs)  # type: ignore[arg-type]
            self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.servicer.configs, [])


if __name__ == "__main__":
    unittest.main()

"""The client's retry policy against an in-process fake server that answers UNAVAILABLE a given
number of times before it answers (no PROSODIA_ADDR needed): unary calls are retried with
backoff up to ``retries`` times, other codes and streams are not."""

from __future__ import annotations

import threading
import time
import unittest
from concurrent import futures
from typing import Any, Iterator, List

import grpc

import prosodia
from prosodia.v1 import emotion_pb2, emotion_pb2_grpc


class FlakyEmotion(emotion_pb2_grpc.EmotionServicer):
    """Fails the first ``failures`` calls of each method with ``code``, then answers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.failures = 0
        self.code = grpc.StatusCode.UNAVAILABLE
        self.attempts: List[float] = []
        self.sizes: List[int] = []

    def reset(self, failures: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
        with self.lock:
            self.failures, self.code = failures, code
            self.attempts.clear()
            self.sizes.clear()

    def _attempt(self, context: Any, size: int) -> None:
        with self.lock:
            self.attempts.append(time.monotonic())
            self.sizes.append(size)
            fail = len(self.attempts) <= self.failures
            code = self.code
        if fail:
            context.abort(code, f"attempt {len(self.attempts)} refused on purpose")

    def Classify(self, request: Any, context: Any) -> Any:
        self._attempt(context, len(request.audio.encoded))
        return emotion_pb2.ClassifyResponse(
            label="calm",
            scores=[emotion_pb2.ClassScore(label="calm", probability=1.0)],
            model="fake",
            model_version=1,
        )

    def StreamClassify(self, request_iterator: Any, context: Any) -> Iterator[Any]:
        next(request_iterator)
        self._attempt(context, 0)
        for _ in request_iterator:
            pass
        yield emotion_pb2.StreamClassifyResponse(
            summary=emotion_pb2.StreamSummary(audio_seconds=0, label="calm", model="fake")
        )


class RetriesAgainstAFake(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.servicer = FlakyEmotion()
        cls.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        emotion_pb2_grpc.add_EmotionServicer_to_server(cls.servicer, cls.server)
        cls.port = cls.server.add_insecure_port("127.0.0.1:0")
        cls.server.start()
        cls.target = f"127.0.0.1:{cls.port}"

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop(None)

    def client(self, **kwargs: Any) -> prosodia.Client:
        c = prosodia.Client(self.target, timeout=30, **kwargs)
        self.addCleanup(c.close)
        return c

    def test_unavailable_is_retried_until_the_call_succeeds(self) -> None:
        self.servicer.reset(failures=3)
        started = time.monotonic()
        result = self.client().classify(b"audio")
        print(f"3 UNAVAILABLE then OK: {time.monotonic() - started:.3f} s", flush=True)
        self.assertEqual(result.label, "calm")
        self.assertEqual(len(self.servicer.attempts), 4, "one attempt and three retries")

    def test_large_requests_are_retried_too(self) -> None:
        # Bigger than gRPC's default per-call retry buffer (256 KiB), like most audio files.
        self.servicer.reset(failures=2)
        result = self.client().classify(b"\1" * (3 << 20))
        self.assertEqual(result.label, "calm")
        self.assertEqual(self.servicer.sizes, [3 << 20] * 3)

    def test_after_the_retries_the_last_unavailable_is_raised(self) -> None:
        self.servicer.reset(failures=100)
        with self.assertRaises(prosodia.ProsodiaError) as caught:
            self.client(retries=2).classify(b"audio")
        self.assertEqual(caught.exception.code_name, "UNAVAILABLE")
        self.assertIn("attempt 3 refused", caught.exception.message)
        self.assertEqual(len(self.servicer.attempts), 3)

    def test_no_retries_sends_once(self) -> None:
        self.servicer.reset(failures=1)
        with self.assertRaises(prosodia.ProsodiaError) as caught:
            self.client(retries=0).classify(b"audio")
        self.assertEqual(caught.exception.code_name, "UNAVAILABLE")
        self.assertEqual(len(self.servicer.attempts), 1)

    def test_other_codes_are_not_retried(self) -> None:
        for code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL):
            self.servicer.reset(failures=1, code=code)
            with self.assertRaises(prosodia.ProsodiaError) as caught:
                self.client().classify(b"audio")
            self.assertEqual(caught.exception.code, code)
            self.assertEqual(len(self.servicer.attempts), 1, f"{code.name} was retried")

    def test_streams_are_not_retried(self) -> None:
        self.servicer.reset(failures=1)
        with self.assertRaises(prosodia.ProsodiaError) as caught:
            list(self.client().stream([b"\0\0"], rate=16000))
        self.assertEqual(caught.exception.code_name, "UNAVAILABLE")
        self.assertEqual(len(self.servicer.attempts), 1, "the stream was resent")

    def test_the_retry_count_is_bounded(self) -> None:
        self.assertEqual(prosodia.service_config(0), {})
        policy = prosodia.service_config(4)["methodConfig"][0]  # type: ignore[index]
        self.assertEqual(policy["retryPolicy"]["maxAttempts"], 5)
        self.assertEqual(policy["retryPolicy"]["retryableStatusCodes"], ["UNAVAILABLE"])
        methods = {(n["service"], n["method"]) for n in policy["name"]}
        self.assertIn(("prosodia.v1.Emotion", "Classify"), methods)
        self.assertNotIn(("prosodia.v1.Emotion", "StreamClassify"), methods)
        for bad in (-1, 5):
            with self.assertRaises(ValueError):
                prosodia.service_config(bad)


if __name__ == "__main__":
    unittest.main()

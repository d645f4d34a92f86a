"""Python client for Prosodia, the speech-emotion-recognition gRPC server.

>>> import prosodia                                         # doctest: +SKIP
>>> with prosodia.Client("127.0.0.1:50051") as client:
...     print(client.classify("speech.wav").label)
happy

:class:`Client` returns the plain dataclasses below and raises :class:`ProsodiaError`
(carrying the gRPC status code and message) when the server refuses a request. The generated
protobuf/gRPC stubs are in :mod:`prosodia.v1` for anything the wrapper does not cover.
"""

from prosodia._types import (
    Durations,
    Features,
    FrameMatrix,
    ModelInfo,
    ModelList,
    ModelSummary,
    ModelVersion,
    ProsodiaError,
    Result,
    StreamEvent,
    StreamSummary,
    UtteranceResult,
    WindowResult,
)
from prosodia.client import (
    DEFAULT_RETRIES,
    DEFAULT_TARGET,
    Client,
    read_wav_s16le,
    service_config,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_RETRIES",
    "DEFAULT_TARGET",
    "Client",
    "Durations",
    "Features",
    "FrameMatrix",
    "ModelInfo",
    "ModelList",
    "ModelSummary",
    "ModelVersion",
    "ProsodiaError",
    "Result",
    "StreamEvent",
    "StreamSummary",
    "UtteranceResult",
    "WindowResult",
    "read_wav_s16le",
    "service_config",
]

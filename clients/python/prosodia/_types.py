"""The typed results the client returns: plain frozen dataclasses, no protobuf types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Union

import grpc


class ProsodiaError(Exception):
    """A request failed: the server's gRPC status code and message.

    ``code`` is a :class:`grpc.StatusCode` (e.g. ``grpc.StatusCode.INVALID_ARGUMENT`` for
    audio that cannot be decoded, ``NOT_FOUND`` for an unknown model, ``UNIMPLEMENTED`` where
    the server lacks an RPC); ``code_name`` is its name as a string. Input the client refuses
    before sending anything (a file the ``wave`` module cannot read, an unknown encoding) is
    reported the same way with ``INVALID_ARGUMENT``.
    """

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code: grpc.StatusCode = code
        self.message: str = message

    @property
    def code_name(self) -> str:
        """The status code's name, e.g. ``"NOT_FOUND"``."""
        return str(self.code.name)

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "ProsodiaError":
        """Wraps a ``grpc.RpcError`` (which is also a ``grpc.Call``)."""
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        details = error.details() if hasattr(error, "details") else str(error)
        return cls(code or grpc.StatusCode.UNKNOWN, details or "")


@dataclass(frozen=True)
class Durations:
    """Where the server's time went for one request, in milliseconds."""

    decode_ms: float = 0.0
    extract_ms: float = 0.0
    inference_ms: float = 0.0
    queue_ms: float = 0.0
    total_ms: float = 0.0


@dataclass(frozen=True)
class Result:
    """The classification of one piece of audio (``Emotion.Classify``)."""

    label: str
    """The most probable label."""
    scores: Dict[str, float]
    """Every label of the model with its probability, in the model's label order."""
    model: str
    model_version: int
    audio_seconds: float
    """Length of the decoded audio before trimming."""
    durations: Durations


@dataclass(frozen=True)
class FrameMatrix:
    """A row-major per-frame feature matrix (``ExtractFeatures`` with ``frames=True``)."""

    name: str
    rows: int
    cols: int
    column_names: List[str]
    data: List[float]
    frame_step_seconds: float
    first_frame_seconds: float

    def row(self, i: int) -> List[float]:
        """The values of frame ``i``."""
        if not 0 <= i < self.rows:
            raise IndexError(f"frame {i} out of range 0..{self.rows}")
        return self.data[i * self.cols : (i + 1) * self.cols]


@dataclass(frozen=True)
class Features:
    """The features of one piece of audio (``Emotion.ExtractFeatures``)."""

    features: Dict[str, float]
    """The 46 named utterance features, in the server's order."""
    feature_config: str
    sample_rate: int
    audio_seconds: float
    durations: Durations
    frames: Dict[str, FrameMatrix] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelVersion:
    """One version of a model and its state (``"READY"``, ``"UNLOADED"``, ``"FAILED"``...)."""

    version: int
    state: str
    message: str


@dataclass(frozen=True)
class ModelSummary:
    """One model of the repository and its versions, newest first."""

    name: str
    versions: List[ModelVersion]


@dataclass(frozen=True)
class ModelList:
    """The repository's contents (``Models.ListModels``)."""

    models: List[ModelSummary]
    default_model: str
    """The model used when a request names none (empty if there is none)."""

    def names(self) -> List[str]:
        """The model names, sorted."""
        return [m.name for m in self.models]


@dataclass(frozen=True)
class ModelInfo:
    """Details of one model version (``Models.GetModel``)."""

    name: str
    version: int
    state: str
    labels: List[str]
    backend: str
    extractor: str
    feature_config: str
    stream_window_seconds: float
    stream_hop_seconds: float
    description: str


@dataclass(frozen=True)
class WindowResult:
    """An interim stream result: one analysis window (sent when ``interim=True``)."""

    start_seconds: float
    end_seconds: float
    label: str
    scores: Dict[str, float]
    kind: str = "window"


@dataclass(frozen=True)
class UtteranceResult:
    """A final stream result: one utterance, sent when voice activity ends."""

    index: int
    start_seconds: float
    end_seconds: float
    label: str
    scores: Dict[str, float]
    kind: str = "utterance"


@dataclass(frozen=True)
class StreamSummary:
    """The last message of a stream, after the client has sent all its audio."""

    audio_seconds: float
    utterances: int
    label: str
    """Duration-weighted most probable label; empty if no utterance was found."""
    scores: Dict[str, float]
    model: str
    model_version: int
    kind: str = "summary"


StreamEvent = Union[WindowResult, UtteranceResult, StreamSummary]
"""What :meth:`prosodia.Client.stream` yields; tell them apart by type or by ``kind``."""

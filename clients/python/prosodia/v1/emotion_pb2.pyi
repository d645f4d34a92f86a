from prosodia.v1 import audio_pb2 as _audio_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClassifyRequest(_message.Message):
    __slots__ = ("model", "audio", "model_version", "timeline")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TIMELINE_FIELD_NUMBER: _ClassVar[int]
    model: str
    audio: _audio_pb2.Audio
    model_version: int
    timeline: TimelineOptions
    def __init__(self, model: _Optional[str] = ..., audio: _Optional[_Union[_audio_pb2.Audio, _Mapping]] = ..., model_version: _Optional[int] = ..., timeline: _Optional[_Union[TimelineOptions, _Mapping]] = ...) -> None: ...

class TimelineOptions(_message.Message):
    __slots__ = ("window_seconds", "hop_seconds")
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HOP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    window_seconds: float
    hop_seconds: float
    def __init__(self, window_seconds: _Optional[float] = ..., hop_seconds: _Optional[float] = ...) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("label", "scores", "model", "model_version", "audio_duration_seconds", "timings", "timeline")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    AUDIO_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    TIMELINE_FIELD_NUMBER: _ClassVar[int]
    label: str
    scores: _containers.RepeatedCompositeFieldContainer[ClassScore]
    model: str
    model_version: int
    audio_duration_seconds: float
    timings: _audio_pb2.Timings
    timeline: _containers.RepeatedCompositeFieldContainer[WindowResult]
    def __init__(self, label: _Optional[str] = ..., scores: _Optional[_Iterable[_Union[ClassScore, _Mapping]]] = ..., model: _Optional[str] = ..., model_version: _Optional[int] = ..., audio_duration_seconds: _Optional[float] = ..., timings: _Optional[_Union[_audio_pb2.Timings, _Mapping]] = ..., timeline: _Optional[_Iterable[_Union[WindowResult, _Mapping]]] = ...) -> None: ...

class ClassScore(_message.Message):
    __slots__ = ("label", "probability")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    label: str
    probability: float
    def __init__(self, label: _Optional[str] = ..., probability: _Optional[float] = ...) -> None: ...

class StreamClassifyRequest(_message.Message):
    __slots__ = ("config", "audio")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    config: StreamConfig
    audio: bytes
    def __init__(self, config: _Optional[_Union[StreamConfig, _Mapping]] = ..., audio: _Optional[bytes] = ...) -> None: ...

class StreamConfig(_message.Message):
    __slots__ = ("model", "model_version", "raw", "encoded", "window_seconds", "hop_seconds", "interim_results")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    ENCODED_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HOP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    INTERIM_RESULTS_FIELD_NUMBER: _ClassVar[int]
    model: str
    model_version: int
    raw: _audio_pb2.RawFormat
    encoded: EncodedFormat
    window_seconds: float
    hop_seconds: float
    interim_results: bool
    def __init__(self, model: _Optional[str] = ..., model_version: _Optional[int] = ..., raw: _Optional[_Union[_audio_pb2.RawFormat, _Mapping]] = ..., encoded: _Optional[_Union[EncodedFormat, _Mapping]] = ..., window_seconds: _Optional[float] = ..., hop_seconds: _Optional[float] = ..., interim_results: _Optional[bool] = ...) -> None: ...

class EncodedFormat(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StreamClassifyResponse(_message.Message):
    __slots__ = ("window", "utterance", "summary")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    UTTERANCE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    window: WindowResult
    utterance: UtteranceResult
    summary: StreamSummary
    def __init__(self, window: _Optional[_Union[WindowResult, _Mapping]] = ..., utterance: _Optional[_Union[UtteranceResult, _Mapping]] = ..., summary: _Optional[_Union[StreamSummary, _Mapping]] = ...) -> None: ...

class WindowResult(_message.Message):
    __slots__ = ("start_seconds", "end_seconds", "label", "scores")
    START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    start_seconds: float
    end_seconds: float
    label: str
    scores: _containers.RepeatedCompositeFieldContainer[ClassScore]
    def __init__(self, start_seconds: _Optional[float] = ..., end_seconds: _Optional[float] = ..., label: _Optional[str] = ..., scores: _Optional[_Iterable[_Union[ClassScore, _Mapping]]] = ...) -> None: ...

class UtteranceResult(_message.Message):
    __slots__ = ("index", "start_seconds", "end_seconds", "label", "scores")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    index: int
    start_seconds: float
    end_seconds: float
    label: str
    scores: _containers.RepeatedCompositeFieldContainer[ClassScore]
    def __init__(self, index: _Optional[int] = ..., start_seconds: _Optional[float] = ..., end_seconds: _Optional[float] = ..., label: _Optional[str] = ..., scores: _Optional[_Iterable[_Union[ClassScore, _Mapping]]] = ...) -> None: ...

class StreamSummary(_message.Message):
    __slots__ = ("audio_seconds", "utterances", "label", "scores", "model", "model_version")
    AUDIO_SECONDS_FIELD_NUMBER: _ClassVar[int]
    UTTERANCES_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    audio_seconds: float
    utterances: int
    label: str
    scores: _containers.RepeatedCompositeFieldContainer[ClassScore]
    model: str
    model_version: int
    def __init__(self, audio_seconds: _Optional[float] = ..., utterances: _Optional[int] = ..., label: _Optional[str] = ..., scores: _Optional[_Iterable[_Union[ClassScore, _Mapping]]] = ..., model: _Optional[str] = ..., model_version: _Optional[int] = ...) -> None: ...

class ExtractFeaturesRequest(_message.Message):
    __slots__ = ("audio", "model", "model_version", "preset", "include_frames")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FRAMES_FIELD_NUMBER: _ClassVar[int]
    audio: _audio_pb2.Audio
    model: str
    model_version: int
    preset: str
    include_frames: bool
    def __init__(self, audio: _Optional[_Union[_audio_pb2.Audio, _Mapping]] = ..., model: _Optional[str] = ..., model_version: _Optional[int] = ..., preset: _Optional[str] = ..., include_frames: _Optional[bool] = ...) -> None: ...

class ExtractFeaturesResponse(_message.Message):
    __slots__ = ("features", "frames", "feature_config", "sample_rate", "audio_duration_seconds", "timings")
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    FEATURE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    AUDIO_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    features: _containers.RepeatedCompositeFieldContainer[Feature]
    frames: _containers.RepeatedCompositeFieldContainer[FrameMatrix]
    feature_config: str
    sample_rate: int
    audio_duration_seconds: float
    timings: _audio_pb2.Timings
    def __init__(self, features: _Optional[_Iterable[_Union[Feature, _Mapping]]] = ..., frames: _Optional[_Iterable[_Union[FrameMatrix, _Mapping]]] = ..., feature_config: _Optional[str] = ..., sample_rate: _Optional[int] = ..., audio_duration_seconds: _Optional[float] = ..., timings: _Optional[_Union[_audio_pb2.Timings, _Mapping]] = ...) -> None: ...

class Feature(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...

class FrameMatrix(_message.Message):
    __slots__ = ("name", "rows", "cols", "column_names", "data", "frame_step_seconds", "first_frame_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    COLUMN_NAMES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    FRAME_STEP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FIRST_FRAME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    rows: int
    cols: int
    column_names: _containers.RepeatedScalarFieldContainer[str]
    data: _containers.RepeatedScalarFieldContainer[float]
    frame_step_seconds: float
    first_frame_seconds: float
    def __init__(self, name: _Optional[str] = ..., rows: _Optional[int] = ..., cols: _Optional[int] = ..., column_names: _Optional[_Iterable[str]] = ..., data: _Optional[_Iterable[float]] = ..., frame_step_seconds: _Optional[float] = ..., first_frame_seconds: _Optional[float] = ...) -> None: ...

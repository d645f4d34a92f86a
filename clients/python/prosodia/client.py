"""The typed client: :class:`Client` wraps the generated stubs of ``prosodia.v1``."""

from __future__ import annotations

import json
import os
import time
import wave
from typing import (
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

import grpc
from google.protobuf.message import Message

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
from prosodia.v1 import audio_pb2, emotion_pb2, emotion_pb2_grpc, models_pb2, models_pb2_grpc

AudioInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]
"""A path to an audio file, or the file's bytes (any container the server decodes)."""

DEFAULT_TARGET = "127.0.0.1:50051"
"""Where ``prosodia-server`` listens when started without ``--listen``."""

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""The server's default message limit; the client accepts replies up to the same size."""

DEFAULT_RETRIES = 4
"""Retries of a unary call that fails with ``UNAVAILABLE`` (5 attempts, gRPC's most)."""

MAX_RETRIES = 4
"""gRPC's retry policy allows at most 5 attempts per call, so at most 4 retries."""

RETRIED_METHODS = (
    ("prosodia.v1.Emotion", "Classify"),
    ("prosodia.v1.Emotion", "ExtractFeatures"),
    ("prosodia.v1.Models", "ListModels"),
    ("prosodia.v1.Models", "GetModel"),
    ("prosodia.v1.Models", "ListPlugins"),
)
"""The unary calls that the retry policy covers. ``StreamClassify`` is not among them: a
stream that breaks ends with its status and is never resent."""


def service_config(retries: int = DEFAULT_RETRIES) -> Dict[str, object]:
    """The gRPC service config of a :class:`Client` with ``retries`` retries (0 to 4).

    Each call of :data:`RETRIED_METHODS` that fails with ``UNAVAILABLE`` (the connection was
    refused or lost, a load balancer found no live replica, the server's queue is full) is
    sent again after a random wait of up to 0.1 s, 0.2 s, 0.4 s, 0.8 s (gRPC's exponential
    backoff, capped at 2 s); other codes are final. With 0 retries there is no retry policy.
    """
    if not 0 <= retries <= MAX_RETRIES:
        raise ValueError(
            f"retries must be 0 to {MAX_RETRIES} (gRPC allows 5 attempts), not {retries}"
        )
    if retries == 0:
        return {}
    return {
        "methodConfig": [
            {
                "name": [{"service": svc, "method": m} for svc, m in RETRIED_METHODS],
                "retryPolicy": {
                    "maxAttempts": retries + 1,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }


_Reply = TypeVar("_Reply")

_ENCODINGS = {
    "s16le": audio_pb2.PCM_ENCODING_S16LE,
    "f32le": audio_pb2.PCM_ENCODING_F32LE,
}


class Client:
    """A connection to a Prosodia server.

    >>> with Client("127.0.0.1:50051") as client:          # doctest: +SKIP
    ...     result = client.classify("speech.wav")
    ...     print(result.label, result.scores[result.label])

    ``target`` is a gRPC target (``host:port``); the connection is plaintext unless
    ``credentials`` are given. ``timeout`` (seconds) is the default deadline of every call;
    ``None`` leaves it to the server's own limit. Every method raises :class:`ProsodiaError`
    when the server refuses the request.

    Unary calls that fail with ``UNAVAILABLE`` (a replica down or restarting behind a load
    balancer, a full queue) are retried by gRPC itself up to ``retries`` times (0 to 4,
    default 4) with exponential backoff; see :func:`service_config`. Streams are never resent.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        timeout: Optional[float] = None,
        credentials: Optional[grpc.ChannelCredentials] = None,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        config = service_config(retries)
        options: List[Tuple[str, Union[int, str]]] = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.enable_retries", 1 if config else 0),
            ("grpc.service_config", json.dumps(config)),
            # A call is retried only while its request is still buffered; the default buffer
            # (256 KiB) is smaller than most audio files, so it holds the largest message.
            ("grpc.per_rpc_retry_buffer_size", MAX_MESSAGE_BYTES + (1 << 20)),
        ]
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            self._channel = grpc.secure_channel(target, credentials, options=options)
        self.target = target
        self.timeout = timeout
        self.retries = retries
        # The generated stubs are untyped; this wrapper is the typed face.
        self._emotion = emotion_pb2_grpc.EmotionStub(self._channel)  # type: ignore[no-untyped-call]
        self._models = models_pb2_grpc.ModelsStub(self._channel)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        """Closes the connection."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- unary calls ------------------------------------------------------------------------

    def classify(self, audio: AudioInput, model: str = "", *, model_version: int = 0) -> Result:
        """Classifies one complete audio file (a path, or the file's bytes).

        ``model`` empty selects the server's default model; ``model_version`` 0 the newest
        loaded version.
        """
        request = emotion_pb2.ClassifyRequest(
            model=model, model_version=model_version, audio=_encoded(audio)
        )
        resp = self._unary(self._emotion.Classify, request)
        return Result(
            label=resp.label,
            scores=_scores(resp.scores),
            model=resp.model,
            model_version=resp.model_version,
            audio_seconds=resp.audio_duration_seconds,
            durations=_durations(resp.timings),
        )

    def extract_features(
        self,
        audio: AudioInput,
        *,
        preset: str = "",
        model: str = "",
        model_version: int = 0,
        frames: bool = False,
    ) -> Features:
        """The 46 utterance features of one audio file (and the frame matrices if ``frames``).

        With neither ``preset`` nor ``model`` the server uses the ``seed`` configuration;
        ``preset`` names a built-in configuration (``"seed"``, ``"speech"``), ``model`` uses
        that model's configuration.
        """
        request = emotion_pb2.ExtractFeaturesRequest(
            audio=_encoded(audio),
            model=model,
            model_version=model_version,
            preset=preset,
            include_frames=frames,
        )
        resp = self._unary(self._emotion.ExtractFeatures, request)
        return Features(
            features={f.name: f.value for f in resp.features},
            feature_config=resp.feature_config,
            sample_rate=resp.sample_rate,
            audio_seconds=resp.audio_duration_seconds,
            durations=_durations(resp.timings),
            frames={
                m.name: FrameMatrix(
                    name=m.name,
                    rows=m.rows,
                    cols=m.cols,
                    column_names=list(m.column_names),
                    data=list(m.data),
                    frame_step_seconds=m.frame_step_seconds,
                    first_frame_seconds=m.first_frame_seconds,
                )
                for m in resp.frames
            },
        )

    def models(self) -> ModelList:
        """Every model in the server's repository, with its versions and their states."""
        resp = self._unary(self._models.ListModels, models_pb2.ListModelsRequest())
        return ModelList(
            models=[
                ModelSummary(
                    name=m.name,
                    versions=[
                        ModelVersion(
                            version=v.version,
                            state=_model_state(v.state),
                            message=v.message,
                        )
                        for v in m.versions
                    ],
                )
                for m in resp.models
            ],
            default_model=resp.default_model,
        )

    def model_info(self, name: str, version: int = 0) -> ModelInfo:
        """Details of one model version (0: the newest), e.g. its labels."""
        info = self._unary(
            self._models.GetModel, models_pb2.GetModelRequest(name=name, version=version)
        )
        return ModelInfo(
            name=info.name,
            version=info.version,
            state=_model_state(info.status.state),
            labels=list(info.labels),
            backend=info.backend,
            extractor=info.extractor,
            feature_config=info.feature_config.name,
            stream_window_seconds=info.stream_window_seconds,
            stream_hop_seconds=info.stream_hop_seconds,
            description=info.description,
        )

    # -- streaming --------------------------------------------------------------------------

    def stream(
        self,
        chunks: Iterable[bytes],
        *,
        rate: int = 0,
        encoding: str = "s16le",
        channels: int = 1,
        model: str = "",
        model_version: int = 0,
        window: float = 0.0,
        hop: float = 0.0,
        interim: bool = True,
    ) -> Iterator[StreamEvent]:
        """Classifies audio as it arrives (``Emotion.StreamClassify``).

        ``chunks`` are consecutive pieces of audio of any size: headerless PCM in
        ``encoding`` (``"s16le"`` or ``"f32le"``, interleaved ``channels``, ``rate`` samples
        per second), or, with ``encoding="encoded"``, the bytes of an audio file (``rate`` and
        ``channels`` are then read from the file). ``window`` and ``hop`` are in seconds, 0
        for the model's defaults.

        Returns an iterator that yields :class:`WindowResult` (interim, one per window, only when ``interim``),
        :class:`UtteranceResult` (final, one per utterance) and lastly one
        :class:`StreamSummary`, as the server sends them; the call starts when iteration does.
        Chunks are sent while results are read, so ``chunks`` may be a live source (a
        microphone) that blocks. Bad arguments raise :class:`ProsodiaError` at once, server
        errors while iterating.
        """
        config = emotion_pb2.StreamConfig(
            model=model,
            model_version=model_version,
            window_seconds=window,
            hop_seconds=hop,
            interim_results=interim,
        )
        if encoding == "encoded":
            config.encoded.CopyFrom(emotion_pb2.EncodedFormat())
        elif encoding in _ENCODINGS:
            if rate <= 0:
                raise ProsodiaError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"raw {encoding} audio needs its sample rate (rate=...)",
                )
            config.raw.CopyFrom(
                audio_pb2.RawFormat(
                    encoding=_ENCODINGS[encoding], sample_rate=rate, channels=channels
                )
            )
        else:
            raise ProsodiaError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unknown encoding {encoding!r}: expected 's16le', 'f32le' or 'encoded'",
            )

        return self._stream_events(config, chunks)

    def _stream_events(
        self, config: emotion_pb2.StreamConfig, chunks: Iterable[bytes]
    ) -> Iterator[StreamEvent]:
        def requests() -> Iterator[emotion_pb2.StreamClassifyRequest]:
            yield emotion_pb2.StreamClassifyRequest(config=config)
            for chunk in chunks:
                if chunk:
                    yield emotion_pb2.StreamClassifyRequest(audio=bytes(chunk))

        responses = self._emotion.StreamClassify(requests(), timeout=self.timeout)
        try:
            for resp in responses:
                kind = resp.WhichOneof("result")
                if kind == "window":
                    w = resp.window
                    yield WindowResult(
                        start_seconds=w.start_seconds,
                        end_seconds=w.end_seconds,
                        label=w.label,
                        scores=_scores(w.scores),
                    )
                elif kind == "utterance":
                    u = resp.utterance
                    yield UtteranceResult(
                        index=u.index,
                        start_seconds=u.start_seconds,
                        end_seconds=u.end_seconds,
                        label=u.label,
                        scores=_scores(u.scores),
                    )
                elif kind == "summary":
                    s = resp.summary
                    yield StreamSummary(
                        audio_seconds=s.audio_seconds,
                        utterances=s.utterances,
                        label=s.label,
                        scores=_scores(s.scores),
                        model=s.model,
                        model_version=s.model_version,
                    )
                # A result kind newer than these stubs is skipped, not an error.
        except grpc.RpcError as e:
            raise ProsodiaError.from_rpc_error(e) from None
        finally:
            responses.cancel()

    def stream_file(
        self,
        path: Union[str, "os.PathLike[str]"],
        chunk_ms: int = 20,
        realtime: bool = False,
        **options: object,
    ) -> Iterator[StreamEvent]:
        """Streams a PCM WAV file as s16le chunks of ``chunk_ms`` milliseconds.

        The file is decoded with the standard library's ``wave`` module (8-, 16-, 24- and
        32-bit integer PCM; other formats raise :class:`ProsodiaError`), converted to 16-bit
        samples and sent with the file's rate and channel count. With ``realtime`` the chunks
        are paced at the audio's own speed, as a live source would send them. ``options`` go
        to :meth:`stream` (``model``, ``window``, ``hop``, ``interim``...).
        """
        pcm, rate, channels = read_wav_s16le(path)
        frame_bytes = 2 * channels
        per_chunk = max(1, rate * chunk_ms // 1000) * frame_bytes

        def chunks() -> Iterator[bytes]:
            start = time.monotonic()
            for offset in range(0, len(pcm), per_chunk):
                if realtime:
                    due = start + (offset / frame_bytes) / rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                yield pcm[offset : offset + per_chunk]

        return self.stream(
            chunks(), rate=rate, encoding="s16le", channels=channels, **options  # type: ignore[arg-type]
        )

    # -- plumbing ---------------------------------------------------------------------------

    def _unary(self, method: Callable[..., _Reply], request: Message) -> _Reply:
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as e:
            raise ProsodiaError.from_rpc_error(e) from None


def read_wav_s16le(path: Union[str, "os.PathLike[str]"]) -> Tuple[bytes, int, int]:
    """Reads an integer-PCM WAV file with ``wave``: (s16le bytes, sample rate, channels).

    8-bit (unsigned), 16-, 24- and 32-bit samples are converted to 16-bit by keeping their
    top 16 bits. Raises :class:`ProsodiaError` (``INVALID_ARGUMENT``) for a file ``wave``
    cannot read (float or compressed WAV, not a WAV at all); send such files with
    :meth:`Client.classify` or ``stream(..., encoding="encoded")`` instead.
    """
    try:
        with wave.open(os.fspath(path), "rb") as w:
            width = w.getsampwidth()
            rate = w.getframerate()
            channels = w.getnchannels()
            data = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        raise ProsodiaError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{os.fspath(path)}: not an integer-PCM WAV file the wave module reads ({e})",
        ) from None
    if channels < 1 or rate < 1 or width not in (1, 2, 3, 4):
        raise ProsodiaError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{os.fspath(path)}: unsupported WAV ({channels} channels, {rate} Hz, "
            f"{8 * width}-bit)",
        )
    n = len(data) // width
    out = bytearray(2 * n)
    if width == 1:
        # Unsigned 8-bit: flip the sign bit, and it becomes the high byte.
        out[1::2] = data[: n].translate(_FLIP_SIGN)
    else:
        # Little-endian: the top two bytes of each sample are its last two.
        out[0::2] = data[width - 2 : n * width : width]
        out[1::2] = data[width - 1 : n * width : width]
    return bytes(out), rate, channels


_FLIP_SIGN = bytes((b ^ 0x80) for b in range(256))


def _encoded(audio: AudioInput) -> audio_pb2.Audio:
    if isinstance(audio, (bytes, bytearray, memoryview)):
        return audio_pb2.Audio(encoded=bytes(audio))
    try:
        with open(os.fspath(audio), "rb") as f:
            return audio_pb2.Audio(encoded=f.read())
    except OSError as e:
        raise ProsodiaError(
            grpc.StatusCode.INVALID_ARGUMENT, f"cannot read {os.fspath(audio)}: {e.strerror}"
        ) from None


def _scores(scores: Sequence[emotion_pb2.ClassScore]) -> Dict[str, float]:
    return {s.label: float(s.probability) for s in scores}


def _durations(t: audio_pb2.Timings) -> Durations:
    return Durations(
        decode_ms=t.decode_ms,
        extract_ms=t.extract_ms,
        inference_ms=t.inference_ms,
        queue_ms=t.queue_ms,
        total_ms=t.total_ms,
    )


def _model_state(state: int) -> str:
    try:
        name = models_pb2.ModelState.Name(state)
    except ValueError:  # a state newer than these stubs
        return f"UNKNOWN({state})"
    return str(name).removeprefix("MODEL_STATE_")

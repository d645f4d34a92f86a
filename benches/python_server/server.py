#!/usr/bin/env python3
"""A Python grpcio implementation of ``prosodia.v1.Emotion/Classify``, the baseline of the
load benchmark (benches/run-load.sh, issue 5).

It does the same job as prosodia-server's Classify on the bundled model, the way a Python
service would usually be written: soundfile decodes the bytes, librosa resamples, trims and
computes the frame features the model's ``features.toml`` asks for, onnxruntime runs
``model.onnx``. The feature recipe is the one ``prosodia-dsp`` reproduces (librosa 0.11
defaults: centred Hann STFT with constant padding, Slaney mel filterbank, ``power_to_db`` with
``ref=1.0``, orthonormal DCT MFCCs, ``delta(mode="interp")``, centroid and rolloff on the
magnitude, onset strength from the log-mel), so the label should match the Rust server's.
The per-feature standardisation is inside the ONNX graph, as for the Rust server.

Only Classify is implemented; the other RPCs answer UNIMPLEMENTED. The stubs are generated
from ``proto/`` with grpcio-tools into a temporary directory at start, so nothing generated is
committed for this script.

    python server.py --listen 127.0.0.1:50061 --workers 2 [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import signal
import sys
import tempfile
import time
import tomllib
from concurrent import futures
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# One thread per request inside numpy/BLAS and numba: the gRPC pool is the parallelism, as
# the worker pool is in prosodia-server; BLAS threads on top of it only contend for cores.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def load_stubs(tmp: Path):
    """Generates the prosodia.v1 stubs from proto/ into ``tmp``; returns the emotion and audio
    message modules and the emotion service module."""
    from grpc_tools import protoc  # noqa: PLC0415 (only needed at start)

    proto_dir = ROOT / "proto"
    files = sorted(str(p.relative_to(proto_dir)) for p in (proto_dir / "prosodia/v1").glob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    rc = protoc.main(
        ["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={tmp}", f"--grpc_python_out={tmp}", *files]
    )
    if rc != 0:
        raise SystemExit(f"protoc failed ({rc}) on {files}")
    sys.path.insert(0, str(tmp))
    pb = importlib.import_module("prosodia.v1.emotion_pb2")
    audio_pb = importlib.import_module("prosodia.v1.audio_pb2")
    grpc_mod = importlib.import_module("prosodia.v1.emotion_pb2_grpc")
    return pb, audio_pb, grpc_mod


class Pipeline:
    """Decode → mono → resample → peak-normalise → trim → frame features → ONNX."""

    def __init__(self, model_dir: Path, intra_threads: int):
        import numpy as np
        import onnxruntime as ort

        self.np = np
        manifest = tomllib.loads((model_dir / "model.toml").read_text())
        feats = tomllib.loads((model_dir / manifest.get("features", "features.toml")).read_text())
        self.labels = manifest["labels"]
        self.name = manifest["name"]
        self.version = int(manifest["version"])
        self.min_frames = int(manifest.get("input", {}).get("min_frames", 1))
        pre, stft, mel = feats["preprocess"], feats["stft"], feats["mel"]
        self.sr = int(pre["resample_hz"])
        self.top_db = float(pre.get("trim_top_db", 0) or 0)
        self.n_fft, self.win, self.hop = int(stft["n_fft"]), int(stft["win_length"]), int(stft["hop_length"])
        self.n_mels, self.n_mfcc, self.fmin = int(mel["n_mels"]), int(mel["n_mfcc"]), float(mel["fmin_hz"])
        self.delta_width = int(mel["delta_width"])
        self.rolloff = float(feats.get("rolloff_percent", 0.85))
        self.frame_features = feats["frame_features"]
        import librosa

        self.mel_basis = librosa.filters.mel(sr=self.sr, n_fft=self.n_fft, n_mels=self.n_mels, fmin=self.fmin)
        known = {"mfcc", "mfcc_delta", "rms", "zcr", "spectral_centroid", "spectral_rolloff", "onset_strength", "logmel_db"}
        unknown = set(self.frame_features) - known
        if unknown:
            raise SystemExit(f"frame features {sorted(unknown)} are not implemented here")
        options = ort.SessionOptions()
        # One request per pool thread: parallelism comes from the gRPC pool, as in the Rust
        # server's worker pool, so each ONNX call runs on its caller's thread.
        options.intra_op_num_threads = intra_threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(model_dir / manifest.get("onnx", "model.onnx")), options, providers=["CPUExecutionProvider"]
        )

    def classify(self, data: bytes):
        """Returns (probabilities, duration_s, decode_ms, extract_ms, infer_ms)."""
        import soundfile as sf

        t0 = time.perf_counter()
        y, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        duration = y.shape[0] / sr
        t1 = time.perf_counter()
        probs, ext, inf = self.run(y.mean(axis=1), sr)
        return probs, duration, (t1 - t0) * 1e3, ext, inf

    def warm_up(self) -> None:
        """Runs the pipeline once on a synthetic clip, so numba's JIT compilation (seconds)
        happens at start rather than in the first request."""
        np = self.np
        t = np.arange(2 * self.sr, dtype=np.float32) / self.sr
        self.run((0.5 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32), self.sr)

    def run(self, y, sr: int):
        """Mono samples → (probabilities, extract_ms, infer_ms)."""
        import librosa

        np = self.np
        t1 = time.perf_counter()
        if sr != self.sr:
            y = librosa.resample(y, orig_sr=sr, target_sr=self.sr)
        peak = float(np.max(np.abs(y))) if y.size else 0.0
        if peak <= 0.0:
            raise ValueError("the audio is silent")
        y = y / peak
        if self.top_db > 0:
            y, _ = librosa.effects.trim(y, top_db=self.top_db, frame_length=self.n_fft, hop_length=self.hop)
        power = np.abs(librosa.stft(y, n_fft=self.n_fft, hop_length=self.hop, win_length=self.win, window="hann", center=True, pad_mode="constant")) ** 2
        # librosa.feature.melspectrogram(S=power) rebuilds the filterbank per call and its
        # einsum is slow on the Fortran-ordered STFT (70 ms a clip here): the same product with
        # the basis built once and a C-ordered spectrum.
        power = np.ascontiguousarray(power)
        melspec = self.mel_basis @ power
        logmel = librosa.power_to_db(melspec)
        mag = np.sqrt(power)
        cols = []
        mfcc = None
        for name in self.frame_features:
            if name in ("mfcc", "mfcc_delta") and mfcc is None:
                mfcc = librosa.feature.mfcc(S=logmel, n_mfcc=self.n_mfcc)
            if name == "logmel_db":
                cols.append(logmel)
            elif name == "mfcc":
                cols.append(mfcc)
            elif name == "mfcc_delta":
                cols.append(librosa.feature.delta(mfcc, width=self.delta_width, mode="interp"))
            elif name == "rms":
                cols.append(librosa.feature.rms(y=y, frame_length=self.n_fft, hop_length=self.hop))
            elif name == "zcr":
                cols.append(librosa.feature.zero_crossing_rate(y, frame_length=self.n_fft, hop_length=self.hop))
            elif name == "spectral_centroid":
                cols.append(librosa.feature.spectral_centroid(S=mag, sr=self.sr, n_fft=self.n_fft))
            elif name == "spectral_rolloff":
                cols.append(librosa.feature.spectral_rolloff(S=mag, sr=self.sr, n_fft=self.n_fft, roll_percent=self.rolloff))
            elif name == "onset_strength":
                cols.append(librosa.onset.onset_strength(S=logmel, sr=self.sr)[np.newaxis, :])
        frames = min(c.shape[1] for c in cols)
        x = np.concatenate([c[:, :frames] for c in cols], axis=0).T.astype(np.float32)
        if frames < self.min_frames:
            raise ValueError(f"the audio yields {frames} frames; the model needs {self.min_frames}")
        t2 = time.perf_counter()
        (probs,) = self.session.run(
            ["probabilities"], {"features": x[np.newaxis], "lengths": np.array([frames], dtype=np.int64)}
        )
        t3 = time.perf_counter()
        return probs[0], (t2 - t1) * 1e3, (t3 - t2) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:50061")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="gRPC thread pool size")
    ap.add_argument("--intra-threads", type=int, default=1, help="onnxruntime intra-op threads per call")
    ap.add_argument("--model-dir", type=Path, default=ROOT / "models/seed-cnn-lstm/1")
    ap.add_argument("--classify", type=Path, help="classify this file locally, print the label and exit")
    args = ap.parse_args()

    import grpc

    pipeline = Pipeline(args.model_dir, args.intra_threads)
    pipeline.warm_up()
    if args.classify:
        probs, *_ = pipeline.classify(args.classify.read_bytes())
        print(pipeline.labels[int(probs.argmax())])
        return

    with tempfile.TemporaryDirectory(prefix="prosodia-pystubs-") as tmp:
        pb, audio_pb, pb_grpc = load_stubs(Path(tmp))

        class Emotion(pb_grpc.EmotionServicer):
            def Classify(self, request, context):  # noqa: N802 (gRPC naming)
                start = time.perf_counter()
                if request.audio.WhichOneof("source") != "encoded":
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "only audio.encoded is supported here")
                try:
                    probs, duration, dec, ext, inf = pipeline.classify(request.audio.encoded)
                except Exception as e:  # noqa: BLE001 (every decoder/feature failure is the client's input)
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{type(e).__name__}: {e}")
                best = int(probs.argmax())
                return pb.ClassifyResponse(
                    label=pipeline.labels[best],
                    scores=[pb.ClassScore(label=l, probability=float(p)) for l, p in zip(pipeline.labels, probs)],
                    model=pipeline.name,
                    model_version=pipeline.version,
                    audio_duration_seconds=duration,
                    timings=audio_pb.Timings(
                        decode_ms=dec, extract_ms=ext, inference_ms=inf, total_ms=(time.perf_counter() - start) * 1e3
                    ),
                )

        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=args.workers),
            options=[("grpc.max_receive_message_length", 64 << 20)],
        )
        pb_grpc.add_EmotionServicer_to_server(Emotion(), server)
        port = server.add_insecure_port(args.listen)
        if port == 0:
            raise SystemExit(f"cannot listen on {args.listen}")
        server.start()
        print(f"python_server: listening on {args.listen} with {args.workers} workers", file=sys.stderr, flush=True)
        signal.signal(signal.SIGTERM, lambda *_: server.stop(1))
        server.wait_for_termination()


if __name__ == "__main__":
    main()

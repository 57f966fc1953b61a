"""``Network.summary`` and the estimators' ``summary()``: each layer's output shape and
parameter count against PyTorch's equivalent modules (their outputs' shapes and
``numel`` of their parameters and buffers: an independent count), and the table's text.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import backendnn as bn
from backendnn import Network
from backendnn.layers import (
    Activation,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    Dense,
    Flatten,
    GlobalAvgPool1d,
    LayerNorm,
    MaxPool2d,
)  # fmt: skip


def _pairs(nn):
    """(our layer, the torch module) for one network, input (3, 12, 12)."""
    return [
        (Conv2d(3, 8, 3, padding=1), nn.Conv2d(3, 8, 3, padding=1)),
        (BatchNorm2d(8), nn.BatchNorm2d(8)),
        (Activation("relu"), nn.ReLU()),
        (MaxPool2d(2), nn.MaxPool2d(2)),
        (Conv2d(8, 6, 3, stride=2, groups=2, bias=False), nn.Conv2d(8, 6, 3, 2, groups=2,
                                                                    bias=False)),
        (AvgPool2d(2, stride=1), nn.AvgPool2d(2, stride=1)),
        (Flatten(), nn.Flatten()),
        (Dense(6, 10), nn.Linear(6, 10)),
        (BatchNorm1d(10), nn.BatchNorm1d(10)),
        (LayerNorm(10), nn.LayerNorm(10)),
        (Dense(10, 4, bias=False), nn.Linear(10, 4, bias=False)),
    ]  # fmt: skip


def test_summary_matches_torch_shapes_and_counts():
    torch = pytest.importorskip("torch")
    pairs = _pairs(torch.nn)
    summary = Network([a for a, _ in pairs]).summary((3, 12, 12))
    x = torch.zeros(2, 3, 12, 12)
    assert summary.input_shape == (None, 3, 12, 12)
    assert len(summary.rows) == len(pairs)
    trainable = non_trainable = 0
    for row, (_, module) in zip(summary.rows, pairs):
        module.eval()
        x = module(x)
        params = sum(p.numel() for p in module.parameters())
        buffers = sum(b.numel() for b in module.buffers())
        assert row.output_shape == (None, *x.shape[1:]), row
        assert (row.params, row.buffers) == (params, buffers), row
        trainable, non_trainable = trainable + params, non_trainable + buffers
    torch_net = torch.nn.Sequential(*(m for _, m in pairs))
    assert summary.trainable == trainable == sum(p.numel() for p in torch_net.parameters())
    assert summary.non_trainable == non_trainable == sum(b.numel() for b in torch_net.buffers())
    assert summary.total == trainable + non_trainable


def test_summary_of_a_residual_block_lists_its_layers():
    torch = pytest.importorskip("torch")
    block = bn.layers.Residual([Conv1d(4, 4, 3, padding=1), Activation("tanh")],
                               [Conv1d(4, 4, 1)])  # fmt: skip
    summary = Network([block, GlobalAvgPool1d()]).summary((4, 9))
    assert [r.index for r in summary.rows] == ["0", "0.f.0", "0.f.1", "0.shortcut.0", "1"]
    f, shortcut = torch.nn.Conv1d(4, 4, 3, padding=1), torch.nn.Conv1d(4, 4, 1)
    n = sum(p.numel() for m in (f, shortcut) for p in m.parameters())
    assert summary.rows[0].params == summary.total == n
    assert summary.rows[1].params + summary.rows[3].params == n
    assert summary.rows[-1].output_shape == (None, 4)


def test_summary_text():
    net = Network([Dense(3, 2), BatchNorm1d(2), Activation("relu")])
    expected = "\n".join([
        "Input shape: (None, 3)",
        "#  Layer" + " " * 86 + "Output shape  Param #",
        "-  " + "-" * 89 + "  ------------  -------",
        "0  Dense(3, 2)" + " " * 80 + "(None, 2)           8",
        "1  BatchNorm1d(2, eps=1e-05, momentum=0.1, affine=True, bias=True, "
        "track_running_stats=True)  (None, 2)           9",
        "2  Activation(ReLU())" + " " * 73 + "(None, 2)           0",
        "=" * 115,
        "Total params: 17",
        "Trainable params: 12",
        "Non-trainable params: 5",
    ])  # fmt: skip
    summary = net.summary((3,))
    assert str(summary) == repr(summary) == expected


def test_estimator_summary_ends_with_its_output_activation():
    X, y = np.random.default_rng(0).normal(size=(30, 5)), np.arange(30) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        model = bn.MLPClassifier(hidden_layer_sizes=(7,), max_iter=2).fit(X, y)
    summary = model.summary()
    assert [r.layer for r in summary.rows] == [
        "Dense(5, 7)",
        "Activation(ReLU())",
        "Dense(7, 3)",
        "output: softmax",
    ]
    assert summary.total == 5 * 7 + 7 + 7 * 3 + 3
    assert summary.rows[-1].output_shape == (None, 3)


def test_summary_names_a_layer_that_refuses_its_input():
    with pytest.raises(ValueError, match="layer 1"):
        Network([Dense(3, 2), Dense(4, 1)]).summary((3,))

"""Smoke tests of the benchmark tool ``python -m backendnn.bench``, run tiny on NumPy."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from backendnn import bench

TINY = ["--sizes", "8,8,3", "--batch", "4", "--steps", "6", "--warmup", "1", "--repeats", "3"]
TINY += ["--cooldown", "0"]


def _check_row(row: dict, engine: str) -> None:
    assert row["engine"] == engine
    assert "error" not in row, row.get("error")
    assert row["network"] == "8-8-3" and row["batch"] == 4
    for key in ("ms_per_step", "samples_per_s", "tflops"):
        assert row[key] > 0, (key, row)
    assert len(row["ms_per_step_rounds"]) == 3
    assert row["device"] == "cpu" and row["precision"] == "fp32"
    assert row["samples_per_s"] == pytest.approx(4 / (row["ms_per_step"] * 1e-3))


def test_step_flops_counts_forward_and_backward_matmuls():
    # forward 2*m*(8*8 + 8*3), backward dW the same, dx for the second layer only
    m = 4
    assert bench.step_flops((8, 8, 3), m) == 3 * 2 * m * (64 + 24) - 2 * m * 64


def test_bench_numpy_table_and_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    engines = "backendnn-numpy,backendnn-numpy-fit"
    doc = bench.main(
        TINY + ["--engines", engines, "--baseline", "backendnn-numpy", "--json", str(out)]
    )
    printed = capsys.readouterr().out
    assert json.loads(out.read_text())["results"] == json.loads(json.dumps(doc["results"]))
    rows = {r["engine"]: r for r in doc["results"]}
    assert list(rows) == engines.split(",")
    for name, row in rows.items():
        _check_row(row, name)
        assert name in printed
    assert rows["backendnn-numpy"]["ratio"] == pytest.approx(1.0)
    assert rows["backendnn-numpy"]["steps"] == 6  # 3 rounds of 2 steps
    assert rows["backendnn-numpy-fit"]["steps"] == 3 * doc["config"]["n_batches"]
    assert rows["backendnn-numpy-fit"]["epoch_ms_per_step"] > 0
    assert doc["config"]["flops_per_step"] == bench.step_flops((8, 8, 3), 4)
    assert any(key.startswith("backendnn-numpy-fit / backendnn-numpy") for key in doc["derived"])
    for column in ("engine", "ms/step", "samples/s", "TFLOP/s", "x backendnn-numpy"):
        assert column in printed


def test_bench_peers_on_cpu():
    engines = ["backendnn-numpy", "numpy-matmuls"]
    engines += ["sklearn"] if importlib.util.find_spec("sklearn") else []
    engines += ["torch-eager"] if importlib.util.find_spec("torch") else []
    if len(engines) == 2:
        pytest.skip("neither scikit-learn nor torch is installed")
    doc = bench.main(TINY + ["--engines", ",".join(engines), "--quiet"])
    for row in doc["results"]:
        if row["engine"] == "torch-eager" and row.get("device") == "gpu":
            continue
        _check_row(row, row["engine"])
    if "sklearn" in engines:
        assert doc["config"]["baseline"] == "sklearn" or doc["machine"].get("gpu")
    ms = {row["engine"]: row["ms_per_step"] for row in doc["results"]}
    (key,) = [k for k in doc["derived"] if k.startswith("backendnn-numpy / numpy-matmuls")]
    assert doc["derived"][key] == pytest.approx(ms["backendnn-numpy"] / ms["numpy-matmuls"])


def test_array_api_strict_engine():
    pytest.importorskip("array_api_strict")
    doc = bench.main(TINY + ["--engines", "backendnn-array_api_strict", "--quiet"])
    _check_row(doc["results"][0], "backendnn-array_api_strict")


def test_unavailable_engine_is_reported_not_raised(monkeypatch):
    monkeypatch.setattr(bench, "unavailable", lambda engine: "not here (test)")
    doc = bench.main(TINY + ["--engines", "backendnn-numpy", "--quiet"])
    assert doc["results"][0]["error"] == "unavailable: not here (test)"


def test_unknown_engine_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        bench.main(TINY + ["--engines", "backendnn-numpy,no-such-engine"])
    assert "no-such-engine" in capsys.readouterr().err


def test_memory_runs_each_engine_in_a_subprocess(tmp_path):
    out = tmp_path / "mem.json"
    cmd = [sys.executable, "-m", "backendnn.bench", *TINY, "--engines", "backendnn-numpy"]
    cmd += ["--memory", "--json", str(out)]
    root = Path(bench.__file__).resolve().parents[1]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "peak RSS MB" in proc.stdout
    row = json.loads(out.read_text())["results"][0]
    _check_row(row, "backendnn-numpy")
    assert row["peak_rss_mb"] > 0 and row["rss_rise_mb"] >= 0

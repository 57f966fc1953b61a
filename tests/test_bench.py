"""Smoke tests of the benchmark tool ``python -m backendnn.bench``, run tiny on NumPy."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
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


def test_lenet_flops_counts_convolutions_and_dense_layer():
    m = 4
    conv1, conv2 = 2 * m * 16 * 28 * 28 * 1 * 9, 2 * m * 32 * 14 * 14 * 16 * 9
    dense = 2 * m * 1568 * 10
    assert bench.lenet_flops(m) == 3 * (conv1 + conv2 + dense) - conv1  # no dx for the input


def test_conv_problem_engines_agree_on_the_loss(capsys):
    engines = ["backendnn-numpy"]
    engines += ["torch-eager"] if importlib.util.find_spec("torch") else []
    engines += ["jax-grad"] if importlib.util.find_spec("jax") else []
    args = ["--model", "lenet", "--batch", "4", "--steps", "3", "--warmup", "1"]
    args += ["--repeats", "3", "--cooldown", "0", "--engines", ",".join(engines)]
    doc = bench.main(args)
    printed = capsys.readouterr().out
    assert "convolutions" in printed and "lenet-1x28x28" in printed
    assert doc["config"]["model"] == "lenet"
    assert doc["config"]["flops_per_step"] == bench.lenet_flops(4)
    rows = {r["engine"]: r for r in doc["results"]}
    assert list(rows) == engines
    for name, row in rows.items():
        assert "error" not in row, row["error"]
        assert row["network"] == "lenet-1x28x28" and row["batch"] == 4
        assert row["ms_per_step"] > 0 and row["tflops"] > 0
        assert len(row["ms_per_step_rounds"]) == 3
        # the same weights, batches and number of updates: the same last loss
        assert row["loss"] == pytest.approx(rows["backendnn-numpy"]["loss"], rel=1e-5), name


def test_resnet_engines_run_and_the_plain_ones_agree_on_the_loss():
    """The residual CNN (batch norm, dropout), tiny: every engine runs; without batch norm
    and dropout (``-plain``) the same weights and batches give the same loss everywhere."""
    have = {lib: importlib.util.find_spec(lib) is not None for lib in ("torch", "jax")}
    engines = ["backendnn-numpy", "backendnn-numpy-plain"]
    if have["torch"]:
        engines += ["torch-eager", "torch-eager-plain", "backendnn-torch-plain"]
    engines += ["jax-grad", "jax-grad-plain"] if have["jax"] else []
    args = ["--model", "resnet", "--batch", "4", "--steps", "2", "--warmup", "1"]
    args += ["--repeats", "2", "--cooldown", "0", "--quiet", "--engines", ",".join(engines)]
    doc = bench.main(args)
    assert doc["config"]["flops_per_step"] == bench.resnet_flops(4)
    rows = {r["engine"]: r for r in doc["results"]}
    for name, row in rows.items():
        assert "error" not in row, (name, row["error"])
        assert row["network"] == "resnet-1x28x28"  # the run's model; -plain engines drop layers
        assert row["ms_per_step"] > 0 and row["loss"] > 0
    for name in engines:
        if name.endswith("-plain"):
            assert rows[name]["loss"] == pytest.approx(
                rows["backendnn-numpy-plain"]["loss"], rel=1e-4
            ), name
    if have["torch"]:
        assert any("torch-eager / torch-eager-plain" in key for key in doc["derived"])


def test_mlp_only_engines_and_sizes_are_refused_for_lenet(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--model", "lenet", "--engines", "backendnn-numpy,sklearn"])
    assert "--engines sklearn: not for --model lenet" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--model", "lenet", "--sizes", "8,3", "--engines", "backendnn-numpy"])
    assert "--sizes" in capsys.readouterr().err
    assert "backendnn-torch-im2col" not in bench.default_engines(False, "mlp")


@pytest.mark.parametrize("model", ["mlp", "lenet"])
def test_memory_child_gets_the_same_problem(model, tmp_path):
    from backendnn.bench import cli

    given = ["--model", model, "--batch", "4", "--steps", "6", "--threads", "1"]
    given += [] if model == "lenet" else ["--sizes", "8,8,3"]
    args = cli._parse(given + ["--engines", "backendnn-numpy", "--memory"])
    p = bench.make_problem(args.sizes, 4, 6, model=model)
    child = cli._parse(cli.child_arguments("backendnn-numpy", args, p, str(tmp_path / "o.json")))
    assert (child.model, child.sizes, child.batch, child.steps) == (model, args.sizes, 4, 6)
    assert child.threads == 1 and child.child and child.memory


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
    assert any(key.startswith("backendnn-numpy / backendnn-numpy-fit") for key in doc["derived"])
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
    (key,) = [k for k in doc["derived"] if k.startswith("numpy-matmuls / backendnn-numpy")]
    assert doc["derived"][key] == pytest.approx(ms["numpy-matmuls"] / ms["backendnn-numpy"])


def test_array_api_strict_engine():
    pytest.importorskip("array_api_strict")
    doc = bench.main(TINY + ["--engines", "backendnn-array_api_strict", "--quiet"])
    _check_row(doc["results"][0], "backendnn-array_api_strict")


def test_unavailable_engine_is_reported_not_raised(monkeypatch):
    missing = dataclasses.replace(
        bench.ENGINES["backendnn-numpy"], requires="module:backendnn_no_such_module"
    )
    monkeypatch.setitem(bench.ENGINES, "backendnn-numpy", missing)
    doc = bench.main(TINY + ["--engines", "backendnn-numpy", "--quiet"])
    assert doc["results"][0]["error"] == "unavailable: backendnn_no_such_module is not installed"


def test_unknown_engine_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        bench.main(TINY + ["--engines", "backendnn-numpy,no-such-engine"])
    assert "no-such-engine" in capsys.readouterr().err


@pytest.mark.parametrize(
    "bad",
    [
        ["--sizes", "64"],
        ["--sizes", "64,0,10"],
        ["--sizes", "64,x"],
        ["--batch", "0"],
        ["--steps", "0"],
        ["--steps", "-3"],
        ["--repeats", "0"],
        ["--warmup", "-1"],
        ["--seed", "-1"],
        ["--lr", "0"],
        ["--cooldown", "-0.5"],
        ["--threads", "0"],
        ["--engines", " , "],
        ["--json", "{tmp}/no-such-folder/out.json"],
    ],
)
def test_bad_argument_is_a_usage_error_naming_it(bad, tmp_path, capsys):
    option, value = bad[0], bad[1].format(tmp=tmp_path)
    with pytest.raises(SystemExit) as exc:
        bench.main(TINY + ["--engines", "backendnn-numpy", option, value])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert f"error: {option} " in err, err
    assert out == ""  # refused before any work


def test_help_shows_every_default(capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    options = text.split("options:", 1)[1].split(" Engines:", 1)[0]
    helps = {s.split()[0]: s for s in re.split(r" (?=--[a-z])", options) if s.startswith("--")}
    del helps["--help"]
    assert {"--sizes", "--steps", "--engines", "--json", "--memory", "--quiet"} <= set(helps)
    for option, line in helps.items():
        assert "(default: " in line, option
    for option, default in [
        ("--sizes", "784,512,512,10"),
        ("--batch", "256"),
        ("--warmup", "5"),
        ("--repeats", "7"),
        ("--cooldown", "0.25"),
        ("--lr", "0.01"),
        ("--seed", "0"),
    ]:
        assert f"(default: {default})" in helps[option], helps[option]


def test_memory_runs_each_engine_in_a_subprocess(tmp_path):
    out = tmp_path / "mem.json"
    cmd = [sys.executable, "-m", "backendnn.bench", *TINY, "--engines", "backendnn-numpy"]
    cmd += ["--memory", "--json", str(out)]
    root = Path(bench.__file__).resolve().parents[2]  # the folder above backendnn/
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "peak RSS MB" in proc.stdout
    row = json.loads(out.read_text())["results"][0]
    _check_row(row, "backendnn-numpy")
    assert row["peak_rss_mb"] > 0 and row["rss_rise_mb"] >= 0


# ---------------------------------------------------------------------- reading the output


def test_every_derived_ratio_is_a_speed_up_of_the_engine_named_second():
    """ "A / B" is A's ms over B's: B's speed-up. Each B below runs twice as fast as its
    A, so every ratio must read 2, never 0.5."""
    from backendnn.bench.report import derived

    ms = {
        "numpy-matmuls": 2.0, "torch-eager": 2.0, "jax-grad": 2.0,
        "backendnn-numpy": 1.0, "backendnn-numpy-fit": 0.5, "backendnn-numpy-dask-fit": 0.25,
        "backendnn-jax": 1.0, "backendnn-jax-eager": 2.0, "backendnn-jax-im2col": 2.0,
        "backendnn-torch": 1.0, "backendnn-torch-im2col": 2.0,
    }  # fmt: skip
    rows = {name: {"ms_per_step": value} for name, value in ms.items()}
    rows["backendnn-numpy-fit"]["epoch_ms_per_step"] = 0.5
    rows["backendnn-numpy-dask-fit"]["epoch_ms_per_step"] = 0.25
    ratios = derived(rows)
    assert len(ratios) == 12, ratios
    assert ratios == {key: pytest.approx(2.0) for key in ratios}
    assert all(re.match(r"\S+ / \S+", key) for key in ratios)


@pytest.mark.parametrize(
    "value, text",
    [(0.0012, "0.00120"), (0.004567, "0.00457"), (0.5, "0.500"), (2.5, "2.50"), (118.2, "118")],
)
def test_ratios_keep_three_significant_figures(value, text):
    from backendnn.bench.report import significant

    assert significant(value) == text


def test_table_and_header_say_which_way_a_ratio_reads():
    from backendnn.bench.report import describe, format_table

    doc = bench.main(TINY + ["--engines", "backendnn-numpy", "--quiet"])
    doc["results"][0]["ratio"] = 0.0012
    assert "0.00120" in format_table(doc)
    assert "every ratio is a speed-up" in describe(doc)


@pytest.mark.parametrize(
    "pools, cores, load, warned",
    [
        ({"openblas": 2, "torch": 2}, 2, 0.3, None),  # a quiet machine, one thread a core
        ({"openblas": 1, "torch": 1}, 2, 9.3, None),  # busy, but --threads 1 already
        ({"openblas": 2, "torch": 4}, 2, 0.3, "torch 4 threads on 2 cores"),
        ({"openblas": 2, "torch": 2}, 2, 1.5, "load average 1.5 on 2 cores"),
        ({"openblas": 16}, 16, None, None),  # no load average (Windows)
        ({"openblas": 32}, 16, None, "openblas 32 threads on 16 cores"),
    ],
)
def test_oversubscription_warning(pools, cores, load, warned):
    from backendnn.bench.report import oversubscription

    text = oversubscription(pools, cores, load)
    if warned is None:
        assert text is None
    else:
        assert warned in text and "--threads 1" in text

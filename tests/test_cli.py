"""`python -m iwavb train` and `info` as a newcomer would use them."""

from __future__ import annotations

import subprocess
import sys

import torch
from conftest import require_data

from iwavb.cli import main


def test_train_then_info(tmp_path, capsys):
    out = tmp_path / "toy.safetensors"
    status = main(
        [
            "train",
            "--data",
            "toy",
            "--method",
            "iwae",
            "--k",
            "4",
            "--latent",
            "2",
            "--steps",
            "120",
            "--eval-every",
            "60",
            "--threads",
            "1",
            "--out",
            str(out),
        ]
    )
    assert status == 0 and out.exists()
    assert "saved" in capsys.readouterr().out
    assert main(["info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "IWAE (q gaussian, K=4) on toy" in printed and "step 120 of 120" in printed


def test_conv_on_a_cpu_warns_what_it_costs(tmp_path, capsys, monkeypatch):
    require_data("MNIST")
    monkeypatch.setattr("iwavb.cli.commands.train_with_progress", lambda *args: 0)  # the warning, not seconds per step
    status = main(
        [
            "train",
            "--data",
            "mnist",
            "--family",
            "conv",
            "--method",
            "vae",
            "--latent",
            "2",
            "--steps",
            "1",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--out",
            str(tmp_path / "conv.safetensors"),
        ]
    )
    assert status == 0
    assert "s per training step at K = 1" in capsys.readouterr().err


def test_resume_extends_a_run(tmp_path, capsys):
    out = tmp_path / "toy.safetensors"
    main(
        [
            "train",
            "--data",
            "toy",
            "--method",
            "avb",
            "--latent",
            "2",
            "--steps",
            "60",
            "--threads",
            "1",
            "--out",
            str(out),
        ]
    )
    assert main(["train", "--resume", str(out), "--steps", "100", "--threads", "1"]) == 0
    assert main(["info", str(out)]) == 0
    assert "step 100 of 100" in capsys.readouterr().out


def test_bad_input_gives_a_message_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    assert main(["info", str(bad)]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["train", "--method", "vae", "--k", "5", "--data", "toy"]) == 2
    assert "VAE uses K = 1" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["train", "--data", "toy", "--device", "cuda", "--threads", "1"]) == 2
        assert "PyTorch sees no GPU" in capsys.readouterr().err


def test_reproduce_lists_the_manifest(capsys):
    assert main(["reproduce", "--list"]) == 0
    printed = capsys.readouterr().out
    assert "toy-iwavb-k10" in printed and "grid" in printed


def test_help_explains_the_methods():
    result = subprocess.run([sys.executable, "-m", "iwavb", "train", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "implicit q" in result.stdout and "--minutes" in result.stdout


def test_cli_defaults_are_the_configs_own():
    """No option restates a default: parsed with no options, train and eval give the dataclasses' defaults."""
    from iwavb.cli.commands import build_config
    from iwavb.cli.options import given
    from iwavb.cli.parser import build_parser
    from iwavb.evaluation.evaluate import EvalSettings
    from iwavb.training.config import TrainConfig

    assert build_config(build_parser().parse_args(["train"])) == TrainConfig()
    assert EvalSettings(**given(build_parser().parse_args(["eval", "x.safetensors"]), EvalSettings)) == EvalSettings()
    assert build_parser().parse_args(["eval", "x", "--n-test", "all"]).n_test is None


def test_zero_steps_is_refused_not_replaced(capsys):
    assert main(["train", "--data", "toy", "--steps", "0", "--threads", "1"]) == 2
    assert "steps must be a positive integer" in capsys.readouterr().err


def test_resume_refuses_settings_it_cannot_change(tmp_path, capsys):
    out = tmp_path / "toy.safetensors"
    main(
        [
            "train",
            "--data",
            "toy",
            "--method",
            "vae",
            "--latent",
            "2",
            "--steps",
            "10",
            "--threads",
            "1",
            "--out",
            str(out),
        ]
    )
    assert main(["train", "--resume", str(out), "--latent", "4"]) == 2
    assert "--latent cannot change" in capsys.readouterr().err

"""`python -m iwavb train` and `info` as a newcomer would use them."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from conftest import require_data
from hypothesis import given, settings
from hypothesis import strategies as st

from iwavb.cli import main
from iwavb.cli.commands import build_config
from iwavb.cli.parser import build_parser
from iwavb.errors import SettingError


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
    assert "--steps: steps must be a whole number at least 1, got 0" in capsys.readouterr().err


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


# -- every option validated, no traceback ever -------------------------------------------------------------
NAMED_IN_THE_ISSUE = [
    (["train", "--lr", "inf"], "--lr"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--lr", "-1"], "--lr"),
    (["train", "--steps", "0"], "--steps"),
    (["train", "--minutes", "0"], "--minutes"),
    (["train", "--minutes", "-3"], "--minutes"),
    (["train", "--threads", "0"], "--threads"),
    (["train", "--threads", "1000"], "--threads"),
    (["train", "--device", "tpu"], "--device"),
    (["train", "--k", "100000000"], "--k"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--seed", "-1"], "--seed"),
    (["train", "--disc-steps", "100000"], "--disc-steps"),
    (["train", "--hidden", "0"], "--hidden"),
    (["train", "--data", "cifar"], "--data"),
    (["train", "--owner", "  "], "--owner"),
    (["eval", "x.safetensors", "--n-test", "0"], "--n-test"),
    (["eval", "x.safetensors", "--chains", "0"], "--chains"),
    (["eval", "x.safetensors", "--device", "tpu"], "--device"),
    (["eval", "x.safetensors", "--seed", "-1"], "--seed"),
    (["reproduce", "toy-vae", "--device", "tpu"], "--device"),
]


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """main's status and stderr; argparse's own errors exit through SystemExit."""
    try:
        status = main(argv)
    except SystemExit as exit:
        status = exit.code
    return status, capsys.readouterr().err


@pytest.mark.parametrize("argv,flag", NAMED_IN_THE_ISSUE, ids=[" ".join(a) for a, _ in NAMED_IN_THE_ISSUE])
def test_a_bad_option_is_one_line_that_names_it(argv, flag, capsys):
    status, err = run_cli([*argv, "--data", "toy"] if argv[0] == "train" and "--data" not in argv else argv, capsys)
    assert status == 2
    assert flag in err and "Traceback" not in err, err


TRAIN_OPTIONS = ["--k", "--latent", "--hidden", "--noise-dim", "--steps", "--batch-size", "--lr", "--disc-lr"]
TRAIN_OPTIONS += ["--disc-steps", "--eval-every", "--seed", "--device", "--family", "--data"]


@settings(max_examples=150, deadline=None)
@given(
    option=st.sampled_from(TRAIN_OPTIONS),
    value=st.one_of(
        st.integers(-(10**12), 10**12).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(str),
        st.text(max_size=6),
        st.sampled_from(["cuda:9", "CPU", "auto ", "1e400", "0x10", "-0"]),
    ),
)
def test_any_value_of_any_train_option_makes_a_run_or_a_message_naming_it(option, value):
    """Parsed and validated as `train` does (without training): a config within every bound, or the
    option named in argparse's message or in the setting's error."""
    from iwavb.cli.parser import option_flag

    parser = build_parser()
    try:
        args = parser.parse_args(["train", "--method", "iwavb", option, value])
    except SystemExit:
        return  # argparse printed "argument --x: ..." (checked by name in the test above)
    try:
        config = build_config(args)
    except SettingError as err:
        assert option_flag(err.name) == option, (option, value, err)
        return
    assert 2 <= config.k <= 1_000_000 and config.lr > 0 and math.isfinite(config.lr) and config.seed >= 0


def test_no_traceback_reaches_a_user_even_for_a_bug(monkeypatch, capsys):
    from iwavb.cli import commands

    def broken(args):
        raise ZeroDivisionError("planted")

    monkeypatch.setattr(commands, "run", broken)
    status, err = run_cli(["info", "x.safetensors"], capsys)
    assert status == 1 and err.strip() == "error: unexpected ZeroDivisionError: planted (a bug; --debug shows where)"
    status, err = run_cli(["info", "x.safetensors", "--debug"], capsys)
    assert status == 1 and "Traceback" in err and "planted" in err


def test_info_on_a_folder_says_it_is_a_folder(tmp_path, capsys):
    status, err = run_cli(["info", str(tmp_path)], capsys)
    assert status == 2 and "is a folder, not a checkpoint file" in err


def test_a_run_diverging_at_step_0_writes_nothing_beside_a_good_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IWAVB_RUNS_DIR", str(tmp_path))
    common = ["train", "--data", "toy", "--method", "vae", "--latent", "2", "--threads", "1"]
    assert main([*common, "--steps", "20"]) == 0
    (good,) = tmp_path.iterdir()
    before = good.read_bytes()
    capsys.readouterr()
    assert main([*common, "--steps", "5", "--lr", "1e30"]) == 3  # diverges at once: rolled back to step 0
    err = capsys.readouterr().err
    assert "diverged" in err and "nothing was trained (still at step 0): nothing was written" in err
    assert list(tmp_path.iterdir()) == [good] and good.read_bytes() == before


def test_out_never_replaces_a_file(tmp_path, capsys):
    taken = tmp_path / "taken.safetensors"
    taken.write_bytes(b"someone's")
    status, err = run_cli(["train", "--data", "toy", "--steps", "5", "--threads", "1", "--out", str(taken)], capsys)
    assert status == 2 and "--out" in err and "exists" in err and taken.read_bytes() == b"someone's"


def test_a_second_run_with_the_same_settings_gets_its_own_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IWAVB_RUNS_DIR", str(tmp_path))
    argv = ["train", "--data", "toy", "--method", "vae", "--latent", "2", "--steps", "10", "--threads", "1"]
    assert main(argv) == 0 and main([*argv, "--owner", "Ada"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["toy-vae-k1-l2-mlp-s0-2.safetensors", "toy-vae-k1-l2-mlp-s0.safetensors"]
    assert "holds another run, so this one went to" in capsys.readouterr().err


def test_a_run_that_would_not_fit_is_refused_with_its_estimate_before_any_data_is_read(tmp_path, capsys):
    status, err = run_cli(
        ["train", "--data", "mnist", "--k", "100000", "--threads", "1", "--data-root", str(tmp_path)], capsys
    )
    assert status == 2 and "this run would need about" in err and "GB" in err and "lower K (100000)" in err


def test_too_many_threads_in_the_environment_are_refused_by_name(monkeypatch):
    from iwavb import settings as iwavb_settings

    monkeypatch.setenv("IWAVB_THREADS", str(iwavb_settings.available_cores() + 1))
    with pytest.raises(iwavb_settings.SettingsError, match="IWAVB_THREADS"):
        iwavb_settings.threads()

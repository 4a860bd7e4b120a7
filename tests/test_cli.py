"""The CLI, run in-process."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from core import cli
from core.cli import main
from core.common.config import (
    AnalysisConfig,
    BuildConfig,
    ProbeSpec,
    SteerConfig,
    command_line,
    config_argv,
    option_fields,
)


def test_build_prints_table_and_best_layer(cache_root, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(
        [
            "--cache-root",
            str(cache_root),
            "build",
            "--model",
            "tiny-llama",
            "--dataset",
            "world_capitals",
            "--limit",
            "80",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(
        r"^best layer [0-2] \(chosen on training leave-one-out R2\): test R2 = -?\d+\.\d{4}$",
        out,
        re.M,
    ), out
    assert "test_r2" in out and "test_prox_err" in out and "alpha" in out
    assert "train_loo_r2" in out
    assert re.search(r"^baselines \(test R2\): name-only -?\d\.\d{4}, group-mean", out, re.M)
    assert "random-init control: not built" in out
    code = main(["--cache-root", str(cache_root), "list"])
    listing = capsys.readouterr().out
    assert (
        "world_capitals" in listing and "activations/ (1)" in listing and "results/ (1)" in listing
    )


def test_bad_dataset_is_a_clear_error(cache_root, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(
        [
            "--cache-root",
            str(cache_root),
            "build",
            "--model",
            "tiny-llama",
            "--dataset",
            "no_such_data",
        ]
    )
    assert code == 2
    assert "unknown dataset 'no_such_data'" in capsys.readouterr().err


def test_bad_model_is_a_clear_error(cache_root, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(
        [
            "--cache-root",
            str(cache_root),
            "build",
            "--model",
            "no-such-model",
            "--dataset",
            "world_capitals",
            "--limit",
            "5",
        ]
    )
    assert code == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["build", "list", "datasets", "models", "prepare"])
def test_help(command: str, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: python -m core" in capsys.readouterr().out


@pytest.mark.slow
def test_default_model_end_to_end(cache_root, capsys) -> None:  # type: ignore[no-untyped-def]
    """The embedded default model on a real (small) dataset, through the CLI."""
    code = main(
        [
            "--cache-root",
            str(cache_root),
            "build",
            "--model",
            "smollm2-135m",
            "--dataset",
            "world_places",
            "--limit",
            "1500",
            "--layers",
            "10-29:6",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    match = re.search(r"best layer (\d+) \(chosen on training [^)]*\): test R2 = (-?\d+\.\d+)", out)
    assert match and int(match.group(1)) in (10, 16, 22, 28)
    # held out, a real model's probe clearly beats predicting the training mean (R2 = 0)
    assert float(match.group(2)) > 0.1


def test_analyze_writes_analysis_beside_results(cache_root, capsys) -> None:  # type: ignore[no-untyped-def]
    from core.analysis.run import AnalysisResults
    from core.common.cache import list_artifacts

    argv = [
        "--cache-root",
        str(cache_root),
        "analyze",
        "--model",
        "tiny-llama",
        "--dataset",
        "world_capitals",
        "--limit",
        "120",
        "--group",
        "continent",
        "--mlp-hidden",
        "16",
        "--neurons",
        "3",
    ]
    code = main(argv)
    out = capsys.readouterr().out
    assert code == 0, out
    assert (
        "test R2 by control" in out
        and "shuffled" in out
        and "name_only" in out
        and "block hold-out (nominal: the block's test rows)" in out
        and "continent" in out
    )
    ((results_folder, _),) = list_artifacts(cache_root, "results")
    ((analysis_folder, manifest),) = list_artifacts(cache_root, "analysis")
    assert analysis_folder.name == results_folder.name  # keyed by the results key
    assert manifest["command"].startswith("python -m core --cache-root")
    analysis = AnalysisResults.load(analysis_folder, verify=True)
    assert set(analysis.controls["control"]) == {"mean", "name_only", "probe", "shuffled", "mlp"}
    assert len(analysis.holdout) >= 3 and analysis.group_column == "continent"
    assert main(argv) == 0  # reruns reuse activations and results


def test_build_prints_its_random_init_control_when_built(cache_root, capsys) -> None:  # type: ignore[no-untyped-def]
    args = ["--cache-root", str(cache_root), "build", "--model", "tiny-llama"]
    args += ["--dataset", "world_capitals", "--limit", "80"]
    assert main([*args, "--random-init"]) == 0
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert re.search(r"^random-init control \(n=80\): test R2 -?\d+\.\d{4}$", out, re.M), out


def test_docstring_lists_every_command() -> None:
    listed = re.findall(r"^([a-z][a-z-]*) {2,}\S", cli.__doc__ or "", flags=re.M)
    sub = next(a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(listed) == sorted(sub.choices)


def test_analyze_and_steer_options_are_their_configs() -> None:
    """Each option of `analyze` and `steer` is a field of its config, default and all."""
    parser = cli._parser()
    args = parser.parse_args(["analyze", "--dataset", "x"])
    assert cli._config_of(AnalysisConfig, args) == AnalysisConfig()
    argv = ["analyze", "--dataset", "x", "--group", "country", "--transfer-prompts", "a,b"]
    argv += ["--no-mlp", "--neurons", "3", "--rows", "50", "--mlp-depths", "0,1"]
    args = parser.parse_args(argv)
    assert cli._config_of(AnalysisConfig, args) == AnalysisConfig(
        group_column="country",
        transfer_prompts=("a", "b"),
        mlp=False,
        k_neurons=3,
        rows=50,
        mlp_depths=(0.0, 1.0),
    )
    args = parser.parse_args(["steer", "--dataset", "x"])
    assert cli._config_of(SteerConfig, args) == SteerConfig()
    argv = ["steer", "--dataset", "x", "--layers", "0-3", "--layer", "3,1", "--n", "9"]
    args = parser.parse_args([*argv, "--strengths", "1,4", "--seeds", "5", "--question", "{name}?"])
    assert cli._config_of(SteerConfig, args) == SteerConfig(
        layers=(1, 3), n=9, strengths=(1.0, 4.0), seeds=(5,), question="{name}?"
    )
    assert cli.build_config(args, Path()).layers == (0, 1, 2, 3)  # the build's --layers


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["steer", "--dataset", "x", "--seeds", "1,1"], "--seeds: distinct integers"),
        (["steer", "--dataset", "x", "--question", "where?"], "must contain {name}"),
        (["steer", "--dataset", "x", "--strengths", "-1"], "--strengths: non-negative"),
        (["analyze", "--dataset", "x", "--mlp-depths", "2"], "must lie in [0, 1]"),
    ],
)
def test_bad_options_are_clear_errors(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--cache-root", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_demo_dry_run_lists_the_shipped_builds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.results.shipped import demo_builds

    assert main(["--cache-root", str(tmp_path), "demo", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    builds = demo_builds()
    assert lines == [f"[{i}/{len(builds)}] {b.command()}" for i, b in enumerate(builds, 1)]
    assert not (tmp_path / "results").exists()


def test_steer_saves_its_config_beside_the_results(cache_root, capsys) -> None:  # type: ignore[no-untyped-def]
    from core.common.cache import list_artifacts

    argv = ["--cache-root", str(cache_root), "steer", "--model", "tiny-llama"]
    argv += ["--dataset", "world_capitals", "--limit", "80", "--n", "4", "--seeds", "0"]
    assert main([*argv, "--strengths", "1"]) == 0
    out = capsys.readouterr().out
    assert "4 test entities x 1 seeds" in out and "steering: " in out
    ((results_folder, _),) = list_artifacts(cache_root, "results")
    ((folder, manifest),) = list_artifacts(cache_root, "steering")
    assert folder.name == results_folder.name  # keyed by the results key
    assert manifest["config"] == SteerConfig(n=4, strengths=(1.0,), seeds=(0,)).to_dict()
    assert manifest["command"].startswith("python -m core --cache-root")


def _subparser(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def test_build_options_are_the_build_config(tmp_path: Path) -> None:
    """`build --help` is generated from BuildConfig: one option per field, each with the
    field's default, so the CLI and a notebook build the same thing (the probe solver
    included: "auto" in both)."""
    from core.extract.models import DEFAULT_MODEL

    fields = {f.metadata["option"]["flag"]: f for _, f in option_fields(BuildConfig)}
    options = {a.option_strings[-1]: a for a in _subparser("build")._actions if a.option_strings}
    assert set(options) == {*fields, "--help", "--ray"}  # --ray: where, not what
    for flag, f in fields.items():
        expected = DEFAULT_MODEL if flag == "--model" else f.default
        assert options[flag].default == expected or options[flag].required, flag
        assert options[flag].help == f.metadata["option"]["help"]
    assert options["--dataset"].required and options["--probe-device"].default == "auto"
    assert BuildConfig("m", "d").probe_device == "auto"
    args = cli._parser().parse_args(["build", "--dataset", "x"])
    assert cli.build_config(args, tmp_path) == BuildConfig(DEFAULT_MODEL, "x", cache_root=tmp_path)
    # analyze and steer take the options that say what is built, not how the build runs
    analyze = {a.option_strings[-1] for a in _subparser("analyze")._actions if a.option_strings}
    assert {"--model", "--dataset", "--limit", "--layers", "--device"} <= analyze
    assert not {"--random-init", "--start-token", "--probe-device", "--target"} & analyze


def test_a_rebuild_command_parses_back_to_its_config(tmp_path: Path) -> None:
    """BuildConfig.command() quotes every word: a CSV path with a space, a start token
    with shell characters and every non-default option survive shlex and the parser."""
    import shlex

    config = BuildConfig(
        "my model",
        str(tmp_path / "my places" / "cities & towns.csv"),
        prompt="coords",
        limit=50,
        layers=(1, 3, 5),
        random_init=True,
        probe=ProbeSpec(method="gcv", target="globe"),
        start_token="<s>",
        device="cpu",
        dtype="float32",
        max_tokens_per_batch=1024,
        max_batch_size=8,
        probe_device="numpy",
        trust_remote_code=True,
        cache_root=tmp_path,
    )
    command = config.command()
    assert "'" in command and command.startswith("python -m core build --model 'my model'")
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "core"]
    args = cli._parser().parse_args(words[3:])
    assert cli.build_config(args, tmp_path) == config
    # the defaults write nothing beyond model and dataset
    assert BuildConfig("m", "d").command() == "python -m core build --model m --dataset d"
    # analyze and steer commands: the build's shared options, then the config's
    analysis = AnalysisConfig(transfer_prompts=("all",), mlp=False, mlp_depths=(0.0, 0.5, 1.0))
    line = command_line(["analyze", *config.argv(build_only=False), *config_argv(analysis)])
    args = cli._parser().parse_args(shlex.split(line)[3:])
    assert cli._config_of(AnalysisConfig, args) == analysis
    assert cli.build_config(args, tmp_path).dataset == config.dataset
    assert "--mlp-depths 0,0.5,1" in line
    steer = SteerConfig(layers=(2, 7), n=9, strengths=(1.0, 4.0), seeds=(0, 1, 2, 3))
    args = cli._parser().parse_args(["steer", "--dataset", "d", *config_argv(steer)])
    assert cli._config_of(SteerConfig, args) == steer


def test_the_cli_records_its_own_argv_quoted(cache_root, capsys) -> None:  # type: ignore[no-untyped-def]
    """A build run from a CSV path with a space records a command that replays it."""
    import shlex

    from core.common.cache import list_artifacts

    folder = cache_root / "my data"
    folder.mkdir()
    csv = folder / "places.csv"
    rows = ["name,lat,lon"] + [f"Place {i},{i % 80}.5,{(7 * i) % 170}.25" for i in range(40)]
    csv.write_text("\n".join(rows) + "\n")
    argv = ["--cache-root", str(cache_root), "build", "--model", "tiny-llama"]
    argv += ["--dataset", str(csv)]
    assert main(argv) == 0, capsys.readouterr()
    ((_, manifest),) = list_artifacts(cache_root, "results")
    assert shlex.split(manifest["command"])[3:] == argv

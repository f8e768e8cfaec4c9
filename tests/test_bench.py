"""The benchmark command runs both loops and writes what it measured (its numbers are read, not asserted); both loops do the same work."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import REPO
from tests.helpers.commands import command


def test_bench_compares_the_framework_with_the_plain_loop(tmp_path):
    out = tmp_path / "bench.json"
    result = command(
        "bench",
        [
            "cases=mlp_ring8_small",
            "rounds=2",
            "warmup=3",
            "steps=10",
            "peers=true",
            f"out={out}",
            f"workdir={tmp_path / 'runs'}",
        ],
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    results = json.loads(out.read_text())
    (case,) = results["cases"]
    assert case["case"] == "mlp_ring8_small" and len(case["framework_steps_per_s"]["rounds"]) == 2 == len(
        case["plain_steps_per_s"]["rounds"]
    )
    # The ratio is paired: each round's framework rate over the same round's plain rate, then the median.
    framework, plain = case["framework_steps_per_s"]["rounds"], case["plain_steps_per_s"]["rounds"]
    assert case["ratio_per_round"] == [f / p for f, p in zip(framework, plain)]
    assert case["ratio_median"] == pytest.approx((framework[0] / plain[0] + framework[1] / plain[1]) / 2)
    assert results["machine"]["threads"] == 1
    assert f"{case['ratio_median']:.3f}" in next(
        line for line in result.stdout.splitlines() if line.startswith("mlp_ring8_small")
    )
    # Each peer is timed in the same rounds, and compared round by round in the same way.
    assert set(case["peers"]) == {"lightning_tutorial", "pytorch_dcgan_example"}
    for name, peer in case["peers"].items():
        rates = peer["steps_per_s"]["rounds"]
        assert len(rates) == 2 and all(rate > 0 for rate in rates)
        assert peer["ratio_per_round"] == [f / p for f, p in zip(framework, rates)]
        assert f"framework/{name}" in result.stdout


def test_the_peers_train_the_frameworks_networks_on_its_data(tmp_path, monkeypatch):
    # Both patterns update G and D (every parameter moves) with the framework's networks, and draw shuffled batches.
    from gan_lightning.bench import peers
    from gan_lightning.bench.loops import case_config, case_data

    cfg = case_config("mlp_ring8_small")
    built, g_forwards = [], []
    networks = peers.networks

    def counted_networks(cfg):
        built.append(networks(cfg))
        built[-1][0].register_forward_hook(lambda *_: g_forwards.append(1))
        return built[-1]

    monkeypatch.setattr(peers, "networks", counted_networks)
    data = case_data(cfg, "mlp_ring8_small")
    # G's forward passes per step as each pattern writes them: the tutorial's three on the same latents, the
    # example's one (its fakes serve D's update and G's).
    forwards_per_step = {"lightning_tutorial": 3, "pytorch_dcgan_example": 1}
    for name, peer in peers.PEERS.items():
        torch.manual_seed(cfg.seed)
        generator, discriminator, _, _ = networks(
            cfg
        )  # the initial weights the peer starts from (it seeds the same way)
        g_forwards.clear()
        assert peer(case_config("mlp_ring8_small"), data, 2, 5, torch.device("cpu")) > 0
        assert len(g_forwards) == forwards_per_step[name] * 7, name
        trained_g, trained_d = built[-1][:2]
        assert type(trained_g) is type(generator) and type(trained_d) is type(discriminator)
        # Optimizers as users write them: PyTorch's default implementation, not the framework's fused one.
        assert [optimizer.defaults["fused"] for optimizer in built[-1][2:]] == [None, None] and cfg.optimizer.g.fused
        for before, after in ((generator, trained_g), (discriminator, trained_d)):
            assert all(
                not torch.equal(a, b)
                for a, b in zip(before.state_dict().values(), after.state_dict().values())
                if a.is_floating_point()
            ), name


def test_the_augmentation_costs_are_ratios_to_the_unaugmented_step_of_the_same_round(tmp_path):
    out = tmp_path / "bench.json"
    result = command(
        "bench",
        ["cases=", "augment=true", "rounds=1", "warmup=2", "steps=3", f"out={out}", f"workdir={tmp_path / 'runs'}"],
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    timed = json.loads(out.read_text())["augment"]
    assert set(timed) == {"none", "diffaug color", "diffaug translation", "diffaug cutout",
                          "diffaug color,translation,cutout", "ada p=0", "ada p=0.2", "ada p=1"}  # fmt: skip
    assert timed["none"]["step_time_vs_none"] == 1.0
    for name, row in timed.items():
        assert row["step_time_vs_none"] == pytest.approx(timed["none"]["steps_per_s"] / row["steps_per_s"])
        assert f"augment {name}" in result.stdout


def test_the_cost_of_reporting_to_a_study_is_a_ratio_to_the_same_run_outside_a_search(tmp_path):
    import optuna

    out, runs = tmp_path / "bench.json", tmp_path / "runs"
    result = command(
        "bench",
        ["cases=", "search=true", "rounds=2", "warmup=2", "steps=100", f"out={out}", f"workdir={runs}"],
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    timed = json.loads(out.read_text())["search"]
    assert set(timed) == {"outside a search", "trial"} and timed["outside a search"]["step_time_vs_outside"] == 1.0
    assert "search trial" in result.stdout
    # each round's trial reported its metric at the evaluations inside its run: steps 50 and 100
    study = optuna.load_study(study_name="bench", storage=f"sqlite:///{runs / 'study.db'}")
    assert [sorted(t.intermediate_values) for t in study.trials] == [[50, 100], [50, 100]]


def test_a_case_that_cannot_run_keeps_the_other_cases_results_and_the_default_cases_need_no_download(tmp_path):
    from tests.test_user_faults import fashion_mnist_copy

    # Fashion-MNIST damaged where the data are looked for first: its case fails; the others run offline.
    data = fashion_mnist_copy(tmp_path / "data")
    images = next(data.glob("train-images*"))
    images.write_bytes(images.read_bytes()[: images.stat().st_size // 2])
    out = tmp_path / "bench.json"
    result = command(
        "bench",
        [
            "cases=dcgan_fashion_mnist,mlp_ring8_small,dcgan_cifar_size",
            "rounds=1",
            "warmup=1",
            "steps=2",
            f"out={out}",
            f"workdir={tmp_path / 'runs'}",
        ],  # fmt: skip
        cwd=REPO,
        env={"GAN_LIGHTNING_DATA": str(data)},
    )
    assert result.returncode == 2 and "cases=dcgan_fashion_mnist could not be timed" in result.stderr
    cases = {case["case"]: case for case in json.loads(out.read_text())["cases"]}
    assert "is damaged" in cases["dcgan_fashion_mnist"]["error"]
    for name in ("mlp_ring8_small", "dcgan_cifar_size"):  # CIFAR-10's size on random data: no CIFAR-10 files needed
        assert cases[name]["framework_steps_per_s"]["median"] > 0 and "error" not in cases[name]


def test_each_round_runs_the_compared_loops_back_to_back(tmp_path, monkeypatch):
    from gan_lightning.bench import loops as bench

    order, framework_round, plain_round = [], bench.framework_round, bench.plain_round

    def framework(cfg, data, warmup, steps, folder, module_class=bench.GAN):
        order.append(module_class.__name__)
        return framework_round(cfg, data, warmup, steps, folder, module_class)

    def plain(*args):
        order.append("plain")
        return plain_round(*args)

    monkeypatch.setattr(bench, "framework_round", framework)
    monkeypatch.setattr(bench, "plain_round", plain)
    bench.compare("mlp_ring8_small", 2, 1, 2, tmp_path, split=True)
    # The plain loop is next to both loops it is compared with, in both rounds; the first loop alternates.
    assert order == ["GAN", "plain", "PlainStepInLightning", "PlainStepInLightning", "plain", "GAN"]


@pytest.mark.parametrize("case,overrides", [
    ("mlp_ring8_small", []), ("mlp_ring8", []), ("mlp_ring8", ["trainer.g_fakes=fresh"]), ("mlp_ring8_simultaneous", []),
    # A config override applies to both loops: the plain loop autocasts as Lightning's bf16-mixed plugin does, and compiles.
    ("mlp_ring8_small", ["trainer.precision=bf16-mixed"]), ("mlp_ring8_small", ["trainer.compile=true"]),
])  # fmt: skip
def test_the_plain_loop_does_the_frameworks_work(tmp_path, case, overrides):
    # A fair comparison times the same computation: from the same seed both loops end with the same weights.
    from gan_lightning.bench.loops import case_config, case_data, framework_training, plain_training

    settings = ["trainer.deterministic=true", *overrides]
    data = case_data(case_config(case), case)
    module = framework_training(case_config(case, settings), data, 12, tmp_path)
    generator, discriminator = plain_training(case_config(case, settings), data, 12)
    for trained, plain in ((module.generator, generator), (module.discriminator, discriminator)):
        for (name, a), b in zip(trained.state_dict().items(), plain.state_dict().values()):
            assert torch.equal(a, b), name
    # One step fewer is another result: the comparison is step for step.
    one_step_fewer, _ = plain_training(case_config(case, settings), data, 11)
    assert not all(torch.equal(a, b) for a, b in zip(one_step_fewer.parameters(), module.generator.parameters()))


def test_the_plain_step_inside_lightning_does_the_same_work_and_splits_the_difference(tmp_path):
    # The split times the plain step as the framework's training step: it must train the same weights, and
    # its two parts must add up to the whole difference between the loops.
    from gan_lightning.bench.loops import (
        PlainStepInLightning,
        case_config,
        case_data,
        compare,
        framework_training,
        plain_training,
    )

    case = "mlp_ring8_small"
    data = case_data(case_config(case), case)
    module = framework_training(
        case_config(case, ["trainer.deterministic=true"]), data, 12, tmp_path / "a", module_class=PlainStepInLightning
    )
    generator, _ = plain_training(case_config(case, ["trainer.deterministic=true"]), data, 12)
    assert all(
        torch.equal(a, b) for a, b in zip(module.generator.state_dict().values(), generator.state_dict().values())
    )
    assert module.steps_done == 12

    summary = compare(case, 2, 3, 10, tmp_path / "b", split=True).summary()
    assert len(summary["plain_step_in_lightning_steps_per_s"]["rounds"]) == 2
    medians = {
        key: 1000 / summary[f"{key}_steps_per_s"]["median"] for key in ("framework", "plain", "plain_step_in_lightning")
    }
    parts = summary["extra_ms_per_step"]
    assert parts["lightning_loop_and_callbacks"] == pytest.approx(medians["plain_step_in_lightning"] - medians["plain"])
    assert parts["lightning_loop_and_callbacks"] + parts["module_step"] == pytest.approx(
        medians["framework"] - medians["plain"]
    )

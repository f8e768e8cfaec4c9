"""Vectorized seeds: each member of a group trains the weights of a separate run with its seed.

GAN training amplifies rounding: one float32 ulp added to one weight of G moves the weights of the default
MLP on ring8 by 4.5 % after 50 steps, and those of PacGAN's networks by 88 % (tests below measure it). A
member computes its run's arithmetic in another order (a batched matrix product, a per-member mean), so the
equivalence is tested in float64, where rounding is 10⁹ times smaller: within 1e-4 there means the same
computation, and a wrong latent, batch, loss term or optimizer step would be off by far more.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List

import pytest
import pytorch_lightning as pl
import torch

from gan_lightning.config import to_config
from gan_lightning.errors import UserError
from gan_lightning.runs.build import build_datamodule, build_module
from gan_lightning.sweeps.vectorized.module import build_group
from tests.helpers.hydra import compose_config


def fit(module, datamodule, precision: str = "64-true", ckpt_path=None, callbacks=()) -> pl.Trainer:
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, callbacks=list(callbacks), enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, precision=precision, max_steps=-1, max_epochs=-1, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    return trainer


def seeded_run(cfg, seed: int):
    """What ``python -m gan_lightning.run seed=...`` builds: seeded, then data and networks built."""
    pl.seed_everything(seed, workers=True, verbose=False)
    datamodule = build_datamodule(dataclasses.replace(cfg, seed=seed))
    datamodule.setup("fit")
    return build_module(cfg), datamodule


def separate_run(cfg, seed: int, precision: str = "64-true", ckpt_path=None, callbacks=()):
    """What ``python -m gan_lightning.run seed=...`` trains (from ``ckpt_path``, when given)."""
    module, datamodule = seeded_run(cfg, seed)
    fit(module, datamodule, precision, ckpt_path=ckpt_path, callbacks=callbacks)
    return module


def weights(network: torch.nn.Module) -> Dict[str, torch.Tensor]:
    return {name: value for name, value in network.state_dict().items() if value.dtype.is_floating_point}


def worst_relative_difference(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).norm() / a[k].norm().clamp_min(1e-12)) for k in a)


def member_weights(group, member: int) -> Dict[str, torch.Tensor]:
    """Member ``member``'s weights under the names a separate run's module gives them."""
    networks = {"generator.": group.module.generator, "discriminator.": group.module.discriminator}
    if group.module.generator_ema is not None:
        networks["generator_ema.network."] = group.module.generator_ema.network
    return {
        prefix + name: value
        for prefix, members in networks.items()
        for name, value in weights(members.network(member)).items()
    }


def member_differences(overrides: List[str], seeds: List[int], steps: int, member_major: bool = True) -> List[float]:
    cfg = to_config(compose_config([*overrides, f"trainer.max_steps={steps}", "metrics=none"]))
    group = build_group(cfg, seeds, member_major)
    assert (group.module.generator.member_major is not None) == member_major  # the path under test
    fit(group.module, group.datamodule)
    return [
        worst_relative_difference(weights(separate_run(cfg, seed)), member_weights(group, member))
        for member, seed in enumerate(seeds)
    ]


@pytest.mark.parametrize(
    "overrides, member_major",
    [
        (["data=ring8", "model=mlp"], True),
        (["data=grid25", "model=pacgan_mlp", "model.pack=2"], True),  # G with batch norm, D with maxout and packing
        (["data=ring8", "model=pacgan_mlp", "model.pack=2"], False),  # through torch.func.vmap
    ],
    ids=["mlp", "pacgan_mlp", "vmap"],
)
def test_each_member_of_four_trains_the_weights_of_its_separate_run(overrides, member_major):
    differences = member_differences(overrides, seeds=[0, 1, 2, 3], steps=50, member_major=member_major)
    assert max(differences) < 1e-4, differences


SMALL = ["data=gaussian1d", "model=mlp", "model.g_hidden=[32,32]", "model.d_hidden=[32,32]"]


@pytest.mark.parametrize(
    "overrides",
    [
        ["objective=minimax", "regularization.r1_gamma=1.0", "regularization.r1_interval=2"],
        ["objective=nonsaturating", "trainer.d_steps=2", "regularization.ema_decay=0.9", "model.d_norm=batch"],
        ["objective=wasserstein", "trainer.d_steps=3", "model.d_norm=layer"],
        ["objective=wgan_gp"],  # the interpolation weights: drawn from each member's stream
        ["objective=hinge", "model.d_activation=maxout"],
        ["objective=least_squares", "optimizer.d.grad_clip_norm=0.01", "optimizer.g.grad_clip_norm=0.01"],
        ["objective=relativistic", "trainer.updates=simultaneous", "model.d_norm=batch", "model.d_batch_stats=joint"],
    ],
    ids=lambda overrides: overrides[0].split("=")[1],
)
def test_every_objective_and_regulariser_trains_each_members_own_run(overrides):
    differences = member_differences([*SMALL, *overrides], seeds=[3, 4], steps=20)
    assert max(differences) < 1e-4, differences


def test_rounding_is_what_float32_members_differ_by():
    """Why the equivalence is tested in float64: in float32, one ulp of one weight grows to percents in 50 steps."""
    cfg = to_config(compose_config(["data=ring8", "model=mlp", "trainer.max_steps=50", "metrics=none"]))
    exact = separate_run(cfg, 1, precision="32-true")
    nudged, datamodule = seeded_run(cfg, 1)
    with torch.no_grad():
        first = nudged.generator.net[0].weight
        first[0, 0] = torch.nextafter(first[0, 0], torch.tensor(float("inf")))
    fit(nudged, datamodule, precision="32-true")
    assert worst_relative_difference(weights(exact), weights(nudged)) > 1e-3


class SaveAt(pl.Callback):
    """A checkpoint at the end of training step ``step``, as the run's periodic checkpoint writes it."""

    def __init__(self, step: int, path):
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.steps_done == self.step:
            trainer.save_checkpoint(self.path)


def test_a_group_resumed_from_its_checkpoint_trains_what_it_would_have_trained_uninterrupted(tmp_path):
    """The checkpoint holds each member's random stream and data position with the stacked weights and moments."""
    cfg = to_config(compose_config([*SMALL, "regularization.ema_decay=0.9", "trainer.max_steps=20", "metrics=none"]))
    uninterrupted, resumed = build_group(cfg, [5, 6, 7]), build_group(cfg, [5, 6, 7])
    # float32, where a plain run's resume is bit-exact (Lightning's 64-true restores a run to within 1e-7 only).
    fit(uninterrupted.module, uninterrupted.datamodule, "32-true", callbacks=[SaveAt(10, tmp_path / "step10.ckpt")])
    fit(resumed.module, resumed.datamodule, "32-true", ckpt_path=tmp_path / "step10.ckpt")
    assert resumed.module.steps_done == uninterrupted.module.steps_done == 20
    for name, value in uninterrupted.module.state_dict().items():
        assert torch.equal(resumed.module.state_dict()[name], value), name
    step10 = torch.load(tmp_path / "step10.ckpt", weights_only=True)["state_dict"]
    assert (
        worst_relative_difference(weights(uninterrupted.module), {k: step10[k] for k in weights(uninterrupted.module)})
        > 1e-3
    )  # it trained on


def test_a_members_checkpoint_resumes_as_its_separate_run_and_separate_runs_stack_into_a_group(tmp_path):
    """Splitting a group's checkpoint gives each member the checkpoint its separate run would have written; stacking
    separate runs' checkpoints gives a group that trains on as they would."""
    from gan_lightning.checkpoints.resume import load_safely
    from gan_lightning.sweeps.vectorized.checkpoints import group_checkpoint, member_checkpoint

    cfg = to_config(compose_config([*SMALL, "regularization.ema_decay=0.9", "trainer.max_steps=20", "metrics=none"]))
    seeds = [5, 6, 7]
    group = build_group(cfg, seeds)
    fit(group.module, group.datamodule, callbacks=[SaveAt(10, tmp_path / "group10.ckpt")])
    separate_from_member = []
    for member, seed in enumerate(seeds):
        torch.save(member_checkpoint(load_safely(tmp_path / "group10.ckpt"), member), tmp_path / f"member{member}.ckpt")
        separate_from_member.append(separate_run(cfg, seed, ckpt_path=tmp_path / f"member{member}.ckpt"))
    separate = [separate_run(cfg, seed, callbacks=[SaveAt(10, tmp_path / f"separate{seed}.ckpt")]) for seed in seeds]
    torch.save(
        group_checkpoint([load_safely(tmp_path / f"separate{seed}.ckpt") for seed in seeds]),
        tmp_path / "stacked10.ckpt",
    )
    stacked = build_group(cfg, seeds)
    fit(stacked.module, stacked.datamodule, ckpt_path=tmp_path / "stacked10.ckpt")
    for member in range(len(seeds)):
        # In float64; a resume there is exact to 1e-7 (Lightning's 64-true), rounding adds 1e-11.
        plain = weights(separate_from_member[member])
        assert worst_relative_difference(plain, member_weights(group, member)) < 1e-4
        assert worst_relative_difference(weights(separate[member]), member_weights(stacked, member)) < 1e-4
        assert worst_relative_difference(weights(separate[member]), plain) < 1e-4  # all four ways to step 20 agree
    assert worst_relative_difference(weights(separate[0]), weights(separate[1])) > 1e-2  # and the members differ


def test_members_checkpoints_at_different_steps_are_refused(tmp_path):
    from gan_lightning.checkpoints.resume import load_safely
    from gan_lightning.sweeps.vectorized.checkpoints import group_checkpoint

    cfg = to_config(compose_config([*SMALL, "trainer.max_steps=6", "metrics=none"]))
    separate_run(cfg, 0, callbacks=[SaveAt(3, tmp_path / "a.ckpt")])
    separate_run(cfg, 1, callbacks=[SaveAt(5, tmp_path / "b.ckpt")])
    with pytest.raises(UserError, match=r"different steps \(3, 5\)"):
        group_checkpoint([load_safely(tmp_path / "a.ckpt"), load_safely(tmp_path / "b.ckpt")])


def test_clipping_and_logged_values_are_each_members_own():
    cfg = to_config(
        compose_config(
            [
                *SMALL,
                "optimizer.d.grad_clip_norm=0.01",
                "trainer.max_steps=3",
                "trainer.log_every_n_steps=1",
                "metrics=none",
            ]
        )
    )
    seeds = [0, 1, 2]
    group = build_group(cfg, seeds)
    fit(group.module, group.datamodule)
    logged = group.module.latest_member_values
    for member, seed in enumerate(seeds):
        separate = separate_run(cfg, seed).trainer.callback_metrics  # the values of its last step
        for name in ("loss/d", "loss/g", "d/real", "d/fake", "grad_norm/d", "grad_norm/g"):
            assert logged[member][name] == pytest.approx(float(separate[name]), rel=1e-6), (seed, name)
    assert len({row["grad_norm/d"] for row in logged}) == 3


@pytest.mark.slow
@pytest.mark.timeout(600)  # minutes of training: past the suite's 240 s limit on a busy machine
def test_eight_vectorized_seeds_and_eight_separate_runs_reach_the_same_sample_quality():
    """Over 2 000 float32 steps rounding has long decorrelated a member from its separate run (GAN training is
    chaotic), so the two sets are compared as samples: the means of their final toy2d metrics agree within two
    standard errors of the difference."""
    import statistics

    from gan_lightning.metrics.modes import mode_coverage

    cfg = to_config(compose_config(["data=ring8", "model=mlp", "trainer.max_steps=2000", "metrics=none"]))
    seeds = list(range(8))

    def quality(generator: torch.nn.Module) -> Dict[str, float]:
        with torch.no_grad():
            samples = generator.eval()(generator.sample_latent(2500, torch.Generator().manual_seed(99)))
        return mode_coverage(samples, cfg.data.centers, cfg.data.std, threshold=3.0)

    group = build_group(cfg, seeds)
    fit(group.module, group.datamodule, "32-true")
    vectorized = [quality(group.module.generator.network(member)) for member in range(len(seeds))]
    separate = [quality(separate_run(cfg, seed, "32-true").generator) for seed in seeds]
    for measure in ("modes", "hq_fraction"):
        a, b = [row[measure] for row in vectorized], [row[measure] for row in separate]
        standard_error = (statistics.variance(a) / len(a) + statistics.variance(b) / len(b)) ** 0.5
        assert abs(statistics.mean(a) - statistics.mean(b)) <= 2 * standard_error, (measure, a, b)
    assert (
        statistics.mean(row["hq_fraction"] for row in separate) > 0.05
    )  # trained: an untrained G puts ~0 % near a mode


@pytest.mark.parametrize(
    "override, setting",
    [
        ("model.d_dropout=0.5", "model.d_dropout"),
        ("model.d_spectral_norm=true", "model.d_spectral_norm"),
        ("trainer.on_nan=skip", "trainer.on_nan"),
        ("model.conditional=true", "model.conditional"),
    ],
)
def test_what_members_cannot_reproduce_is_refused_naming_the_setting(override, setting):
    cfg = to_config(compose_config(["data=ring8", "model=mlp", override, "metrics=none"]))
    with pytest.raises(UserError, match=setting.replace(".", r"\.")):
        build_group(cfg, [0, 1])


def test_the_benchmark_reports_seed_steps_per_second_of_groups_against_a_separate_run(tmp_path, monkeypatch):
    from gan_lightning.bench import __main__ as bench
    from gan_lightning.bench import loops

    monkeypatch.setattr(loops, "VECTORIZED_CASES", {"gaussian1d_theory": loops.VECTORIZED_CASES["gaussian1d_theory"]})
    monkeypatch.setattr(loops, "MEMBERS", (1, 3))
    out = tmp_path / "bench.json"
    assert (
        bench.main(
            [
                "cases=",
                "vectorized=true",
                "rounds=1",
                "warmup=2",
                "steps=6",
                f"out={out}",
                f"workdir={tmp_path / 'runs'}",
            ]
        )
        == 0
    )
    import json

    timed = json.loads(out.read_text())["vectorized"]["gaussian1d_theory"]
    assert set(timed["vectorized"]) == {"1", "3"} and timed["separate_seed_steps_per_s"] > 0
    for members in timed["vectorized"].values():  # one round: the ratio is that round's
        assert members["vs_separate"] == pytest.approx(members["seed_steps_per_s"] / timed["separate_seed_steps_per_s"])


def test_the_documented_example_trains_a_group_and_samples_one_member():
    from tests.conftest import REPO

    page = (REPO / "docs" / "scaling.md").read_text()
    section = page[page.index("## Seeds side by side in one process") :]
    example = section[
        section.index("```python\n") + len("```python\n") : section.index("```", section.index("```python\n") + 3)
    ]
    scope: Dict = {}
    exec(compile(example, "docs/scaling.md", "exec"), scope)
    assert scope["group"].module.steps_done == 200
    assert scope["samples"].shape == (1000, 2) and torch.isfinite(scope["samples"]).all()

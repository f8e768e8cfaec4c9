"""The alternating D/G loop: update counts per step, which network each update moves, and what is logged."""

from __future__ import annotations

import pytorch_lightning as pl
import pytest
import torch

from gan_lightning.build import RunContext, build_datamodule, build_module, build_trainer
from gan_lightning.config import to_config
from tests.helpers.hydra import compose_config

TOY = ["data=ring8", "model=mlp", "logger=none", "callbacks.progress_every_n_steps=0", "callbacks.samples_every_n_steps=0"]


def fit(tmp_path, *overrides):
    cfg = to_config(compose_config([*TOY, *overrides]))
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule, module = build_datamodule(cfg), build_module(cfg)
    before = {name: p.detach().clone() for name, p in module.named_parameters()}
    trainer = build_trainer(cfg, RunContext(tmp_path, name="test"))
    trainer.fit(module, datamodule=datamodule)
    return module, trainer, before


def adam_steps(optimizer) -> set:
    return {int(state["step"]) for state in optimizer.state.values()}


@pytest.mark.parametrize("d_steps,g_steps", [(1, 1), (3, 1), (2, 2)])
def test_each_training_step_makes_d_steps_then_g_steps_updates(tmp_path, d_steps, g_steps):
    module, trainer, _ = fit(tmp_path, "trainer.max_steps=7", f"trainer.d_steps={d_steps}", f"trainer.g_steps={g_steps}")
    d_optimizer, g_optimizer = trainer.optimizers
    assert module.steps_done == 7
    assert adam_steps(d_optimizer) == {7 * d_steps}
    assert adam_steps(g_optimizer) == {7 * g_steps}
    # Lightning counts every optimizer step; the run's own step count is the number of iterations.
    assert trainer.global_step == 7 * (d_steps + g_steps)


def test_each_d_update_gets_its_own_real_minibatch(tmp_path):
    cfg = to_config(compose_config([*TOY, "trainer.d_steps=3", "data.batch_size=20"]))
    batches = build_datamodule(cfg)
    batches.setup("fit")
    batch = next(iter(batches.train_dataloader()))
    assert batch.shape == (60, 2)
    assert len({tuple(row.tolist()) for row in batch}) == 60  # three different minibatches of 20


def test_a_frozen_optimizer_leaves_its_network_unchanged_and_the_other_moves(tmp_path):
    module, _, before = fit(tmp_path, "trainer.max_steps=3", "optimizer.g.lr=1e-30")
    changed = {name: not torch.allclose(p, before[name]) for name, p in module.named_parameters()}
    assert any(v for n, v in changed.items() if n.startswith("discriminator."))
    assert not any(v for n, v in changed.items() if n.startswith("generator."))


def test_generator_updates_raise_d_of_g_z_against_a_fixed_discriminator(tmp_path):
    # D frozen (lr ≈ 0): G's non-saturating updates must push D(G(z)) up on fresh latents.
    module, _, _ = fit(tmp_path / "a", "trainer.max_steps=1", "optimizer.d.lr=1e-30", "callbacks.checkpoint_every_n_steps=0")
    z = module.generator.sample_latent(512, generator=torch.Generator().manual_seed(1))
    module.eval()
    start = torch.sigmoid(module.discriminator(module.generator(z))).mean()
    module2, _, _ = fit(tmp_path / "b", "trainer.max_steps=100", "optimizer.d.lr=1e-30", "optimizer.g.lr=0.01")
    module2.eval()
    end = torch.sigmoid(module2.discriminator(module2.generator(z))).mean()
    assert end > start + 0.2


def test_logged_values_are_the_documented_keys_with_probabilities_for_d(tmp_path):
    _, trainer, _ = fit(tmp_path, "trainer.max_steps=5")
    metrics = trainer.callback_metrics
    assert {"loss/d", "loss/g", "d/real", "d/fake"} <= set(metrics)
    for key in ("d/real", "d/fake"):
        assert 0.0 < float(metrics[key]) < 1.0


def test_batch_norm_in_d_scores_fakes_the_same_way_in_both_updates(tmp_path):
    # With batch norm in D, a fake-only batch would be normalised by statistics D never trained on.
    cfg = to_config(compose_config(["data=fashion_mnist", "data.limit=256", "model=dcgan", "logger=none"]))
    module = build_module(cfg)
    assert module.d_batch_coupled
    cfg = to_config(compose_config([*TOY, "model.d_spectral_norm=true"]))
    assert not build_module(cfg).d_batch_coupled

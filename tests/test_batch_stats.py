"""model.d_batch_stats: which minibatch a D with batch norm normalises real and fake samples over."""

from __future__ import annotations

import pytest
import torch

from gan_lightning.config import to_config
from gan_lightning.runs.build import build_module
from tests.conftest import run_in_process
from tests.helpers.hydra import compose_config
from tests.test_module import fit

BATCH = 32
BATCH_NORM_D = ["model.d_norm=batch", f"data.batch_size={BATCH}"]


@pytest.mark.parametrize("stats,objective,d_update,g_update", [
    ("joint", "nonsaturating", [2 * BATCH], [2 * BATCH]),  # D(G(z)) in G's update as in D's: among the reals
    ("separate", "nonsaturating", [BATCH, BATCH], [BATCH]),  # each minibatch its own statistics; G's update sees fakes alone
    ("separate", "relativistic", [BATCH, BATCH], [BATCH, BATCH]),  # G's loss needs D on reals too, in their own minibatch
])  # fmt: skip
def test_the_setting_decides_the_minibatches_d_sees_in_each_update(stats, objective, d_update, g_update):
    cfg = to_config(
        compose_config(
            [
                "data=ring8",
                "model=mlp",
                "logger=none",
                *BATCH_NORM_D,
                f"model.d_batch_stats={stats}",
                f"objective={objective}",
            ]
        )
    )
    module = build_module(cfg)
    passes = []
    module.discriminator.register_forward_pre_hook(lambda _, inputs: passes.append(len(inputs[0])))
    real = torch.randn(BATCH, 2)
    module.discriminator_loss(real, None, module.generator(module.generator.sample_latent(BATCH)).detach(), None, 0)
    assert passes == d_update
    passes.clear()
    fake = module.generator(module.generator.sample_latent(BATCH))
    scores = module.losses.score(module.discriminator, real if module.losses.g_scores_real else None, fake, None, None)
    module.losses.generator(scores, None)
    assert passes == g_update


def test_without_batch_statistics_the_setting_changes_nothing(tmp_path):
    # No batch norm in D: one forward pass over real and fake samples gives the same outputs as two.
    joint, _, _ = fit(tmp_path / "joint", "trainer.max_steps=20", "model.d_batch_stats=joint")
    separate, _, _ = fit(tmp_path / "separate", "trainer.max_steps=20", "model.d_batch_stats=separate")
    assert not separate.losses.separate_batches
    for key, value in joint.state_dict().items():
        assert torch.equal(separate.state_dict()[key], value), key


@pytest.mark.parametrize("stats", ["separate", "joint"])
def test_both_choices_reach_the_equilibrium_of_the_one_dimensional_game(tmp_path, stats):
    # Goodfellow et al. 2014, Figure 1 (d), with batch norm in D: p_g = p_data and D = 1/2 on the data.
    overrides = ["data=gaussian1d", "model=mlp", "objective=nonsaturating", "model.g_hidden=[64,64]", "model.d_hidden=[64,64]",
                 "model.d_norm=batch", f"model.d_batch_stats={stats}", "trainer.max_steps=3000", "logger=none"]  # fmt: skip
    summary = run_in_process(overrides, tmp_path)
    assert summary["status"] == "completed"
    cfg = to_config(compose_config(overrides))
    module = build_module(cfg)
    module.load_state_dict(torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"])
    samples = module.generate(module.generator.sample_latent(20000))
    assert samples.mean().item() == pytest.approx(cfg.data.mean, abs=0.1)
    assert samples.std().item() == pytest.approx(cfg.data.std, abs=0.15)
    assert summary["metrics"]["d/real"] == pytest.approx(0.5, abs=0.05)
    assert summary["metrics"]["d/fake"] == pytest.approx(0.5, abs=0.05)

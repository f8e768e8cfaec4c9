"""PacGAN packing (Lin et al. 2018): D scores packs of m samples; training, penalties and checks follow."""

from __future__ import annotations

import math

import pytest
import torch

from gan_lightning.config import to_config
from gan_lightning.models.layers import Maxout
from gan_lightning.training.losses import input_gradients, r1_penalty
from tests.helpers.hydra import compose_config, run_in_process

QUIET = ["logger=none", "callbacks.progress_every_n_steps=0", "callbacks.samples_every_n_steps=0"]


def test_a_packing_d_takes_m_times_d_inputs_and_returns_one_output_per_pack():
    cfg = to_config(compose_config(["model=pacgan_mlp", "model.pack=3"]))
    _, d = cfg.model.build((2,), None)
    first = next(m for m in d.modules() if isinstance(m, Maxout))
    assert first.linear.in_features == 3 * 2
    x = torch.randn(12, 2)
    out = d(x)
    assert out.shape == (4,)
    # Pack i is samples 3i, 3i+1, 3i+2: changing sample 4 changes the second output only.
    x[4] += 1.0
    changed = d(x) != out
    assert changed.tolist() == [False, True, False, False]


def test_pacgan_preset_has_the_paper_networks():
    cfg = to_config(compose_config(["model=pacgan_mlp"]))
    m = cfg.model
    assert (m.latent_dim, list(m.g_hidden), m.g_norm, m.g_activation) == (2, [400] * 4, "batch", "relu")
    assert (list(m.d_hidden), m.d_activation, m.d_maxout_pieces, m.pack) == ([200] * 3, "maxout", 5, 1)


def test_penalties_of_a_packing_d_use_the_gradient_of_each_output_over_its_whole_pack():
    # A linear D on packs of 2 samples of 3 features: D(x1, x2) = w · (x1, x2). Each output's input
    # gradient is w (6 values), so R1 = ‖w‖², with one gradient row per output.
    w = torch.arange(1.0, 7.0)
    x = torch.randn(8, 3, requires_grad=True)
    out = x.reshape(4, 6) @ w
    assert input_gradients(out, x).shape == (4, 6)
    assert r1_penalty(out, x).item() == pytest.approx(float(w.pow(2).sum()))


@pytest.mark.parametrize("objective", ["nonsaturating", "wgan_gp", "relativistic"])
def test_pacgan2_trains_on_ring8(tmp_path, objective):
    # A ring of wider modes (std 0.05) than PacGAN's 0.01, so that 200 steps reach them.
    overrides = ["data=ring8", "data.std=0.05", "model=mlp", "model.pack=2", f"objective={objective}", "metrics=toy2d",
                 "metrics.every_n_steps=0", "trainer.max_steps=200", *QUIET]  # fmt: skip
    summary = run_in_process(overrides, tmp_path)
    assert summary["status"] == "completed" and summary["global_step"] == 200
    metrics = summary["metrics"]
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    # After 200 steps G's samples already reach most of the ring's modes (an untrained G reaches none).
    assert metrics["hq_fraction"] > 0.02 and metrics["modes"] >= 5, metrics


def test_batch_size_must_be_a_multiple_of_the_pack(tmp_path, caplog):
    with pytest.raises(SystemExit):
        run_in_process(
            ["data=ring8", "model=mlp", "model.pack=3", "data.batch_size=100", "trainer.max_steps=1", *QUIET], tmp_path
        )
    assert (
        "data.batch_size=100 is not allowed: a multiple of model.pack=3, so that every pack holds real or fake samples only."
        in caplog.text
    )


def test_packing_is_refused_for_a_conditional_d(tmp_path, caplog):
    with pytest.raises(SystemExit):
        run_in_process(
            ["data=ring8", "model=mlp", "model.pack=2", "model.conditional=true", "trainer.max_steps=1", *QUIET],
            tmp_path,
        )
    assert "model.pack=2 is not allowed: 1 with model.conditional=true" in caplog.text


def test_d_output_histograms_take_whole_packs(tmp_path):
    from gan_lightning.callbacks.samples import SampleGrid
    from gan_lightning.runs.build import build_datamodule, build_module

    cfg = to_config(compose_config(["data=ring8", "model=mlp", "model.pack=2", "data.num_samples=1000"]))
    module, datamodule = build_module(cfg), build_datamodule(cfg)
    datamodule.setup("fit")
    grid = SampleGrid(cfg.data, tmp_path, 0, num_samples=15, seed=0)
    grid.on_train_start(None, module)
    histograms = grid.discriminator_outputs(type("Trainer", (), {"datamodule": datamodule})(), module)
    # 15 fakes make 7 whole packs; as many real packs.
    assert histograms["d_outputs/real"].shape == histograms["d_outputs/fake"].shape == (7,)
    assert ((histograms["d_outputs/fake"] > 0) & (histograms["d_outputs/fake"] < 1)).all()

"""Every objective and model trains through the framework; the schedule and regularisers do what they say."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from gan_lightning.config import to_config
from gan_lightning.training.ema import ExponentialMovingAverage
from gan_lightning.training.losses import r1_penalty
from tests.helpers.hydra import CONF_DIR, compose_config, run_in_process
from tests.test_objectives import ALL

QUIET = ["logger=none", "callbacks.progress_every_n_steps=0", "callbacks.samples_every_n_steps=0"]
# The goodfellow2014 preset ends with a Parzen estimate; a few hundred images keep it to a fraction of a second.
PARZEN_SMALL = ["metrics.num_samples=300", "metrics.validation_num_samples=100", "metrics.test_num_samples=200"]


def finite(summary) -> bool:
    return all(isinstance(v, float) and math.isfinite(v) for v in summary["metrics"].values())


@pytest.mark.parametrize("objective", ALL)
def test_every_objective_trains_ring8_without_nan(tmp_path, objective):
    summary = run_in_process(
        ["data=ring8", "model=mlp", f"objective={objective}", "trainer.max_steps=300", *QUIET], tmp_path
    )
    assert summary["status"] == "completed" and summary["global_step"] == 300
    assert finite(summary), summary["metrics"]


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
@pytest.mark.parametrize("objective", ALL)
def test_every_objective_and_model_runs_a_few_steps(tmp_path, objective, model):
    summary = run_in_process(
        [
            f"model={model}",
            f"objective={objective}",
            "data.limit=256",
            "trainer.max_steps=3",
            "callbacks.num_samples=4",
            *QUIET,
        ],
        tmp_path,
    )
    assert summary["status"] == "completed" and finite(summary)


def test_wgan_gp_with_batch_norm_in_d_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        run_in_process(
            ["model=dcgan", "model.d_norm=batch", "objective=wgan_gp", "data.limit=256", "trainer.max_steps=1", *QUIET],
            tmp_path,
        )
    from gan_lightning.runs.summary import read_summary

    assert "use model.d_norm=layer or model.d_norm=none" in read_summary(tmp_path)["error"]


def test_r1_penalty_of_a_linear_discriminator_is_its_squared_weight_norm():
    weight = torch.tensor([3.0, -4.0])
    x = torch.randn(10, 2, requires_grad=True)
    assert r1_penalty(x @ weight, x).item() == pytest.approx(25.0)


def d_gradient_norm_on_real(tmp_path, *overrides) -> float:
    overrides = ["data=ring8", "model=mlp", "trainer.max_steps=150", *QUIET, *overrides]
    run_in_process(overrides, tmp_path)
    cfg = to_config(compose_config(overrides))
    from gan_lightning.runs.build import build_module

    module = build_module(cfg)
    module.load_state_dict(torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"])
    real = cfg.data.load(seed=0)[:1000].requires_grad_(True)
    return r1_penalty(module.discriminator.eval()(real), real).sqrt().item()


def test_r1_flattens_d_on_real_data(tmp_path):
    plain = d_gradient_norm_on_real(tmp_path / "plain")
    regularised = d_gradient_norm_on_real(tmp_path / "r1", "regularization.r1_gamma=10", "regularization.r1_interval=4")
    assert regularised < 0.3 * plain, (regularised, plain)


def test_ema_follows_the_documented_update():
    network = torch.nn.Linear(3, 2)
    ema = ExponentialMovingAverage(network, decay=0.9)
    start = network.weight.detach().clone()
    with torch.no_grad():
        network.weight.add_(1.0)
    ema.update(network)
    assert torch.allclose(ema.network.weight, 0.9 * start + 0.1 * network.weight)
    ema.update(network, decay=0.0)
    assert torch.equal(ema.network.weight, network.weight)
    assert not any(p.requires_grad for p in ema.parameters())


def test_samples_come_from_the_ema_generator_when_enabled(tmp_path):
    overrides = ["data=ring8", "model=mlp", "trainer.max_steps=50", "regularization.ema_decay=0.9", *QUIET]
    run_in_process(overrides, tmp_path)
    from gan_lightning.runs.build import build_module

    module = build_module(to_config(compose_config(overrides)))
    module.load_state_dict(torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"])
    z = module.generator.sample_latent(64)
    with torch.no_grad():
        from_ema = module.generator_ema.network.eval()(z)
        from_g = module.generator.eval()(z)
    assert torch.equal(module.generate(z), from_ema)
    assert not torch.allclose(from_ema, from_g)  # the average lags G


def test_ema_copies_g_until_its_start_step(tmp_path):
    overrides = [
        "data=ring8",
        "model=mlp",
        "trainer.max_steps=20",
        "regularization.ema_decay=0.999",
        "regularization.ema_start_step=100",
        *QUIET,
    ]
    run_in_process(overrides, tmp_path)
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    for key, value in state.items():
        if key.startswith("generator."):
            assert torch.equal(state["generator_ema.network." + key[len("generator.") :]], value)


def test_sgd_momentum_rises_linearly_to_its_final_value():
    cfg = to_config(
        compose_config(["optimizer=sgd", "optimizer.g.momentum_final=0.7", "optimizer.g.momentum_ramp_steps=100"])
    )
    optimizer = cfg.optimizer.g.build([torch.nn.Parameter(torch.zeros(1))])
    seen = []
    for step in (0, 50, 100, 400):
        cfg.optimizer.g.adjust(optimizer, step, max_steps=1000)
        seen.append(optimizer.param_groups[0]["momentum"])
    assert seen == pytest.approx([0.5, 0.6, 0.7, 0.7])


def test_learning_rate_moves_linearly_to_lr_final_at_the_last_step(tmp_path):
    lr, steps = 1e-3, 40
    overrides = ["data=ring8", "model=mlp", f"optimizer.g.lr={lr}", "optimizer.g.lr_final=0", f"trainer.max_steps={steps}",
                 "trainer.log_every_n_steps=5", "logger=csv", "callbacks.progress_every_n_steps=0", "callbacks.samples_every_n_steps=0"]  # fmt: skip
    run_in_process(overrides, tmp_path)
    with open(tmp_path / "csv" / "metrics.csv", newline="") as f:
        logged = [
            (int(float(row["step"])), float(row["lr/g"]), float(row["lr/d"]))
            for row in csv.DictReader(f)
            if row.get("lr/g")
        ]
    assert len(logged) >= 7
    for step, lr_g, lr_d in logged:  # step N trained with the rate set before it, at N - 1 steps done
        assert lr_g == pytest.approx(lr * (1 - (step - 1) / steps), rel=1e-9), step
        assert lr_d == 2e-4  # D keeps the default's constant rate
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["optimizer_states"]
    assert [optimizer["param_groups"][0]["lr"] for optimizer in state] == pytest.approx([2e-4, lr / steps])  # D, then G


def test_a_negative_lr_final_is_refused_with_the_setting_and_what_is_allowed():
    from gan_lightning.config import validate
    from gan_lightning.errors import UserError

    with pytest.raises(UserError, match=r"^optimizer\.d\.lr_final=-1\.0 is not allowed: zero or positive"):
        validate(to_config(compose_config(["data=ring8", "model=mlp", "optimizer.d.lr_final=-1"])))


def test_gradient_clipping_bounds_each_update(tmp_path):
    clip, lr = 1e-3, 1.0
    overrides = [
        "data=ring8",
        "model=mlp",
        "optimizer=sgd",
        "optimizer.d.momentum=0",
        f"optimizer.d.lr={lr}",
        f"optimizer.d.grad_clip_norm={clip}",
        "trainer.max_steps=1",
        *QUIET,
    ]
    cfg = to_config(compose_config(overrides))
    import pytorch_lightning as pl

    from gan_lightning.runs.build import build_module

    pl.seed_everything(cfg.seed, verbose=False)
    before = torch.cat([p.detach().flatten() for p in build_module(cfg).discriminator.parameters()])
    run_in_process(overrides, tmp_path)
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    after = torch.cat([v.flatten() for k, v in state.items() if k.startswith("discriminator.")])
    step = (after - before).norm().item()
    assert 0 < step <= lr * clip * 1.001


def test_goodfellow2014_preset_matches_the_paper():
    cfg = to_config(compose_config(["experiment=goodfellow2014"]))
    assert type(cfg.model).__name__ == "MLP" and cfg.data.dataset == "mnist"
    assert cfg.model.latent_dim == 100 and list(cfg.model.g_hidden) == [1200, 1200] and cfg.model.g_activation == "relu"
    assert (
        cfg.model.d_activation == "maxout" and list(cfg.model.d_hidden) == [240, 240] and cfg.model.d_maxout_pieces == 5
    )
    assert cfg.model.d_dropout_input == pytest.approx(0.2) and cfg.model.d_dropout == pytest.approx(
        0.5
    )  # keep 0.8 / 0.5
    assert cfg.data.scale == "unit" and cfg.data.batch_size == 100 and cfg.trainer.d_steps == 1
    for optimizer in (cfg.optimizer.g, cfg.optimizer.d):
        assert type(optimizer).__name__ == "SGD" and optimizer.lr == 0.1
        assert (optimizer.momentum, optimizer.momentum_final) == (0.5, 0.7)


def test_goodfellow2014_preset_runs_on_mnist_format_data(tmp_path):
    # MNIST is not on every machine; Fashion-MNIST has the same format.
    summary = run_in_process(
        [
            "experiment=goodfellow2014",
            "data.dataset=fashion_mnist",
            "data.limit=500",
            "trainer.max_steps=5",
            *PARZEN_SMALL,
            *QUIET,
        ],
        tmp_path,
    )
    assert summary["status"] == "completed" and finite(summary)


def test_every_experiment_composes():
    for path in (CONF_DIR / "experiment").glob("*.yaml"):
        to_config(compose_config([f"experiment={path.stem}"]))

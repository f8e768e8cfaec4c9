"""The facts GAN training rests on, checked numerically with the framework's own objectives, models and loop.

p_data = N(0, 1) and a fixed p_g = N(2, 1) in one dimension: log p_data(x) − log p_g(x) = 2 − 2x, so the
optimal discriminator of Goodfellow et al. 2014 (Proposition 1) is D*(x) = p_data/(p_data + p_g) = σ(2 − 2x).
"""

from __future__ import annotations

import math

import pytest
import torch

from gan_lightning.config import to_config
from gan_lightning.runs.build import build_module
from gan_lightning.training.losses import Layout, input_gradients
from tests.helpers.hydra import compose_config, run_in_process

GRID = torch.linspace(-2.0, 4.0, 601)


def normal_pdf(x, mean):
    return torch.exp(-0.5 * (x - mean) ** 2) / math.sqrt(2 * math.pi)


def optimal_d(x):
    return normal_pdf(x, 0.0) / (normal_pdf(x, 0.0) + normal_pdf(x, 2.0))


def train_discriminator(objective: str, steps: int = 1000, batch: int = 1024, seed: int = 0):
    """Train only D (the framework's MLP D and objective) against the fixed p_g = N(2, 1)."""
    torch.manual_seed(seed)
    cfg = to_config(
        compose_config(["model=mlp", "data=gaussian1d", f"objective={objective}", "model.d_hidden=[64,64]"])
    )
    _, discriminator = cfg.model.build((1,), None, cfg.objective.per_sample_d)
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-3)
    # Annealed to 0, so the last iterate is compared, not one step's noise around it.
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):
        real, fake = torch.randn(batch, 1), torch.randn(batch, 1) + 2.0
        real_out, fake_out = discriminator(torch.cat([real, fake])).split(batch)
        loss = cfg.objective.d_loss(real_out, fake_out)
        for penalty in cfg.objective.penalties():
            loss = loss + penalty.weighted(discriminator, real, fake, real_out, Layout())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        cfg.objective.after_d_step(discriminator)
    return discriminator.eval(), cfg.objective


def test_closed_form_of_the_optimal_discriminator():
    assert torch.allclose(optimal_d(GRID), torch.sigmoid(2 - 2 * GRID), atol=1e-6)


# 0.03 on [−2, 4]: the grid's ends lie 4σ into the tail of one density, where 1024-sample batches put few
# points; trained D's reach 0.005 (minimax) and 0.013 (least squares) here, a wrong loss is off by > 0.2.
@pytest.mark.parametrize("objective,to_probability", [("minimax", torch.sigmoid), ("least_squares", lambda out: out)])
def test_trained_discriminator_converges_to_the_optimal_one(objective, to_probability):
    discriminator, _ = train_discriminator(objective)
    with torch.no_grad():
        learned = to_probability(discriminator(GRID.unsqueeze(1)))
    assert (learned - optimal_d(GRID)).abs().max().item() < 0.03


def value_function(d, lo=-12.0, hi=14.0, n=200_001):
    """V(D, G) = E_data log D(x) + E_g log(1 − D(x)), integrated on a fine grid."""
    x = torch.linspace(lo, hi, n, dtype=torch.float64)
    dx = (hi - lo) / (n - 1)
    dv = d(x).clamp(1e-300, 1 - 1e-16)
    return float((normal_pdf(x, 0.0) * torch.log(dv) + normal_pdf(x, 2.0) * torch.log1p(-dv)).sum() * dx)


def jensen_shannon(lo=-12.0, hi=14.0, n=200_001):
    x = torch.linspace(lo, hi, n, dtype=torch.float64)
    dx = (hi - lo) / (n - 1)
    p, q = normal_pdf(x, 0.0), normal_pdf(x, 2.0)
    m = (p + q) / 2
    return float(0.5 * (p * torch.log(p / m)).sum() * dx + 0.5 * (q * torch.log(q / m)).sum() * dx)


def test_value_at_the_optimal_discriminator_is_minus_log_4_plus_twice_the_jsd():
    # Goodfellow et al. 2014, Theorem 1: C(G) = −log 4 + 2·JSD(p_data ‖ p_g).
    jsd = jensen_shannon()
    assert 0.1 < jsd < math.log(2)  # distinct but overlapping distributions
    assert value_function(optimal_d) == pytest.approx(-math.log(4) + 2 * jsd, abs=1e-6)
    # The minimax D loss estimates −V: on large samples at D*, −loss ≈ −log 4 + 2·JSD too.
    torch.manual_seed(0)
    real, fake = torch.randn(2_000_000, dtype=torch.float64), torch.randn(2_000_000, dtype=torch.float64) + 2
    logit = lambda x: 2 - 2 * x  # noqa: E731  (the logit of D*)
    from gan_lightning.training.objectives import Minimax

    assert -Minimax().d_loss(logit(real), logit(fake)).item() == pytest.approx(-math.log(4) + 2 * jsd, abs=3e-3)


def test_trained_discriminator_attains_the_optimal_value():
    discriminator, _ = train_discriminator("minimax")
    learned = lambda x: torch.sigmoid(discriminator(x.float().unsqueeze(1)).double()).detach()  # noqa: E731
    optimum = -math.log(4) + 2 * jensen_shannon()
    v = value_function(learned, lo=-6.0, hi=8.0, n=20_001)
    assert v <= optimum + 1e-3  # D* maximises V
    assert v == pytest.approx(optimum, abs=5e-3)


def test_wgan_gp_critic_has_unit_gradient_norm_on_interpolates_and_estimates_w1():
    # Between N(0, 1) and N(2, 1) the optimal critic is linear, f(x) = −kx, and W1 = 2. The penalised
    # objective 2k − λ(k − 1)² is maximal at k = 1 + 1/λ: gradient norm 1.1 and estimate 2.2 for λ = 10.
    critic, objective = train_discriminator("wgan_gp", steps=2000)
    k = 1 + 1 / objective.gp_weight
    torch.manual_seed(1)
    real, fake = torch.randn(4096, 1), torch.randn(4096, 1) + 2.0
    eps = torch.rand(4096, 1)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    norms = input_gradients(critic(mixed), mixed).norm(dim=1)
    assert norms.mean().item() == pytest.approx(k, abs=0.03) and norms.std().item() < 0.05
    with torch.no_grad():
        assert critic(real).mean().item() - critic(fake).mean().item() == pytest.approx(2 * k, abs=0.1)


def test_wasserstein_keeps_every_critic_weight_inside_the_clip_range(tmp_path):
    clip = 0.01
    summary = run_in_process(
        [
            "data=ring8",
            "model=mlp",
            "objective=wasserstein",
            f"objective.clip={clip}",
            "optimizer.d.lr=0.01",
            "trainer.max_steps=30",
            "logger=none",
        ],
        tmp_path,
    )
    assert summary["status"] == "completed"
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    critic = torch.cat([v.flatten() for k, v in state.items() if k.startswith("discriminator.")])
    assert critic.abs().max().item() <= clip
    # Adam moves each weight by about lr = clip a step: past the bound, where it is clipped back, unless the
    # sign of its gradient turned. A fifth or more sit on the bound; without clipping none would.
    assert (critic.abs() == clip).float().mean().item() > 0.2


def test_one_dimensional_game_reaches_the_equilibrium(tmp_path):
    # Goodfellow et al. 2014, Figure 1 (d): p_g = p_data and D = 1/2 everywhere.
    overrides = [
        "data=gaussian1d",
        "model=mlp",
        "objective=nonsaturating",
        "model.g_hidden=[64,64]",
        "model.d_hidden=[64,64]",
        "trainer.max_steps=3000",
        "logger=none",
    ]
    summary = run_in_process(overrides, tmp_path)
    cfg = to_config(compose_config(overrides))
    module = build_module(cfg)
    untrained = module.generate(module.generator.sample_latent(20000))
    module.load_state_dict(torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"])
    samples = module.generate(module.generator.sample_latent(20000))
    assert abs(untrained.mean().item() - cfg.data.mean) > 1.0  # it really had to move
    assert samples.mean().item() == pytest.approx(cfg.data.mean, abs=0.1)
    assert samples.std().item() == pytest.approx(cfg.data.std, abs=0.15)
    assert summary["metrics"]["d/real"] == pytest.approx(0.5, abs=0.05)
    with torch.no_grad():
        d_over_data = torch.sigmoid(module.discriminator.eval()(torch.linspace(1.0, 3.0, 201).unsqueeze(1)))
    assert (d_over_data - 0.5).abs().max().item() < 0.1

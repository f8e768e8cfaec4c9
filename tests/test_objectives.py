"""The objectives' losses against their closed forms, and the saturation that motivates the non-saturating loss."""

from __future__ import annotations

import math

import pytest
import torch

from gan_lightning.training.objectives import Minimax, NonSaturating


def probabilities_to_logits(p):
    p = torch.as_tensor(p, dtype=torch.float64)
    return torch.log(p) - torch.log1p(-p)


@pytest.mark.parametrize("objective", [Minimax(), NonSaturating()])
def test_d_loss_is_the_negated_value_function(objective):
    d_real = torch.tensor([0.9, 0.6, 0.7], dtype=torch.float64)
    d_fake = torch.tensor([0.2, 0.4, 0.1], dtype=torch.float64)
    expected = -(torch.log(d_real).mean() + torch.log(1 - d_fake).mean())
    loss = objective.d_loss(probabilities_to_logits(d_real), probabilities_to_logits(d_fake))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-9)


def test_d_loss_at_equilibrium_is_log_4():
    # D = 1/2 everywhere (logit 0): V = 2 log(1/2), so the D loss is log 4.
    zeros = torch.zeros(5, dtype=torch.float64)
    assert Minimax().d_loss(zeros, zeros).item() == pytest.approx(math.log(4), rel=1e-12)


def test_generator_losses_match_their_definitions():
    d_fake = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    logits = probabilities_to_logits(d_fake)
    assert Minimax().g_loss(logits).item() == pytest.approx(torch.log(1 - d_fake).mean().item(), rel=1e-9)
    assert NonSaturating().g_loss(logits).item() == pytest.approx(-torch.log(d_fake).mean().item(), rel=1e-9)


@pytest.mark.parametrize("objective", [Minimax(), NonSaturating()])
def test_losses_stay_finite_and_exact_for_saturated_discriminators(objective):
    # log(sigmoid(x)) underflows to -inf at x = -200 in float32; softplus gives the exact value 200.
    real, fake = torch.tensor([-200.0]), torch.tensor([200.0])
    assert objective.d_loss(real, fake).item() == pytest.approx(400.0)
    g = objective.g_loss(torch.tensor([-200.0], requires_grad=True))
    assert torch.isfinite(g)


def test_minimax_generator_gradient_vanishes_when_d_rejects_fakes_but_nonsaturating_does_not():
    # Goodfellow et al. 2014, §3: early on D(G(z)) → 0 and log(1 − D(G(z))) saturates.
    for d_fake, minimax_bound in [(1e-2, 2e-2), (1e-4, 2e-4), (1e-8, 2e-8)]:
        logit = probabilities_to_logits([d_fake]).requires_grad_(True)
        (grad_mm,) = torch.autograd.grad(Minimax().g_loss(logit), logit)
        logit = probabilities_to_logits([d_fake]).requires_grad_(True)
        (grad_ns,) = torch.autograd.grad(NonSaturating().g_loss(logit), logit)
        # d/da log(1 − σ(a)) = −σ(a) = −D(G(z)) → 0;  d/da −log σ(a) = σ(a) − 1 → −1.
        assert grad_mm.abs().item() < minimax_bound
        assert grad_ns.item() == pytest.approx(-1.0, abs=2 * d_fake)


def test_d_output_is_a_probability_for_classifier_objectives():
    out = Minimax().d_output(torch.tensor([0.0, 100.0, -100.0]))
    assert out.tolist() == pytest.approx([0.5, 1.0, 0.0])


ALL = ["minimax", "nonsaturating", "wasserstein", "wgan_gp", "hinge", "least_squares", "relativistic"]


def test_every_objective_has_a_yaml_and_names_its_paper():
    from gan_lightning.registry import SCHEMAS
    from tests.helpers.hydra import CONF_DIR

    assert sorted(SCHEMAS["objective"]) == sorted(ALL)
    assert sorted(p.stem for p in (CONF_DIR / "objective").glob("*.yaml")) == sorted(ALL)
    for cls in SCHEMAS["objective"].values():
        first_line = cls.__doc__.strip().splitlines()[0]
        assert any(str(year) in first_line for year in range(2013, 2020)), first_line


def test_hinge_losses():
    from gan_lightning.training.objectives import Hinge

    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 0.5])
    # max(0, 1 − D(x)): 0, 0.5, 2 → 2.5/3;  max(0, 1 + D(G(z))): 0, 1, 1.5 → 2.5/3
    assert Hinge().d_loss(real, fake).item() == pytest.approx(5.0 / 3.0)
    assert Hinge().g_loss(fake).item() == pytest.approx(1.5 / 3.0)  # −mean(D(G(z)))


def test_least_squares_losses_use_the_configured_labels():
    from gan_lightning.training.objectives import LeastSquares

    objective = LeastSquares(fake_label=-1.0, real_label=1.0, g_target=0.0)
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    assert objective.d_loss(real, fake).item() == pytest.approx(0.5 * (0.5 + 2.0))
    assert objective.g_loss(fake).item() == pytest.approx(0.5 * 1.0)


def test_relativistic_average_losses_compare_against_the_other_batch():
    from gan_lightning.training.objectives import Relativistic

    real, fake = torch.tensor([3.0, 1.0], dtype=torch.float64), torch.tensor([0.0, -2.0], dtype=torch.float64)
    sp = torch.nn.functional.softplus
    # Reals against the mean fake (−1), fakes against the mean real (2).
    expected_d = sp(-(real + 1)).mean() + sp(fake - 2).mean()
    expected_g = sp(-(fake - 2)).mean() + sp(real + 1).mean()
    assert Relativistic().d_loss(real, fake).item() == pytest.approx(expected_d.item())
    assert Relativistic().g_loss(fake, real).item() == pytest.approx(expected_g.item())
    # Shifting every score by a constant changes nothing: only differences matter.
    assert Relativistic().d_loss(real + 7, fake + 7).item() == pytest.approx(expected_d.item())


def test_wasserstein_losses_are_the_critic_gap():
    from gan_lightning.training.objectives import Wasserstein

    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([1.0, -1.0])
    assert Wasserstein(clip=0.01).d_loss(real, fake).item() == pytest.approx(0.0 - 3.0)
    assert Wasserstein(clip=0.01).g_loss(fake).item() == pytest.approx(0.0)

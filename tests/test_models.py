"""Model families build G and D of the right shapes for each kind of data, and refuse data they cannot model."""

from __future__ import annotations

import pytest
import torch

from gan_lightning.config import to_config
from gan_lightning.errors import UserError
from gan_lightning.models.configs import resolution_stages
from gan_lightning.models.layers import Maxout
from tests.helpers.hydra import compose_config


def build(overrides, shape, value_range=None):
    cfg = to_config(compose_config(overrides))
    return cfg.model.build(shape, value_range)


@pytest.mark.parametrize(
    "model,shape,value_range",
    [
        ("mlp", (2,), None),
        ("mlp", (1,), None),
        ("mlp", (1, 28, 28), (-1.0, 1.0)),
        ("dcgan", (1, 28, 28), (-1.0, 1.0)),
        ("dcgan", (3, 32, 32), (-1.0, 1.0)),
        ("dcgan", (3, 64, 64), (0.0, 1.0)),
    ],
)
def test_generator_output_and_discriminator_input_match_the_data_shape(model, shape, value_range):
    g, d = build([f"model={model}"], shape, value_range)
    z = g.sample_latent(5)
    x = g(z)
    assert x.shape == (5, *shape)
    assert d(x).shape == (5,)
    if value_range is not None:  # "auto" output follows the data's range
        assert x.min() >= value_range[0] and x.max() <= value_range[1]


@pytest.mark.parametrize(
    "value_range,last", [(None, torch.nn.Identity), ((-1.0, 1.0), torch.nn.Tanh), ((0.0, 1.0), torch.nn.Sigmoid)]
)
def test_auto_output_activation_follows_the_data_range(value_range, last):
    g, _ = build(["model=mlp"], (2,), value_range)
    assert type(g.net[-1]) is last


def test_dcgan_stages_follow_the_image_side():
    assert resolution_stages(28) == (7, 2)
    assert resolution_stages(32) == (4, 3)
    assert resolution_stages(64) == (4, 4)


def test_dcgan_refuses_vector_data_with_a_message():
    cfg = to_config(compose_config(["model=dcgan"]))
    with pytest.raises(UserError, match=r"model=dcgan needs image data .* shape \(2,\); use model=mlp"):
        cfg.model.check((2,))


def test_dcgan_refuses_an_unsupported_image_size():
    cfg = to_config(compose_config(["model=dcgan"]))
    with pytest.raises(UserError, match="12×12"):
        cfg.model.check((1, 12, 12))


def test_uniform_latents_lie_in_the_unit_cube_and_normal_ones_are_standard():
    g, _ = build(["model=mlp", "model.latent_distribution=uniform"], (2,))
    z = g.sample_latent(20000)
    assert z.min() >= -1 and z.max() <= 1 and z.mean().abs() < 0.02
    g, _ = build(["model=mlp", "model.latent_distribution=normal"], (2,))
    z = g.sample_latent(20000)
    assert abs(z.std().item() - 1) < 0.02


def test_maxout_keeps_the_largest_piece():
    layer = Maxout(3, units=2, pieces=4)
    x = torch.randn(7, 3)
    pieces = layer.linear(x).view(7, 2, 4)
    assert torch.equal(layer(x), pieces.max(dim=-1).values)


def test_spectral_norm_bounds_every_layer_of_d():
    _, d = build(["model=mlp", "model.d_spectral_norm=true"], (2,))
    for _ in range(30):  # power iterations converge while training; run them
        d(torch.randn(16, 2))
    linears = [m for m in d.modules() if isinstance(m, torch.nn.Linear)]
    assert linears
    for layer in linears:
        assert torch.linalg.matrix_norm(layer.weight, ord=2).item() == pytest.approx(1.0, rel=0.05)

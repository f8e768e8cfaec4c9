"""Class-conditional GANs: labels reach G and D, samples follow their class, grids show a class per row."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from gan_lightning.config import to_config
from gan_lightning.models.conditional import ConditionalBatchNorm2d, ConditionalDiscriminator
from gan_lightning.runs.build import build_module
from tests.helpers.hydra import compose_config, run_in_process

QUIET = ["logger=none", "callbacks.progress_every_n_steps=0"]
RING = ["data=ring8", "model=mlp", "model.conditional=true", *QUIET]


def class_correct_fraction(module, centers) -> float:
    labels = torch.arange(len(centers)).repeat_interleave(200)
    samples = module.generate(
        module.generator.sample_latent(len(labels), generator=torch.Generator().manual_seed(3)), labels
    )
    return (torch.cdist(samples, centers).argmin(dim=1) == labels).float().mean().item()


@pytest.mark.parametrize("cond_d", ["projection", "acgan"])
def test_conditional_ring8_puts_samples_of_class_c_on_mode_c(tmp_path, cond_d):
    overrides = [*RING, f"model.cond_d={cond_d}", "trainer.max_steps=400"]
    cfg = to_config(compose_config(overrides))
    untrained = class_correct_fraction(build_module(cfg), cfg.data.centers)
    run_in_process(overrides, tmp_path)
    module = build_module(cfg)
    module.load_state_dict(torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"])
    assert untrained < 0.3  # about 1/8 by chance
    assert class_correct_fraction(module, cfg.data.centers) > 0.9


def test_projection_discriminator_adds_the_class_embedding_inner_product():
    cfg = to_config(compose_config(RING))
    _, d = cfg.model.build((2,), None, num_classes=8)
    assert isinstance(d, ConditionalDiscriminator)
    x = torch.randn(5, 2)
    a, b = torch.zeros(5, dtype=torch.long), torch.full((5,), 3)
    features = d.base.features(x)
    expected = ((d.embed.weight[0] - d.embed.weight[3]) * features).sum(dim=1)
    assert torch.allclose(d(x, a) - d(x, b), expected, atol=1e-6)


def test_conditional_batch_norm_gives_each_class_its_own_gain_and_bias():
    norm = ConditionalBatchNorm2d(4, num_classes=3)
    with torch.no_grad():
        norm.gain.weight[1] = 2.0
        norm.bias.weight[1] = 0.5
    x = torch.randn(6, 4, 5, 5)
    out = norm(x, torch.tensor([0, 1, 0, 1, 0, 1]))
    plain = norm.norm(x)
    assert torch.allclose(out[0::2], plain[0::2]) and torch.allclose(out[1::2], 2 * plain[1::2] + 0.5)


def test_conditional_needs_labelled_data(tmp_path):
    with pytest.raises(SystemExit):
        run_in_process(["data=gaussian1d", "model=mlp", "model.conditional=true", *QUIET], tmp_path)
    from gan_lightning.runs.summary import read_summary

    assert "model.conditional=true needs labelled data" in read_summary(tmp_path)["error"]


def test_conditional_grid_has_one_row_per_class(tmp_path):
    run_in_process(
        ["model.conditional=true", "data.limit=512", "trainer.max_steps=2", "callbacks.num_samples=30", *QUIET],
        tmp_path,
    )
    # 10 classes × 3 samples: 10 rows of 3 images of 28 pixels with 2-pixel padding.
    # 3 images of each of 10 classes, a class per row, enlarged 2 times so that the longer side reaches 512 px.
    assert Image.open(tmp_path / "samples" / "last.png").size == (2 * (3 * 30 + 2), 2 * (10 * 30 + 2))


@pytest.fixture
def cifar_shaped(tmp_path):
    """Labelled 32×32 RGB batches in CIFAR-10's format (CIFAR-10 itself is not on every machine)."""
    import numpy as np

    from tests.test_images import write_cifar_batch

    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar_batch(folder / name, rng.integers(0, 256, (64, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, 64))
    return ["data=cifar10", f"data.root={tmp_path / 'cifar'}", "data.download=false"]


@pytest.mark.parametrize(
    "model,cond_d", [("dcgan", "projection"), ("dcgan", "acgan"), ("resnet", "projection"), ("resnet", "acgan")]
)
def test_conditional_image_models_train(tmp_path, cifar_shaped, model, cond_d):
    overrides = [
        f"model={model}",
        "model.conditional=true",
        f"model.cond_d={cond_d}",
        "model.g_width=16",
        "model.d_width=16",
        "trainer.max_steps=2",
        *QUIET,
    ]
    summary = run_in_process([*overrides, *cifar_shaped], tmp_path / "run")
    assert summary["status"] == "completed" and summary["global_step"] == 2


def test_intra_fid_is_reported_for_a_conditional_generator(tmp_path, domain_extractor):
    summary = run_in_process(
        [
            "model.conditional=true",
            "data.limit=2000",
            "trainer.max_steps=20",
            "metrics=image",
            "metrics.intra_fid=true",
            "metrics.final_num_samples=500",
            "metrics.real_num_samples=2000",
            "metrics.kid_subset_size=100",
            *QUIET,
        ],  # fmt: skip
        tmp_path,
    )
    assert summary["metrics"]["intra_fid"] > 0 and summary["metrics"]["fid"] > 0

"""The data-copying measures (gan_lightning/metrics/copying.py) on constructed feature sets, where the answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu

from gan_lightning.metrics.copying import copying, kmeans, mann_whitney_z, nearest_distances


def mixture(n: int, seed: int) -> torch.Tensor:
    """Features of 16 dimensions from 6 Gaussian clusters (the same clusters for every seed)."""
    centres = torch.randn(6, 16, generator=torch.Generator().manual_seed(123)) * 4
    generator = torch.Generator().manual_seed(seed)
    which = torch.randint(0, 6, (n,), generator=generator)
    return centres[which] + torch.randn(n, 16, generator=generator)


def test_the_u_statistic_is_scipys_and_nearest_distances_are_the_minimum_over_the_reference():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, 40), rng.normal(0.5, 1, 60)
    u = mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=False)
    z = (u.statistic - 40 * 60 / 2) / math.sqrt(40 * 60 * 101 / 12)
    assert mann_whitney_z(torch.tensor(x), torch.tensor(y)) == pytest.approx(z, rel=1e-9) and z < -2
    queries, reference = torch.randn(7, 3), torch.randn(50, 3)
    assert torch.allclose(nearest_distances(queries, reference, batch=2), torch.cdist(queries, reference).min(1).values)
    centres = kmeans(torch.cat([torch.randn(100, 2) - 10, torch.randn(100, 2) + 10]), 2)
    assert sorted(round(float(c.mean())) for c in centres) == [-10, 10]


def test_copies_of_the_training_images_are_flagged_and_new_samples_are_not():
    train, heldout = mixture(500, seed=1), mixture(500, seed=2)
    pick = torch.randint(0, 500, (1000,), generator=torch.Generator().manual_seed(3))
    copies = train[pick] + 0.01 * torch.randn(1000, 16, generator=torch.Generator().manual_seed(4))
    copied = copying(copies, train, heldout)
    assert copied["copy_fraction"] > 0.99 and copied["copy_ct"] < -10
    fresh = copying(mixture(1000, seed=5), train, heldout)  # a G that learnt the distribution, not the images
    assert abs(fresh["copy_fraction"] - 0.5) < 0.06 and abs(fresh["copy_ct"]) < 3
    held = copying(heldout, train, mixture(500, seed=6))  # the held-out images themselves
    assert abs(held["copy_fraction"] - 0.5) < 0.08 and abs(held["copy_ct"]) < 3
    # samples spread wider than the data: farther from the training images than new data is (underfitting)
    wide = copying(mixture(1000, seed=7) * 1.5, train, heldout)
    assert wide["copy_ct"] > 3


def fashion_mnist():
    from gan_lightning.config import compose, to_config

    return to_config(compose(["data=fashion_mnist"])).data


def test_in_the_domain_extractors_features_training_copies_are_flagged_and_held_out_images_are_not(domain_extractor):
    from gan_lightning.metrics.domain import NAME
    from gan_lightning.metrics.fidelity import Features, to_uint8

    data = fashion_mnist()
    features = Features(NAME, domain_extractor, cuda=False)
    layer = features.layers["prc"]

    def embedded(images):
        return torch.cat(
            [features(to_uint8(images[i : i + 500], data.value_range))[layer] for i in range(0, len(images), 500)]
        )

    training = data.load(seed=0)
    chosen = torch.randperm(len(training), generator=torch.Generator().manual_seed(0))[:2000]
    heldout = data.heldout_images(2000)[0]
    train, other_train = embedded(training[chosen[:1000]]), embedded(training[chosen[1000:]])
    held, other_held = embedded(heldout[:1000]), embedded(heldout[1000:])
    memorised = copying(train, train, held)  # G reproduces the very images it trained on
    assert memorised["copy_fraction"] == 1.0 and memorised["copy_ct"] < -10
    new = copying(other_held, train, held)  # images of the distribution G never saw
    assert abs(new["copy_fraction"] - 0.5) < 0.06 and abs(new["copy_ct"]) < 3
    unseen_training = copying(other_train, train, held)  # training images, but not the ones in the reference
    assert abs(unseen_training["copy_fraction"] - 0.5) < 0.06 and abs(unseen_training["copy_ct"]) < 3


@pytest.mark.slow
def test_a_generator_trained_on_the_whole_set_is_not_a_copier_and_the_protocol_says_how_it_was_measured(
    tmp_path, domain_extractor
):
    from gan_lightning.runs.summary import read_summary
    from tests.helpers.commands import run_command

    run_dir = tmp_path / "run"
    args = ["data=fashion_mnist", "model=dcgan", "metrics=image", "trainer.max_steps=300", "metrics.every_n_steps=150",
            "metrics.num_samples=1000", "metrics.final_num_samples=1000", "metrics.copying_samples=1000",
            "callbacks.progress_every_n_steps=0", f"hydra.run.dir={run_dir}"]  # fmt: skip
    result = run_command(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(run_dir)
    assert 0.35 < summary["metrics"]["copy_fraction"] < 0.65 and summary["metrics"]["copy_ct"] > -3
    assert summary["metrics_protocol"]["copying"] == {"training": 1000, "heldout": 1000, "layer": "prc", "cells": 10}

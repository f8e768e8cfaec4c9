"""Sample-quality metrics: the formulas, the torch-fidelity pipeline with the domain extractor, caching,
Inception offline, mode coverage, and the evaluate and sample commands."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torch_fidelity
import yaml
from PIL import Image

from gan_lightning.config import to_config
from gan_lightning.errors import UserError
from gan_lightning.files import cache_root
from gan_lightning.metrics.domain import DomainFeatureExtractor
from gan_lightning.metrics.fidelity import INCEPTION, RealImages, image_metrics, inception_weights_path
from gan_lightning.metrics.frechet import frechet_distance
from gan_lightning.metrics.modes import mode_coverage
from gan_lightning.tracking.wandb_records import WandbRun
from tests.helpers.commands import command, run_command
from tests.helpers.hydra import compose_config, run_in_process

QUIET = ["callbacks.progress_every_n_steps=0"]


# ---------------------------------------------------------------- the Fréchet distance


def test_frechet_distance_of_1d_gaussians():
    # (μ1 − μ2)² + σ1² + σ2² − 2σ1σ2 = (σ1 − σ2)² + (μ1 − μ2)²
    assert frechet_distance([0.0], [[1.0]], [3.0], [[4.0]]) == pytest.approx(9 + (1 - 2) ** 2)


def test_frechet_distance_with_non_diagonal_covariances():
    angle = 0.6
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    sigma2 = rotation @ np.diag([9.0, 16.0]) @ rotation.T
    # Against N(0, I): tr((Σ2)^½) = 3 + 4.
    assert frechet_distance([0, 0], np.eye(2), [1, 2], sigma2) == pytest.approx(5 + 2 + 25 - 2 * 7)
    # Two non-diagonal covariances with shared eigenvectors: tr((Σ1Σ2)^½) = √(1·9) + √(4·16) = 11.
    sigma1 = rotation @ np.diag([1.0, 4.0]) @ rotation.T
    assert frechet_distance([0, 0], sigma1, [0, 0], sigma2) == pytest.approx(5 + 25 - 22)


def test_frechet_distance_matches_torch_fidelity_on_random_statistics():
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16)) * 0.3 + 0.5
    stats = [{"mu": x.mean(0), "sigma": np.cov(x, rowvar=False)} for x in (a, b)]
    ours = frechet_distance(stats[0]["mu"], stats[0]["sigma"], stats[1]["mu"], stats[1]["sigma"])
    assert ours == pytest.approx(fid_statistics_to_metric(stats[0], stats[1], False)[KEY_METRIC_FID], rel=1e-6)
    assert frechet_distance(stats[0]["mu"], stats[0]["sigma"], stats[0]["mu"], stats[0]["sigma"]) == pytest.approx(
        0.0, abs=1e-8
    )


# ---------------------------------------------------------------- mode coverage


def test_mode_coverage_of_points_on_every_mode():
    centers = to_config(compose_config(["data=ring8", "model=mlp"])).data.centers
    result = mode_coverage(centers.repeat(10, 1), centers, std=0.01)
    assert result == {
        "modes": 8.0,
        "hq_fraction": 1.0,
        "reverse_kl": pytest.approx(0.0, abs=1e-12),
        "balanced_hq_fraction": 1.0,
    }


def test_mode_coverage_of_points_off_every_mode():
    centers = to_config(compose_config(["data=ring8", "model=mlp"])).data.centers
    result = mode_coverage(torch.zeros(100, 2), centers, std=0.01)  # the ring's centre is 1 away from every mode
    assert (
        result["modes"] == 0
        and result["hq_fraction"] == 0
        and math.isinf(result["reverse_kl"])
        and result["balanced_hq_fraction"] == 0
    )


def test_mode_coverage_of_a_sample_that_misses_modes():
    centers = to_config(compose_config(["data=ring8", "model=mlp"])).data.centers
    on_three = centers[:3].repeat(20, 1) + 0.02 * torch.randn(60, 2, generator=torch.Generator().manual_seed(0)).clamp(
        -1, 1
    )
    far = torch.full((40, 2), 5.0)
    result = mode_coverage(torch.cat([on_three, far]), centers, std=0.01)
    assert result["modes"] == 3.0 and result["hq_fraction"] == pytest.approx(0.6)
    assert result["reverse_kl"] == pytest.approx(math.log(8 / 3))  # KL of uniform-on-3 against uniform-on-8
    assert result["balanced_hq_fraction"] == pytest.approx(
        3 * 100 / 8 / 100
    )  # each mode counts at most 100/8 of its 20


def test_balanced_hq_fraction_counts_each_mode_up_to_its_fair_share():
    centers = to_config(compose_config(["data=ring8", "model=mlp"])).data.centers
    collapsed = mode_coverage(centers[:1].repeat(80, 1), centers, std=0.01)
    assert collapsed["hq_fraction"] == 1.0 and collapsed["balanced_hq_fraction"] == pytest.approx(1 / 8)
    # Six modes with 10 samples each, two with 20 (fair share 100/8 = 12.5): 6 × 10 + 2 × 12.5 of 100 count.
    uneven = mode_coverage(torch.cat([centers[:6].repeat(10, 1), centers[6:].repeat(20, 1)]), centers, std=0.01)
    assert uneven["hq_fraction"] == 1.0 and uneven["balanced_hq_fraction"] == pytest.approx(0.85)
    # The data's own samples: high quality within 3 std for 1 - exp(-9/2) of them in 2-D, less the modes' sampling noise.
    generator = torch.Generator().manual_seed(0)
    data = centers[torch.randint(8, (2500,), generator=generator)] + 0.01 * torch.randn(2500, 2, generator=generator)
    scored = mode_coverage(data, centers, std=0.01)
    assert scored["hq_fraction"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert 0.93 < scored["balanced_hq_fraction"] < scored["hq_fraction"]


# ---------------------------------------------------------------- the domain extractor and torch-fidelity


def fashion(*overrides):
    return to_config(compose_config(["model=mlp", *overrides])).data


def test_the_shipped_domain_extractor_is_the_one_image_metrics_use_unless_one_is_built(
    domain_extractor, tmp_path, monkeypatch
):
    from gan_lightning.metrics.domain import SHIPPED, built_path, extractor_path

    record = torch.load(domain_extractor, weights_only=True)
    assert record["dataset"] == "fashion_mnist" and record["test_accuracy"] >= 0.90
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # a machine that built none
    shipped = SHIPPED / "domain-fashion_mnist-v1.pt"
    assert extractor_path(fashion()) == shipped and shipped.is_file()
    built = built_path(fashion())
    built.parent.mkdir(parents=True)
    built.write_bytes(shipped.read_bytes())  # as `python -m gan_lightning.extractor force=true` leaves one
    assert extractor_path(fashion()) == built


def real_set(domain_extractor, count=2000) -> RealImages:
    from gan_lightning.metrics.domain import NAME

    return RealImages(fashion(), "train", count, NAME, domain_extractor, rgb=False)


def measure(images, real, domain_extractor):
    from gan_lightning.metrics.domain import NAME

    return image_metrics(images, real, NAME, domain_extractor, kid_subset_size=500, batch_size=500, cuda=False)


def blur(images: torch.Tensor, size: int) -> torch.Tensor:
    kernel = torch.ones(1, 1, size, size) / size**2
    return F.conv2d(images.float(), kernel, padding=size // 2).round().to(torch.uint8)


def test_fid_kid_is_prc_behave_as_defined(domain_extractor):
    real = real_set(domain_extractor)
    test_images, test_labels = fashion().labelled_images("test")
    same = measure(test_images[:2000], real, domain_extractor)
    shifted = measure(torch.roll(test_images[:2000], shifts=(5, 5), dims=(2, 3)), real, domain_extractor)
    mild, strong = (measure(blur(test_images[:2000], k), real, domain_extractor) for k in (3, 5))
    one_class = measure(test_images[test_labels == 1][:1000], real, domain_extractor)  # trousers only

    # FID: about 0 for the same distribution, growing with the distortion.
    assert same["fid"] < 0.05 * shifted["fid"] and same["fid"] < 0.1 * mild["fid"] < 0.1 * strong["fid"]
    # KID's unbiased estimate averages about 0 for equal distributions.
    assert abs(same["kid_mean"]) < 3 * same["kid_std"] + 1e-3 and shifted["kid_mean"] > 100 * abs(same["kid_mean"])
    # IS: confident predictions spread over 10 classes score near 10; one class scores near 1.
    assert same["is_mean"] > 7.5 and one_class["is_mean"] < 1.3
    # Precision/recall: the same distribution covers and is covered; one class is precise but misses the rest.
    assert same["precision"] > 0.6 and same["recall"] > 0.6
    assert one_class["precision"] > 0.6 and one_class["recall"] < 0.25


def test_real_features_are_computed_once_and_recomputed_when_a_key_changes(domain_extractor):
    fakes = blur(fashion().labelled_images("test")[0][:300], 3)
    real = real_set(domain_extractor, count=1500)
    for reference in (real, real_set(domain_extractor, count=1600)):  # left by an earlier session in a shared cache
        for cached in (cache_root() / "fidelity").glob(f"{reference.cache_name}-*"):
            cached.unlink()
    before = DomainFeatureExtractor.images_embedded
    first = measure(fakes, real, domain_extractor)
    assert DomainFeatureExtractor.images_embedded - before == 300 + 1500
    before = DomainFeatureExtractor.images_embedded
    second = measure(fakes, real_set(domain_extractor, count=1500), domain_extractor)
    assert DomainFeatureExtractor.images_embedded - before == 300  # fakes only: the real features came from the cache
    assert second == first
    before = DomainFeatureExtractor.images_embedded
    measure(
        fakes, real_set(domain_extractor, count=1600), domain_extractor
    )  # another sample count: another cache entry
    assert DomainFeatureExtractor.images_embedded - before == 300 + 1600


# ---------------------------------------------------------------- Inception, offline


@pytest.fixture
def random_inception_weights(tmp_path) -> Path:
    """Inception-v3 weights of the right shapes, randomly initialised: the code path without the real file."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    empty = tmp_path / "empty.pt"
    torch.save({}, empty)

    class Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):
            return None  # keep the random initialisation

    torch.manual_seed(0)
    path = tmp_path / "inception-random.pth"
    torch.save(Unloaded("x", ["2048"], feature_extractor_weights_path=str(empty)).state_dict(), path)
    return path


def test_inception_features_run_offline_from_a_local_weights_file(random_inception_weights):
    images, _ = fashion().labelled_images("test")
    real = RealImages(fashion(), "test", 12, INCEPTION, random_inception_weights, rgb=True)
    assert real.dataset[0].shape == (3, 28, 28)  # grey-scale repeated to the three channels Inception reads
    results = image_metrics(
        images[100:112], real, INCEPTION, random_inception_weights, kid_subset_size=1000, batch_size=12, cuda=False
    )
    assert set(results) == {"fid", "is_mean", "is_std", "kid_mean", "kid_std", "precision", "recall"}
    assert all(math.isfinite(v) for v in results.values()) and results["fid"] > 0


def test_inception_without_weights_or_network_suggests_the_domain_extractor(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torch hub cache
    monkeypatch.setattr(
        "gan_lightning.metrics.fidelity.INCEPTION_URL", "http://127.0.0.1:9/pt_inception-2015-12-05.pth"
    )
    with pytest.raises(
        UserError, match="could not be downloaded .* metrics.inception_weights=PATH .* metrics.features=domain"
    ):
        inception_weights_path(None)
    with pytest.raises(UserError, match="metrics.inception_weights='/nonexistent.pth' is not allowed"):
        inception_weights_path("/nonexistent.pth")


def test_image_metrics_refuse_vector_data_and_toy_metrics_refuse_images():
    cfg = to_config(compose_config(["model=mlp", "data=ring8", "metrics=image"]))
    with pytest.raises(UserError, match="metrics=image needs image data"):
        cfg.metrics.check(cfg.data)
    cfg = to_config(compose_config(["model=mlp", "metrics=toy2d"]))
    with pytest.raises(UserError, match="metrics=toy2d needs a 2-D Gaussian mixture"):
        cfg.metrics.check(cfg.data)


# ---------------------------------------------------------------- during training, and on checkpoints


def logged_series(run_dir: Path, key: str):
    import csv

    with open(run_dir / "csv" / "metrics.csv") as f:
        return [(int(row["step"]), float(row[key])) for row in csv.DictReader(f) if row.get(key)]


@pytest.mark.slow
def test_fashion_mnist_run_tracks_image_metrics_and_they_improve(run_dir, domain_extractor):
    overrides = ["logger=wandb", "trainer.max_steps=600", "metrics=image", "metrics.every_n_steps=200", "metrics.num_samples=1000",
                 "metrics.final_num_samples=2000", "metrics.real_num_samples=2000", *QUIET]  # fmt: skip
    summary = run_in_process(overrides, run_dir)
    fid = logged_series(run_dir, "metrics/fid")
    assert [step for step, _ in fid] == [200, 400, 600]  # logged at the training steps they measure
    assert fid[-1][1] < 0.8 * fid[0][1]
    for key in ("is_mean", "is_std", "kid_mean", "kid_std", "precision", "recall"):
        assert len(logged_series(run_dir, f"metrics/{key}")) == 3
    assert summary["metrics"]["fid"] == pytest.approx(fid[-1][1])
    assert logged_series(run_dir, "metrics/is_mean")[-1][1] > logged_series(run_dir, "metrics/is_mean")[0][1]
    # The protocol beside the scores: the final one in summary.json, both in the CSV log's hparams.yaml.
    from gan_lightning.metrics.domain import NAME
    from gan_lightning.metrics.fidelity import file_digest

    final = {"generated": 2000, "real": 2000, "reference": "fashion_mnist train split", "extractor": NAME,
             "extractor_sha256": file_digest(domain_extractor), "resize": "none", "kid_subset_size": 1000,
             "library": f"torch-fidelity {torch_fidelity.__version__}", "sampler": "generator", "latent_seed": 0,
             "copying": {"training": 2000, "heldout": 2000, "layer": "prc", "cells": 10}}  # fmt: skip
    assert summary["metrics_protocol"] == final
    logged = yaml.safe_load((run_dir / "csv" / "hparams.yaml").read_text())["metrics_protocol"]
    assert logged == {"periodic": {**final, "generated": 1000}, "final": final}
    # W&B's summary: the final values under the final protocol; the best of the periodic evaluations (1 000
    # samples) under theirs, the final one (2 000 samples) left out of that comparison.
    wandb_summary = WandbRun(run_dir).summary
    assert wandb_summary["metrics/fid"] == pytest.approx(fid[-1][1]) and wandb_summary["metrics_protocol"] == final
    best = wandb_summary["metrics_best"]
    assert best["protocol"] == {**final, "generated": 1000}
    assert best["fid"] == {
        "value": pytest.approx(min(v for _, v in fid[:2])),
        "step": min(fid[:2], key=lambda p: p[1])[0],
    }


def test_ring8_run_tracks_mode_coverage_and_evaluate_and_sample_read_its_checkpoint(run_dir):
    overrides = [
        "data=ring8",
        "model=mlp",
        "logger=wandb",
        "trainer.max_steps=300",
        "metrics=toy2d",
        "metrics.every_n_steps=100",
        "regularization.ema_decay=0.99",
        *QUIET,
    ]
    summary = run_in_process(overrides, run_dir)
    for key in ("modes", "hq_fraction", "reverse_kl", "balanced_hq_fraction"):
        assert [step for step, _ in logged_series(run_dir, f"metrics/{key}")] == [100, 200, 300]
        assert key in summary["metrics"]
    # The protocol beside the scores, in summary.json and the W&B run's config: samples of the EMA of G.
    protocol = {"samples": 2500, "high_quality_within_std": 3.0, "modes_of": "the data's mixture centres", "library": "gan_lightning mode_coverage",
                "sampler": "ema", "latent_seed": 0}  # fmt: skip
    assert summary["metrics_protocol"] == protocol
    (wandb_run,) = [WandbRun(folder) for folder in (run_dir / "wandb").glob("*run-*")]
    assert wandb_run.config["metrics_protocol"] == {"periodic": protocol, "final": protocol}
    assert wandb_run.summary["metrics_protocol"] == protocol  # beside the run summary's metric values
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    evaluated = command("evaluate", [f"ckpt={checkpoint}"], cwd=run_dir)
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert result["step"] == 300
    assert result["metrics"] == {
        k: pytest.approx(summary["metrics"][k]) for k in ("modes", "hq_fraction", "reverse_kl", "balanced_hq_fraction")
    }
    assert result["protocol"] == protocol
    out = run_dir / "grid.png"
    sampled = command("sample", [f"ckpt={checkpoint}", "n=500", f"out={out}"], cwd=run_dir)
    assert sampled.returncode == 0, sampled.stderr
    assert Image.open(out).size == (400, 400)


def test_sample_writes_an_image_grid_of_n_images(tmp_path):
    run_in_process(["data.limit=256", "trainer.max_steps=2", "logger=none", *QUIET], tmp_path)
    out = tmp_path / "grid.png"
    result = command("sample", [f"ckpt={tmp_path / 'checkpoints' / 'last.ckpt'}", "n=25", f"out={out}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (4 * (5 * 30 + 2), 4 * (5 * 30 + 2))  # 152 px enlarged 4 times: at least 512


def test_evaluate_reports_a_missing_checkpoint_without_a_traceback(tmp_path):
    result = command("evaluate", ["ckpt=/nonexistent.ckpt"], cwd=tmp_path)
    assert result.returncode == 2 and "ckpt='/nonexistent.ckpt': no such checkpoint file" in result.stderr
    assert "Traceback" not in result.stderr


def test_evaluation_split_over_two_processes_equals_one_process(tmp_path, domain_extractor):
    # 600 images in batches of 250: the first process generates and embeds batches 1 and 3, the second batch 2.
    run_in_process(["data.limit=256", "trainer.max_steps=3", "logger=none", *QUIET], tmp_path)
    metrics = [
        "metrics.final_num_samples=600",
        "metrics.batch_size=250",
        "metrics.real_num_samples=1000",
        "metrics.kid_subset_size=200",
    ]
    results = {}
    for processes in (1, 2):
        evaluated = command(
            "evaluate",
            [f"ckpt={tmp_path / 'checkpoints' / 'last.ckpt'}", *metrics, f"processes={processes}"],
            cwd=tmp_path,
        )
        assert evaluated.returncode == 0, evaluated.stderr[-3000:]
        assert ("2 CPU processes share the generation and feature extraction" in evaluated.stderr) == (processes == 2)
        results[processes] = json.loads(evaluated.stdout)
    one, two = results[1], results[2]
    assert one["protocol"] == two["protocol"] and one["protocol"]["generated"] == 600
    names = {"fid", "is_mean", "is_std", "kid_mean", "kid_std", "precision", "recall", "copy_fraction", "copy_ct"}
    assert set(one["metrics"]) == names
    assert two["metrics"] == {name: pytest.approx(value, rel=1e-6) for name, value in one["metrics"].items()}


def test_normal_distances_are_exact_against_the_normal_itself():
    from scipy import stats

    from gan_lightning.metrics.toy1d import normal_distances

    n, mean, std = 20000, 2.0, 0.5
    quantiles = torch.special.ndtri((torch.arange(n, dtype=torch.float64) + 0.5) / n)
    # W1 between N(m, s²) and N(m + δ, s²) is δ; between N(m, s²) and N(m, 4s²) it is s·E|Z| = s·√(2/π).
    shifted = normal_distances(mean + 0.3 + std * quantiles, mean, std)
    assert shifted["w1_distance"] == pytest.approx(0.3, abs=1e-3)
    assert shifted["ks_statistic"] == pytest.approx(2 * stats.norm.cdf(0.3 / (2 * std)) - 1, abs=1 / n)
    widened = normal_distances(mean + 2 * std * quantiles, mean, std)
    assert widened["w1_distance"] == pytest.approx(std * math.sqrt(2 / math.pi), abs=1e-3)
    matched = normal_distances(mean + std * quantiles, mean, std)
    assert matched["w1_distance"] < 1e-3 and matched["ks_statistic"] <= 0.5 / n + 1e-12
    samples = mean + std * torch.randn(500, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert normal_distances(samples, mean, std)["ks_statistic"] == pytest.approx(
        stats.kstest(samples.flatten().numpy(), "norm", args=(mean, std)).statistic, abs=1e-12
    )


@pytest.mark.parametrize(
    "data, kind",
    [
        ("fashion_mnist", "image"),
        ("cifar10", "image"),
        ("ring8", "toy2d"),
        ("grid25", "toy2d"),
        ("gaussian1d", "toy1d"),
    ],
)
def test_metrics_auto_chooses_the_metrics_that_fit_the_data(data, kind):
    metrics = to_config(compose_config([f"data={data}", "model=mlp"])).metrics
    assert metrics.option == kind and metrics.every_n_steps == 1000
    if kind == "image":
        assert (metrics.features, metrics.num_samples, metrics.final_num_samples) == ("domain", 2000, 5000)
    # One interval for whichever kind is chosen; each kind's own settings under its key.
    tuned = to_config(
        compose_config([f"data={data}", "model=mlp", "metrics.every_n_steps=7", f"metrics.{kind}.num_samples=100"])
    ).metrics
    assert tuned.option == kind and tuned.every_n_steps == 7 and tuned.num_samples == 100
    assert to_config(compose_config([f"data={data}", "model=mlp", "metrics=none"])).metrics.option == "none"


def test_a_default_gaussian1d_run_tracks_its_distance_to_the_data(tmp_path):
    run_dir = tmp_path / "run"
    result = run_command(["data=gaussian1d", "model=mlp", "trainer.max_steps=1000", "metrics.every_n_steps=250", "logger=csv", *QUIET, f"hydra.run.dir={run_dir}"],
                 cwd=tmp_path, defaults=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    w1 = logged_series(run_dir, "metrics/w1_distance")
    assert [step for step, _ in w1] == [250, 500, 750, 1000]
    assert summary["metrics"]["w1_distance"] == pytest.approx(w1[-1][1])
    # Within half a standard deviation of p_data from the first evaluation on; the untrained G is about 2 away.
    from gan_lightning.metrics.toy1d import normal_distances
    from gan_lightning.runs.build import build_module

    untrained = build_module(to_config(compose_config(["data=gaussian1d", "model=mlp"])))
    assert normal_distances(untrained.generate(untrained.generator.sample_latent(10000)), 2.0, 0.5)["w1_distance"] > 1.0
    assert max(value for _, value in w1) < 0.25
    assert summary["metrics_protocol"] == {"samples": 10000, "against": "N(2.0, 0.5^2), exactly", "library": "gan_lightning normal_distances",
                                           "sampler": "generator", "latent_seed": 0}  # fmt: skip
    assert 0 < summary["evaluation_s"] < 0.05 * summary["wall_time_s"]


def test_a_default_image_run_logs_every_image_metric_against_the_step_to_wandb_and_its_summary(
    tmp_path, domain_extractor
):
    run_dir = tmp_path / "run"
    small = [
        "metrics.image.num_samples=500",
        "metrics.image.final_num_samples=1000",
        "metrics.image.real_num_samples=1000",
        "metrics.image.kid_subset_size=200",
    ]
    result = run_command(
        [
            "data.limit=512",
            "trainer.max_steps=40",
            "metrics.every_n_steps=20",
            *small,
            *QUIET,
            f"hydra.run.dir={run_dir}",
        ],
        cwd=tmp_path,
        defaults=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    names = ("fid", "is_mean", "kid_mean", "precision", "recall")
    assert all(math.isfinite(summary["metrics"][name]) for name in names)
    assert (
        summary["metrics_protocol"]["generated"] == 1000
        and summary["metrics_protocol"]["extractor"] == "gan_lightning-domain"
    )
    (wandb_run,) = [WandbRun(folder) for folder in (run_dir / "wandb").glob("*run-*")]
    for name in names:
        logged = [
            (row["trainer/global_step"], row[f"metrics/{name}"])
            for row in wandb_run.history
            if f"metrics/{name}" in row
        ]
        assert [step for step, _ in logged] == [20, 40] and logged[-1][1] == pytest.approx(summary["metrics"][name])
    assert wandb_run.config["metrics_protocol"]["final"] == summary["metrics_protocol"]


def test_kid_and_precision_recall_equal_torch_fidelitys_with_the_reference_kept_between_evaluations():
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torch_fidelity.metric_prc import prc_features_to_metric

    from gan_lightning.metrics.manifold import Reference

    generator = torch.Generator().manual_seed(0)
    real = torch.randn(3000, 64, generator=generator).abs()  # non-negative, as features after a ReLU
    reference = Reference(real)
    for count, shift in ((1500, 0.2), (1500, 0.0), (2200, 0.5)):
        fake = (torch.randn(count, 64, generator=generator) + shift).abs()
        # torch-fidelity's estimator in float64: its float32 run loses 1e-4 of KID to the cancellation of the MMD's terms.
        theirs_kid = kid_features_to_metric(fake.double(), real.double(), kid_subset_size=500, verbose=False)
        theirs_prc = prc_features_to_metric(fake, real, save_cpu_ram=True, verbose=False)
        kid, prc = reference.kid(fake, 500), reference.precision_recall(fake)
        assert kid == {"kid_mean": pytest.approx(theirs_kid["kernel_inception_distance_mean"], rel=1e-5),
                       "kid_std": pytest.approx(theirs_kid["kernel_inception_distance_std"], rel=1e-5)}  # fmt: skip
        assert prc == {"precision": theirs_prc["precision"], "recall": theirs_prc["recall"]}
    # The real subsets' kernel sums are computed once per generated count, and reused.
    assert sorted(reference.kid_real_sums) == [(1500, 500, 100), (2200, 500, 100)]


@pytest.mark.slow
@pytest.mark.timeout(600)  # minutes of training: past the suite's 240 s limit on a busy machine
def test_processes_that_need_the_extractor_at_once_wait_for_one_build(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "gan_lightning.extractor", "data=fashion_mnist", "force=true"]
    first = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    second = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    outputs = [process.communicate(timeout=900)[0] for process in (first, second)]
    assert first.returncode == second.returncode == 0, outputs
    assert sum("building the domain feature extractor" in output for output in outputs) == 1
    assert (
        sum("waiting for another process that builds the domain feature extractor" in output for output in outputs) == 1
    )
    accuracies = [re.search(r"fashion_mnist: test accuracy ([0-9.]+)", output).group(1) for output in outputs]
    assert accuracies[0] == accuracies[1] and float(accuracies[0]) >= 0.9
    # The build reproduces the shipped extractor (same recipe, same seed, the CPU), and takes its place on this machine.
    from gan_lightning.metrics.domain import SHIPPED

    built = tmp_path / "cache" / "gan_lightning" / "extractors" / "domain-fashion_mnist-v1.pt"
    shipped = torch.load(SHIPPED / "domain-fashion_mnist-v1.pt", weights_only=True)
    assert float(accuracies[0]) == pytest.approx(shipped["test_accuracy"], abs=0.002)
    kept = subprocess.run(command[:-1], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert kept.returncode == 0 and "building" not in kept.stderr + kept.stdout and str(built) in kept.stdout


def test_evaluations_in_one_process_share_the_extractor_and_what_it_keeps_of_the_reference(domain_extractor):
    from gan_lightning.metrics.fidelity import ImageQuality, shared_features
    from gan_lightning.runs.build import build_module

    shared_features.cache_clear()  # what earlier tests in this process left is not this test's
    overrides = [
        "metrics=image",
        "metrics.num_samples=300",
        "metrics.real_num_samples=1000",
        "metrics.kid_subset_size=100",
        "metrics.batch_size=150",
        "metrics.copying_samples=0",  # data copying's features are per run: tests/test_copying.py
    ]
    cfg = to_config(compose_config(overrides))
    module = build_module(cfg)
    module.max_steps = 10**9
    runs = [ImageQuality(cfg.metrics, cfg.data, seed) for seed in (0, 1)]  # two runs of a sweep, in one process
    scores = [run.measure(module, final=False) for run in runs]
    assert runs[0].features is runs[1].features
    (reference,) = runs[0].features.references.values()
    assert list(reference.manifolds) == ["features"]  # the reference's k-NN radii: computed once for both
    assert scores[0]["fid"] != scores[1]["fid"]  # each run's own latents
    assert scores[1] == ImageQuality(cfg.metrics, cfg.data, 1).measure(
        module, final=False
    )  # what it keeps changes no score

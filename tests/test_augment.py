"""Augmenting what D sees (augment=diffaug|ada), D's health (d/r_t, the held-out gap) and data.subset: transforms
checked for their gradients and their identity, ADA's p against a D that memorises and one that cannot, resumes,
refusals, and what real runs log."""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Tuple

import pytest
import torch

from gan_lightning.augment.ada import TRANSFORMS, AdaptiveAugment
from gan_lightning.augment.diffaug import POLICIES, DiffAugment
from gan_lightning.config import compose, to_config
from gan_lightning.results.runs import read_series
from gan_lightning.training.losses import Losses
from gan_lightning.training.objectives import LeastSquares, NonSaturating
from gan_lightning.training.scalars import measured
from tests.helpers.commands import command
from tests.helpers.hydra import run_in_process


def seeded(transform, seed: int = 0):
    """``transform`` with its random draws fixed: a deterministic function of the images, for gradcheck."""

    def fixed(x):
        torch.manual_seed(seed)
        return transform(x)

    return fixed


@pytest.mark.parametrize("name", list(POLICIES))
def test_every_diffaugment_policy_is_differentiable_with_the_gradient_its_values_imply(name):
    x = (torch.rand(3, 3, 8, 8, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    assert torch.autograd.gradcheck(seeded(DiffAugment([name])), (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", TRANSFORMS)
def test_every_ada_transform_is_differentiable_with_the_gradient_its_values_imply(name):
    x = (torch.rand(3, 3, 8, 8, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    assert torch.autograd.gradcheck(seeded(AdaptiveAugment([name], p=1.0)), (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("augment", [DiffAugment(list(POLICIES)), AdaptiveAugment(p=0.8)], ids=["diffaug", "ada"])
def test_gradients_reach_g_through_the_augmentation(augment):
    torch.manual_seed(0)
    generator = torch.nn.Sequential(torch.nn.Linear(4, 28 * 28), torch.nn.Tanh(), torch.nn.Unflatten(1, (1, 28, 28)))
    images = generator(torch.randn(16, 4))
    augment(images).pow(2).sum().backward()
    gradient = generator[0].weight.grad
    assert gradient is not None and gradient.abs().sum() > 0 and torch.isfinite(gradient).all()


def test_at_p_zero_or_with_no_policy_d_sees_the_images_themselves():
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    assert AdaptiveAugment(p=0.0)(x) is x
    assert torch.equal(DiffAugment([])(x), x)
    assert not torch.equal(AdaptiveAugment(p=1.0)(x), x) and not torch.equal(DiffAugment(["color"])(x), x)


def test_flips_and_quarter_turns_are_what_they_say_up_to_the_resampling_filter_and_translation_is_exact():
    # Every geometric transform goes through the reference's filtered resampling, flips and quarter turns too: each
    # image is its flipped or turned self, smoothed (correlation above 0.9), never another transform of it.
    torch.manual_seed(0)
    x = torch.rand(16, 1, 12, 12) * 2 - 1
    flipped = AdaptiveAugment(["xflip"], p=1.0)(x)
    rotated = AdaptiveAugment(["rotate90"], p=1.0)(x)

    def correlation(a, b):
        return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])

    for i in range(16):
        assert max(correlation(flipped[i], y) for y in (x[i], x[i].flip(-1))) > 0.9
        assert max(correlation(rotated[i], torch.rot90(x[i], k, dims=(-2, -1))) for k in range(4)) > 0.9
    shifted = DiffAugment(["translation"])(x)  # whole-pixel shifts: every value an original one or the zero border
    assert all(set(shifted[i].flatten().tolist()) <= set(x[i].flatten().tolist()) | {0.0} for i in range(16))


def d_inputs(augment, reals: torch.Tensor, fakes: torch.Tensor):
    """The images D scores in its update of ``reals`` against ``fakes`` under ``augment``, split into the two."""
    seen = []
    discriminator = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(reals[0].numel(), 1))
    discriminator.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].detach()))
    losses = Losses(NonSaturating(), [], False, separate_batches=True, augment=augment)
    losses.discriminator(discriminator, reals, None, fakes, None, 0, discriminator)
    return seen


def test_reals_and_fakes_are_augmented_with_the_same_probability():
    torch.manual_seed(0)
    reals, fakes = torch.rand(2000, 1, 8, 8), torch.rand(2000, 1, 8, 8) - 1
    seen_reals, seen_fakes = d_inputs(AdaptiveAugment(["brightness"], p=0.3), reals, fakes)
    changed = [
        float((seen != x).flatten(1).any(1).float().mean()) for seen, x in ((seen_reals, reals), (seen_fakes, fakes))
    ]
    assert changed == pytest.approx([0.3, 0.3], abs=0.035)  # 2000 images each: 3.5 standard errors
    seen_reals, seen_fakes = d_inputs(DiffAugment(["color"]), reals, fakes)  # DiffAugment: every image, both
    assert bool((seen_reals != reals).flatten(1).any(1).all()) and bool((seen_fakes != fakes).flatten(1).any(1).all())


class Energy(torch.nn.Module):
    """D(x) = 0.1 Σ x²: its input gradient 0.2 x depends on where it is taken."""

    def forward(self, x):
        return 0.1 * x.flatten(1).pow(2).sum(1, keepdim=True)


def test_r1_is_the_gradient_at_the_raw_reals_through_the_augmentation_as_in_the_reference():
    # stylegan2-ada's loss.py: the reals require grad before the augmentation, and R1 differentiates D(aug(x)) by x.
    reals, fakes = torch.rand(8, 1, 8, 8), torch.zeros(8, 1, 8, 8)
    augment = AdaptiveAugment(["contrast"], p=1.0)  # a gain per image: the gradient through it differs from at it
    losses = Losses.of(NonSaturating(), Energy(), 10.0, 1, "separate", None, augment)
    torch.manual_seed(3)
    loss, _ = losses.discriminator(Energy(), reals, None, fakes, None, 0, Energy())
    torch.manual_seed(3)  # the same draws, in the same order: reals, then fakes
    raw = reals.clone().requires_grad_(True)
    seen_reals = augment(raw)
    seen_fakes = augment(fakes)
    adversarial = NonSaturating().d_loss(Energy()(seen_reals), Energy()(seen_fakes))
    (through,) = torch.autograd.grad(Energy()(seen_reals).sum(), raw)
    r1_through = through.flatten(1).pow(2).sum(1).mean()
    r1_at_seen = (0.2 * seen_reals.detach()).flatten(1).pow(2).sum(1).mean()  # the placement before: at what D saw
    assert float(loss.detach()) == pytest.approx(float(adversarial + 5.0 * r1_through), rel=1e-5)
    assert abs(float(r1_through - r1_at_seen)) > 1e-2 * float(r1_through)  # the test tells the two apart


def test_d_r_t_is_the_mean_sign_of_d_about_its_decision_boundary():
    class Module:
        objective, grad_norms = NonSaturating(), {}

    values = measured(
        Module(), torch.tensor(0.0), torch.tensor(0.0), torch.tensor([2.0, -1.0, 3.0, 0.5]), torch.zeros(4)
    )
    assert float(values["d/r_t"]) == pytest.approx(0.5)
    Module.objective = LeastSquares(fake_label=0.0, real_label=1.0, g_target=1.0)  # boundary halfway, at 0.5
    values = measured(
        Module(), torch.tensor(0.0), torch.tensor(0.0), torch.tensor([0.9, 0.2, 0.6, 0.4]), torch.zeros(4)
    )
    assert float(values["d/r_t"]) == pytest.approx(0.0)


def ada_against_a_memorising_d(train_images: int, steps: int = 300) -> List[float]:
    """ADA's p over D updates where the "fakes" are real images D never trains on: a D that tells the training reals
    from them has memorised the training reals. p after every 50 updates."""
    cfg = to_config(compose(["model=dcgan", "data=fashion_mnist"]))
    images = cfg.data.load(0)
    reals, others = images[:train_images], images[30000:]
    torch.manual_seed(1)
    _, discriminator = cfg.model.build(cfg.data.sample_shape, cfg.data.value_range, False, 0)
    ada = AdaptiveAugment(speed_images=20_000)  # fast: each adjustment moves p by 64 × 4 / 20 000 = 0.0128
    losses = Losses.of(cfg.objective, discriminator, 0.0, 1, "separate", None, ada)
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    trajectory = []
    for step in range(1, steps + 1):
        real, fake = reals[torch.randint(len(reals), (64,))], others[torch.randint(len(others), (64,))]
        loss, scores = losses.discriminator(discriminator, real, None, fake, None, step, discriminator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ada.observe(cfg.objective.real_side(scores.real))
        ada.adjust(step, 64)
        if step % 50 == 0:
            trajectory.append(ada.p)
    return trajectory


def test_ada_raises_p_where_d_memorises_64_images_and_not_where_it_cannot():
    memorising = ada_against_a_memorising_d(64)
    assert max(memorising) >= 4 * 0.0128 and memorising[-1] > 0, memorising  # r_t above 0.6: p up
    unable = ada_against_a_memorising_d(30000)  # 30 000 images, 300 batches: nothing to memorise
    assert max(unable) <= 2 * 0.0128, unable


RUN = ["model=dcgan", "data=fashion_mnist", "callbacks.samples_every_n_steps=0", "callbacks.progress_every_n_steps=0"]


def logged(run_dir: Path, key: str) -> List[Tuple[int, float]]:
    """``key``'s (step, value) pairs in the run's CSV log."""
    return read_series(run_dir / "csv" / "metrics.csv").get(key, [])


def test_a_resumed_ada_run_continues_with_the_p_it_had(tmp_path):
    from gan_lightning.checkpoints.resume import load_safely

    args = [
        *RUN,
        "augment=ada",
        "data.subset=256",
        "trainer.log_every_n_steps=4",
        "callbacks.checkpoint_every_n_steps=8",
    ]
    run_in_process([*args, "trainer.max_steps=8"], tmp_path)
    path = tmp_path / "checkpoints" / "last.ckpt"
    checkpoint = load_safely(path)
    logged_p = [value for _, value in logged(tmp_path, "augment/p")]
    assert checkpoint["gan_lightning"]["augment"]["p"] == pytest.approx(logged_p[-1])
    checkpoint["gan_lightning"]["augment"]["p"] = 0.77  # as if it had trained long enough to reach it
    torch.save(checkpoint, tmp_path / "edited.ckpt")  # beside it, then in its place: the loaded one maps the file
    (tmp_path / "edited.ckpt").replace(path)
    run_in_process([*args, "trainer.max_steps=16"], tmp_path)
    p = dict(logged(tmp_path, "augment/p"))
    step_size = 64 * 4 / 500_000
    assert sorted(p) == [4, 8, 12, 16]
    assert abs(p[12] - 0.77) == pytest.approx(step_size) and abs(p[16] - p[12]) == pytest.approx(step_size)


@pytest.mark.slow
def test_every_image_run_logs_r_t_and_the_held_out_gap_which_grows_when_d_memorises(tmp_path):
    gaps = {}
    for subset in ("64", "null"):
        run_dir = tmp_path / subset
        args = [*RUN, f"data.subset={subset}", "trainer.max_steps=300", "trainer.log_every_n_steps=50",
                "callbacks.d_health_every_n_steps=100", "callbacks.checkpoint_every_n_steps=0"]  # fmt: skip
        summary = run_in_process(args, run_dir)
        r_t = [value for _, value in logged(run_dir, "d/r_t")]
        assert len(r_t) == 6 and all(-1 <= value <= 1 for value in r_t)
        gap = logged(run_dir, "d/heldout_gap")
        assert [step for step, _ in gap] == [100, 200, 300]
        train, heldout = dict(logged(run_dir, "d/real_train")), dict(logged(run_dir, "d/real_heldout"))
        for step, value in gap:
            assert value == pytest.approx(train[step] - heldout[step]) and 0 <= train[step] <= 1
        gaps[subset] = sum(value for _, value in gap) / 3
        assert summary.get("training_subset") == (
            {"images": 64, "split": "train", "seed": 0} if subset == "64" else None
        )
    assert gaps["64"] > gaps["null"] + 0.04, gaps  # 64 images: D scores them above unseen ones


def test_a_subset_is_a_seeded_choice_of_the_split_and_fid_still_compares_with_the_whole_split():
    def loaded(*overrides):
        return to_config(compose(["data=fashion_mnist", *overrides])).data.load_labelled(0)

    first, again, other = (
        loaded("data.subset=100"),
        loaded("data.subset=100"),
        loaded("data.subset=100", "data.subset_seed=1"),
    )
    assert len(first[0]) == 100 and torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])
    whole = loaded()[0]
    assert all(any(torch.equal(image, candidate) for candidate in whole[::1]) for image in first[0][:3])
    cfg = to_config(compose(["data=fashion_mnist", "metrics=image", "data.subset=100"]))
    full = to_config(compose(["data=fashion_mnist", "metrics=image"]))
    assert cfg.metrics.real_split == full.metrics.real_split == "train"  # the reference: the whole split
    assert cfg.data.labelled_images("train")[0].shape[0] == 60000


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["augment=ada", "data=ring8", "model=mlp"], "augment='ada' is not allowed: none for data that are not images"),
        (["augment=diffaug", "augment.policy=[color,blur]"], "augment.policy=['color', 'blur'] is not allowed: a list of color, translation, cutout"),
        (["augment=ada", "augment.target=1.5"], "augment.target=1.5 is not allowed"),
        (["augment=diffaug", "trainer.cuda_graph=true"], "augment='diffaug' is not allowed: none with trainer.cuda_graph=true"),
        (["data.subset=100", "data.limit=500"], "data.limit=500 is not allowed: null with data.subset"),
        (["data.subset=0"], "data.subset=0 is not allowed"),
        (["data.subset=70000", "metrics=none", "logger=csv"], "data.subset=70000 is not allowed: at most the 60000 images of the train split"),
        (["-m", "augment=diffaug", "hydra/launcher=vectorized", "seed=0,1", "metrics=none", "logger=csv"], "augment=diffaug cannot be trained with vectorized seeds"),
    ],
)  # fmt: skip
def test_settings_that_cannot_combine_are_refused_with_one_message_and_exit_code_2(tmp_path, overrides, message):
    directory = "hydra.sweep.dir" if overrides[0] == "-m" else "hydra.run.dir"
    result = command("run", [*overrides, "trainer.max_steps=2", f"{directory}={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("objective", ["minimax", "nonsaturating", "least_squares", "wasserstein", "wgan_gp", "hinge",
                                       "relativistic"])  # fmt: skip
def test_both_augmentations_train_with_every_objective(tmp_path, objective):
    extra = ["model.d_norm=layer"] if objective == "wgan_gp" else []
    for augment in (["augment=diffaug"], ["augment=ada", "augment.p=0.5"]):
        summary = run_in_process([*RUN, f"objective={objective}", *augment, *extra, "data.subset=256",
                                  "trainer.max_steps=3"], tmp_path / augment[0])  # fmt: skip
        assert summary["status"] == "completed", summary.get("error")
        assert math.isfinite(summary["metrics"]["loss/d"]) and math.isfinite(summary["metrics"]["loss/g"])


@pytest.mark.parametrize("conditional", ["false", "true"])
def test_both_augmentations_train_dcgan_and_its_conditional_form(tmp_path, conditional):
    for augment in (["augment=diffaug"], ["augment=ada", "augment.p=0.5"]):
        summary = run_in_process([*RUN, f"model.conditional={conditional}", *augment, "data.subset=256",
                                  "trainer.max_steps=3"], tmp_path / augment[0])  # fmt: skip
        assert summary["status"] == "completed", summary.get("error")
        assert math.isfinite(summary["metrics"]["loss/d"]) and math.isfinite(summary["metrics"]["loss/g"])


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("augment", [DiffAugment(list(POLICIES)), AdaptiveAugment(p=0.5)], ids=["diffaug", "ada"])
def test_the_resnet_and_its_conditional_form_train_through_the_augmentation(conditional, augment):
    # 32 × 32 colour images, as the ResNet takes them: D's update trains D, and G's gradient reaches every layer of G.
    cfg = to_config(compose(["model=resnet", "data=cifar10", f"model.conditional={str(conditional).lower()}"]))
    torch.manual_seed(0)
    generator, discriminator = cfg.model.build(cfg.data.sample_shape, cfg.data.value_range, False, 10 * conditional)
    labels = torch.randint(10, (8,)) if conditional else None
    losses = Losses.of(cfg.objective, discriminator, 0.0, 1, "separate", None, augment)
    fake = generator(generator.sample_latent(8), labels)
    d_loss, _ = losses.discriminator(discriminator, torch.rand(8, 3, 32, 32) * 2 - 1, labels, fake.detach(), labels,
                                     0, discriminator)  # fmt: skip
    d_loss.backward()
    assert all(p.grad is not None for p in discriminator.parameters() if p.requires_grad)
    g_loss = losses.generator(losses.score(discriminator, None, fake, None, labels), labels)
    g_loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in generator.parameters() if p.requires_grad)


def test_hue_is_rotated_with_probability_p_as_in_the_reference_and_leaves_grey_images_alone():
    # stylegan2-ada's augment.py draws hue with probability p (the 1 - sqrt(1 - p) split is for the two rotations).
    torch.manual_seed(0)
    colour = torch.rand(4000, 3, 4, 4) * 2 - 1
    seen = AdaptiveAugment(["hue"], p=0.3)(colour)
    changed = float(((seen - colour).abs() > 1e-5).flatten(1).any(1).float().mean())
    assert changed == pytest.approx(0.3, abs=0.025)  # 1 - sqrt(0.7) = 0.163 would fail
    grey = torch.rand(500, 1, 4, 4) * 2 - 1
    assert torch.allclose(AdaptiveAugment(["hue"], p=1.0)(grey), grey, atol=1e-6)


def test_geometric_transforms_resample_as_the_reference_does_keeping_detail_and_constant_images():
    # stylegan2-ada pads by reflection, upsamples 2x through the Symlet-6 filter, samples bilinearly and filters back
    # down: under a fractional shift white noise keeps about 0.64 of its variance (its pipeline on this machine: 0.637),
    # where one bilinear sample keeps about 0.45.
    from gan_lightning.augment.ada import resample, rotate, scale, translate

    torch.manual_seed(0)
    noise = torch.randn(64, 1, 64, 64)
    shifted = AdaptiveAugment(["xfrac"], p=1.0)(noise)
    kept = float(shifted[:, :, 8:-8, 8:-8].var() / noise.var())
    assert 0.60 < kept < 0.67
    # a constant image stays that constant under any map (the filter keeps DC; reflection adds nothing new)
    n = 8
    maps = (
        rotate(torch.rand(n) * 6 - 3)
        @ translate(torch.randn(n) * 4, torch.randn(n) * 4)
        @ scale(torch.full((n,), 1.3), torch.full((n,), 0.8))
    )
    flat = torch.full((n, 3, 28, 28), 0.7)
    assert torch.allclose(resample(flat, maps), flat, atol=1e-5)
    # the identity map returns the images (to float32 precision): the filters up and down cancel
    images = torch.rand(4, 3, 28, 28) * 2 - 1
    assert torch.allclose(resample(images, torch.eye(3).repeat(4, 1, 1)), images, atol=1e-5)


def test_the_fast_resampling_filters_equal_zero_insertion_and_convolution_and_unmoved_images_stay_exact():
    # upfirdn2d by its definition: insert zeros, pad, convolve with the filter per axis, keep every down-th pixel.
    from gan_lightning.augment.ada import SYM6, downsample_2x, resample, rotate, translate, upsample_2x

    def upfirdn(x, taps, up, down, pad0, pad1):
        n, c, h, w = x.shape
        if up > 1:
            zeros = torch.zeros(n, c, h * up, w * up)
            zeros[:, :, ::up, ::up] = x
            x = zeros
        x = torch.nn.functional.pad(x, [max(pad0, 0), max(pad1, 0)] * 2)
        x = x[:, :, max(-pad0, 0) : x.shape[2] - max(-pad1, 0), max(-pad0, 0) : x.shape[3] - max(-pad1, 0)]
        kernel = taps.flip(0)[None, None].repeat(c, 1, 1)  # a true convolution
        x = torch.nn.functional.conv2d(x, kernel.unsqueeze(2), groups=c)
        return torch.nn.functional.conv2d(x, kernel.unsqueeze(3), groups=c)[:, :, ::down, ::down]

    torch.manual_seed(0)
    taps = torch.tensor(SYM6) / sum(SYM6)
    images = torch.rand(5, 3, 13, 13) * 2 - 1
    up = upsample_2x(images, taps)
    assert up.shape == (5, 3, 26, 26)
    assert torch.allclose(up, upfirdn(images, taps * 2, 2, 1, 6, 5), atol=1e-6)
    wide = torch.rand(5, 3, 40, 40) * 2 - 1
    assert torch.allclose(downsample_2x(wide, taps, crop=1), upfirdn(wide, taps.flip(0), 1, 2, -1, -1), atol=1e-6)
    # In a batch, an image whose map is the identity comes back as it was, and the others as if resampled alone.
    maps = rotate(torch.tensor([0.0, 0.7, 0.0, -2.0])) @ translate(torch.tensor([0.0, 3.5, 0.0, 1.0]), torch.zeros(4))
    batch = torch.rand(4, 3, 16, 16) * 2 - 1
    out = resample(batch, maps)
    assert torch.equal(out[[0, 2]], batch[[0, 2]])
    assert torch.allclose(out[1:2], resample(batch[1:2], maps[1:2]), atol=1e-5)  # other padding: float rounding
    assert (out[1] - batch[1]).abs().max() > 0.1

"""How soon a model's reconstructions read as digits: the measure behind the Train page's first latent size.

    python -m benchmarks.recognisable --latent 2,8 --steps 50,100,150,200,250,300,400 --seeds 0,1

A logistic regression fitted to 10,000 training images labels the mean reconstructions (decoder of q's mean)
of 1,000 test images; in brackets, how many of the eight that the Train page draws (one z ~ q(z|x) each, from
a binarised copy, as the page does) it labels right. Its accuracy, beside its accuracy on the test images
themselves and on the reconstructions of the shipped models of the same latent sizes (trained 5,000 steps),
says how recognisable they are after each number of steps of the Train page's defaults (VAE, mlp, batch 128,
one thread).
Steps, not seconds, are compared, so the figures hold on a busy machine; the milliseconds per step are
printed too (read them on a quiet one).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from tqdm import tqdm

from iwavb.app.views import display_points, reconstructions
from iwavb.core.model import LatentVariableModel, eval_mode
from iwavb.data.loading import load_dataset
from iwavb.data.splits import DataSplits
from iwavb.settings import pretrained_dir
from iwavb.training.checkpoint import load_checkpoint
from iwavb.training.config import TrainConfig
from iwavb.training.trainer import Trainer

CLASSIFIER_IMAGES, TEST_IMAGES = 10_000, 1_000
PREVIEW_IMAGES = 8  # the test images the Train page draws with their reconstructions (pages/parts/live.py)


def numbers(text: str) -> list[int]:
    """'2,8' -> [2, 8]: whole numbers (TrainConfig checks each for its setting), else a message naming the text."""
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}")
    return values


def reconstruction_accuracy(
    model: LatentVariableModel, images: torch.Tensor, labels: np.ndarray, classifier: LogisticRegression
) -> float:
    """The classifier's accuracy on a VAE's mean reconstructions sigmoid(decoder(mean of q(z|x)))."""
    with eval_mode(model), torch.no_grad():
        mean, _ = model.encoder(images)
        return float(classifier.score(model.decode_mean(mean).numpy(), labels))


def shown_right(model: LatentVariableModel, data: DataSplits, classifier: LogisticRegression) -> int:
    """How many of the Train page's own pictures (its PREVIEW_IMAGES test images and their reconstructions, as
    iwavb.app.views draws them) the classifier labels as the digit they reconstruct."""
    images, labels = display_points(data, PREVIEW_IMAGES)
    _, drawn = reconstructions(model, images)
    return int((classifier.predict(drawn) == labels.numpy()).sum())


def trained_curve(
    data: DataSplits, latent: int, seed: int, checks: list[int], score: Callable[[LatentVariableModel], str]
) -> tuple[list[str], float]:
    """The score after each number of steps in `checks`, and the mean milliseconds of a step."""
    config = TrainConfig.for_method("vae", dataset="mnist", latent_dim=latent, steps=max(checks), seed=seed)
    trainer = Trainer(config, data=data)
    accuracies, spent = [], 0.0
    for step in range(1, max(checks) + 1):
        start = time.perf_counter()
        trainer.train_step()
        spent += time.perf_counter() - start
        if step in checks:
            accuracies.append(score(trainer.model))
    return accuracies, 1000 * spent / max(checks)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latent", type=numbers, default=[2, 8], help="latent sizes, e.g. 2,8")
    parser.add_argument("--steps", type=numbers, default=[50, 100, 150, 200, 250, 300, 400])
    parser.add_argument("--seeds", type=numbers, default=[0, 1])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the app's default
    data = load_dataset("mnist")
    train_x = data.train.images[:CLASSIFIER_IMAGES].float().numpy() / 255
    classifier = LogisticRegression(max_iter=300).fit(train_x, data.train.labels[:CLASSIFIER_IMAGES].numpy())
    images = data.test.images[:TEST_IMAGES].float() / 255
    labels = data.test.labels[:TEST_IMAGES].numpy()

    def score(model: LatentVariableModel) -> str:
        shown = shown_right(model, data, classifier)
        return f"{reconstruction_accuracy(model, images, labels, classifier):.2f} ({shown}/{PREVIEW_IMAGES})"

    print(f"classifier on the {TEST_IMAGES:,} test images themselves: {classifier.score(images.numpy(), labels):.3f}")
    print(f"\n| l | seed | {' | '.join(f'{s} steps' for s in args.steps)} | shipped (5,000 steps) | ms/step |")
    print("|---" * (len(args.steps) + 4) + "|")
    for latent in args.latent:
        path = pretrained_dir() / f"mnist-l{latent}-vae.safetensors"  # shipped for l = 2 and 8
        shipped = score(load_checkpoint(path).build_model()) if path.exists() else "none shipped"
        for seed in tqdm(args.seeds, desc=f"l = {latent}", leave=False):
            accuracies, ms = trained_curve(data, latent, seed, args.steps, score)
            tqdm.write(f"| {latent} | {seed} | {' | '.join(accuracies)} | {shipped} | {ms:.1f} |")


if __name__ == "__main__":
    main()

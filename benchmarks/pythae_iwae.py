"""pythae's IWAE on this project's MLP and batches, timed by the same code (`measure`); run by `train_speed`.

Runs only in the benchmark's own venv (pythae is never a dependency of the project):

    python -m venv --system-site-packages .cache/bench-venv
    .cache/bench-venv/bin/pip install pythae==0.1.2
    .cache/bench-venv/bin/python -m benchmarks.pythae_iwae --k 1,5,10      # prints one JSON line

What is timed is pythae's model (its forward pass and its IWAE loss) with the networks of this project's
Gaussian q and decoder, the same in-memory batches and the same fused Adam: pythae's own trainer
(DataLoader, callbacks) is left out, so the comparison is of the two implementations of the bound.
pythae's BCE wants probabilities, so its decoder ends in a sigmoid.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import torch
from pythae.models import IWAE, IWAEConfig
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder

from iwavb.core.config import ModelConfig
from iwavb.core.nets import GaussianEncoder, decoder
from iwavb.data.splits import BatchSampler, binarize
from iwavb.training.config import TrainConfig
from iwavb.training.device import configure_cpu_threads, resolve_device

from .measure import Step, measure
from .workload import add_workload_arguments, benchmark_data, parse_k_list


class Encoder(BaseEncoder):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.net = GaussianEncoder(config)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        mean, log_var = self.net(x)
        return ModelOutput(embedding=mean, log_covariance=log_var)


class Decoder(BaseDecoder):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.net = decoder(config)

    def forward(self, z: torch.Tensor) -> ModelOutput:
        return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))


def pythae_step(config: TrainConfig, images: torch.Tensor, device: torch.device) -> Step:
    """pythae's IWAE for `config` and its training step on dynamically binarised batches of `images`."""
    torch.manual_seed(config.seed)
    model_config = config.model_config()
    iwae_config = IWAEConfig(
        input_dim=(config.data_dim,), latent_dim=config.latent_dim, number_samples=config.k, reconstruction_loss="bce"
    )
    model = IWAE(iwae_config, encoder=Encoder(model_config), decoder=Decoder(model_config)).to(device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.learning_rates()[0], betas=(config.beta1, 0.999), fused=True
    )
    generator = torch.Generator(device).manual_seed(config.seed)
    sampler = BatchSampler(len(images), config.batch_size, generator)

    def step() -> torch.Tensor:
        x = binarize(images[sampler.next_indices()], generator)  # (B, D)
        loss = model({"data": x}).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Time pythae's IWAE on this project's MLP (one JSON line out).")
    add_workload_arguments(p)
    p.add_argument("--k", type=parse_k_list, default=(1, 5, 10), help="importance samples, e.g. 1,5,10")
    args = p.parse_args(argv)
    configure_cpu_threads(args.threads)
    device = resolve_device(args.device)
    data, _ = benchmark_data(args.data, args.data_root)
    images = data.train.images.to(device)
    results = []
    for k in args.k:
        config = TrainConfig.for_method(
            "vae" if k == 1 else "iwae",
            k=k,
            dataset=args.data,
            latent_dim=args.latent,
            hidden=args.hidden,
            batch_size=args.batch,
            device=str(device),
        )
        step = pythae_step(config, images, device)
        results.append({"k": k, **dataclasses.asdict(measure(step, device, args.seconds))})
    print(json.dumps({"rows": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The conv family is AVB's networks layer for layer (docs/background.md, "AVB's networks"), not only shape for
shape: a channel count, a kernel, a stride or a padding that differs from AVB's would still map 784 pixels
to 784 logits, so each layer is compared with the architecture as the AVB authors' code builds it."""

import math

import pytest
import torch
from torch import nn

from iwavb.core.config import ModelConfig
from iwavb.core.model import LatentVariableModel
from iwavb.core.nets import BasisNets, ConvDecoder, ConvFeatures

LATENT = 8


def layers(module: nn.Module) -> list[tuple]:
    """Each layer of `module`, in the order it is built, as what defines it (a conv: in, out, kernel, stride,
    padding; a transposed conv also its output padding; a dense layer: in, out; an activation: its name)."""
    described = []
    for layer in module.modules():
        if isinstance(layer, nn.ConvTranspose2d):
            described.append(
                (
                    "deconv",
                    layer.in_channels,
                    layer.out_channels,
                    *layer.kernel_size,
                    *layer.stride,
                    *layer.padding,
                    *layer.output_padding,
                )
            )
        elif isinstance(layer, nn.Conv2d):
            described.append(
                ("conv", layer.in_channels, layer.out_channels, *layer.kernel_size, *layer.stride, *layer.padding)
            )
        elif isinstance(layer, nn.BatchNorm2d):
            described.append(("batchnorm", layer.num_features))
        elif isinstance(layer, nn.Linear):
            described.append(("dense", layer.in_features, layer.out_features))
        elif isinstance(layer, (nn.ELU, nn.LeakyReLU)):
            described.append((type(layer).__name__,))
    return described


def conv(c_in: int, c_out: int, stride: int) -> list[tuple]:
    """AVB's encoder block: a 5x5 convolution with 'same' padding, batch norm, ELU."""
    return [("conv", c_in, c_out, 5, 5, stride, stride, 2, 2), ("batchnorm", c_out), ("ELU",)]


def deconv(c_in: int, c_out: int, stride: int) -> list[tuple]:
    """AVB's decoder block: a 5x5 transposed convolution that multiplies the size by its stride, batch norm, ELU."""
    return [("deconv", c_in, c_out, 5, 5, stride, stride, 2, 2, stride - 1, stride - 1), ("batchnorm", c_out), ("ELU",)]


# x in [-1, 1] -> 5x5 convs of 64 (stride 1), 128 (1), 256 (2), 512 (2) channels -> dense 512 with ELU
AVB_FEATURES = [
    *conv(1, 64, 1),
    *conv(64, 128, 1),
    *conv(128, 256, 2),
    *conv(256, 512, 2),
    ("dense", 7 * 7 * 512, 512),
    ("ELU",),
]
# z -> dense 7*7*512 with ELU -> transposed 5x5 convs to 256 (stride 2), 128 (2), 64 (1) -> one channel of logits
AVB_DECODER = [
    ("dense", LATENT, 7 * 7 * 512),
    ("ELU",),
    *deconv(512, 256, 2),
    *deconv(256, 128, 2),
    *deconv(128, 64, 1),
    ("conv", 64, 1, 5, 5, 1, 1, 2, 2),
]


def three_layers(n_in: int) -> list[tuple]:
    """One of the adversary's two inputs: three fully connected layers of 1,024 leaky-ReLU units."""
    return [
        ("dense", n_in, 1024),
        ("LeakyReLU",),
        ("dense", 1024, 1024),
        ("LeakyReLU",),
        ("dense", 1024, 1024),
        ("LeakyReLU",),
    ]


# T = <theta(x), s(z)> + Tx(x) + Tz(z) + |z|^2 / 2, theta and s of 8,192 features each
AVB_ADVERSARY = [
    *three_layers(784),
    *three_layers(LATENT),
    ("dense", 1024, 8192),
    ("dense", 1024, 1),
    ("dense", 1024, 8192),
    ("dense", 1024, 1),
]


def conv_model(kind: str, hidden: int = 300) -> LatentVariableModel:
    """A conv model of a Gaussian, an implicit or an adaptive-contrast q (built in each test, not in a shared
    fixture: mutmut runs for each mutant only the tests that called the mutated code while they ran)."""
    torch.manual_seed(0)
    q = "gaussian" if kind == "gaussian" else "implicit"
    contrast = "adaptive" if kind == "adaptive" else "none"
    return LatentVariableModel(ModelConfig(latent_dim=LATENT, q=q, family="conv", hidden=hidden, contrast=contrast))


def test_the_conv_encoders_and_decoder_are_avbs_layer_for_layer():
    gaussian, implicit, adaptive = (conv_model(kind) for kind in ("gaussian", "implicit", "adaptive"))
    # Gaussian q: AVB's features, then mean and log-variance
    assert layers(gaussian.encoder) == [*AVB_FEATURES, ("dense", 512, 2 * LATENT)]
    # implicit q: the features and the noise (32) through one hidden layer of 512 ELUs to z
    assert layers(implicit.encoder) == [*AVB_FEATURES, ("dense", 512 + 32, 512), ("ELU",), ("dense", 512, LATENT)]
    # adaptive contrast: z0 and the coefficients of 16 basis vectors from the features
    assert layers(adaptive.encoder) == [*AVB_FEATURES, ("dense", 512, LATENT), ("dense", 512, 16 * LATENT)]
    for model in (gaussian, implicit, adaptive):
        assert layers(model.decoder) == AVB_DECODER


def test_the_conv_adversary_is_avbs():
    for kind in ("implicit", "adaptive"):
        assert layers(conv_model(kind).discriminator) == AVB_ADVERSARY
    assert conv_model("gaussian").discriminator is None


@pytest.mark.parametrize("family, hidden, width", [("conv", 64, 128), ("mlp", 64, 64), ("mlp", 300, 128)])
def test_adaptive_contrasts_basis_vectors_are_three_elu_layers_of_their_own_noise(family, hidden, width):
    """AVB's basis vectors have 128 units per layer (the conv family, whatever `hidden` says); the mlp family
    narrows them to its own width where that is smaller (the toy: 64)."""
    torch.manual_seed(0)
    config = ModelConfig(latent_dim=LATENT, family=family, hidden=hidden, contrast="adaptive")
    basis = LatentVariableModel(config).encoder.basis
    assert isinstance(basis, BasisNets)
    sizes = [(32, width), (width, width), (width, width), (width, LATENT)]
    assert [tuple(w.shape) for w in basis.weights] == [(16, *size) for size in sizes]
    assert [tuple(b.shape) for b in basis.biases] == [(16, 1, size[1]) for size in sizes]
    # each v_i is its own MLP: v = W3 elu(W2 elu(W1 elu(W0 e + b0) + b1) + b2) + b3, basis vector by basis vector
    e = torch.randn(16, 5, 32)
    expected = e
    for i, (w, b) in enumerate(zip(basis.weights, basis.biases)):
        expected = expected @ w + b
        if i < 3:
            expected = nn.functional.elu(expected)
    torch.testing.assert_close(basis(e), expected)


def test_basis_weights_start_as_nn_linears_do():
    """Uniform on +-1/sqrt(fan-in), each layer's weights and biases: tens of thousands of draws reach within a
    few percent of both ends."""
    torch.manual_seed(0)
    basis = BasisNets(16, 32, LATENT)
    for w, b in zip(basis.weights, basis.biases):
        bound = 1 / math.sqrt(w.shape[1])
        for tensor in (w, b):
            assert tensor.abs().max() <= bound
            assert tensor.max() > 0.9 * bound and tensor.min() < -0.9 * bound, (tuple(tensor.shape), bound)


def test_the_conv_stack_sees_pixels_in_minus_one_to_one_and_the_sizes_avb_gives():
    torch.manual_seed(0)
    features, decoder = ConvFeatures(), ConvDecoder(LATENT)
    seen: dict[str, torch.Tensor] = {}
    features.convs[0].register_forward_pre_hook(lambda _, inputs: seen.setdefault("input", inputs[0]))
    features.convs.register_forward_hook(lambda *args: seen.setdefault("features", args[2]))
    decoder.deconvs.register_forward_pre_hook(lambda _, inputs: seen.setdefault("dense", inputs[0]))
    decoder.deconvs.register_forward_hook(lambda *args: seen.setdefault("deconvs", args[2]))
    x = torch.rand(3, 784)
    assert features(x).shape == (3, 512)
    torch.testing.assert_close(seen["input"], x.view(3, 1, 28, 28) * 2 - 1)
    assert seen["features"].shape == (3, 512, 7, 7)
    assert decoder(torch.randn(3, LATENT)).shape == (3, 784)
    assert seen["dense"].shape == (3, 512, 7, 7)
    assert seen["deconvs"].shape == (3, 64, 28, 28)


SMALL = {"data_dim": 784, "latent_dim": 3, "hidden": 16, "noise_dim": 4}


def test_a_gaussian_q_draws_mean_plus_std_times_its_generators_noise_and_knows_their_density():
    torch.manual_seed(0)
    encoder = LatentVariableModel(ModelConfig(q="gaussian", **SMALL)).encoder
    x = torch.rand(5, 784).round()
    sample = encoder.sample(x, 7, torch.Generator().manual_seed(1))
    mean, log_var = encoder(x)
    eps = torch.randn(5, 7, 3, generator=torch.Generator().manual_seed(1))  # (2.6): the same draws
    std = torch.exp(0.5 * log_var).unsqueeze(1)
    torch.testing.assert_close(sample.z, mean.unsqueeze(1) + std * eps)
    log_q = torch.distributions.Normal(mean.unsqueeze(1), std).log_prob(sample.z).sum(-1)
    torch.testing.assert_close(sample.log_q, log_q)


def test_adaptive_contrasts_moments_are_the_draws_population_moments():
    """AVB's code takes the basis vectors' moments with tf.nn.moments: the population variance (divided by N,
    not N - 1), over this call's draws of each v_i."""
    torch.manual_seed(0)
    encoder = LatentVariableModel(ModelConfig(contrast="adaptive", **SMALL)).encoder
    x = torch.rand(2, 784).round()
    sample = encoder.sample(x, 3, torch.Generator().manual_seed(1))
    n, draws = encoder.n_basis, 128  # 2 x 3 draws < MOMENT_DRAWS: 128 draws of each v_i
    v = encoder.basis(torch.randn(n, draws, 4, generator=torch.Generator().manual_seed(1)))  # (n, draws, l)
    feats = encoder.features(x)
    a = nn.functional.elu(encoder.coefficients(feats).view(2, n, 3) - 5.0) + 1.0
    mean = encoder.z0(feats) + (a * v.mean(1)).sum(1)
    var = (a.pow(2) * v.var(1, correction=0)).sum(1)
    assert sample.moments is not None
    torch.testing.assert_close(sample.moments.mean, mean.detach())
    torch.testing.assert_close(sample.moments.var, var.detach(), atol=0, rtol=1e-4)  # a^2 ~ 1e-5 at first
    z = encoder.z0(feats).unsqueeze(1) + (a.unsqueeze(1) * v[:, :6].reshape(n, 2, 3, 3).permute(1, 2, 0, 3)).sum(2)
    torch.testing.assert_close(sample.z, z)


def test_t_computed_once_per_x_is_avbs_t():
    """T = <theta(x), s(z)> + Tx(x) + Tz(z) + |z|^2 / 2, computed as written, equals the folded form the
    discriminator uses (x's part once per x)."""
    torch.manual_seed(0)
    t = LatentVariableModel(ModelConfig(**SMALL)).discriminator
    with torch.no_grad():
        for layer in (t.s, t.t_z, t.t_x):
            layer.bias.normal_()  # biases well away from zero: each one's sign counts
    x, z = torch.rand(4, 784).round(), torch.randn(4, 6, 3)
    hx, hz = t.x_net(x), t.z_net(z)  # (B, H), (B, K, H)
    written = (
        torch.einsum("bw,bkw->bk", t.theta(hx), t.s(hz)) + t.t_x(hx) + t.t_z(hz).squeeze(-1) + 0.5 * z.pow(2).sum(-1)
    )
    torch.testing.assert_close(t(x, z), written)


def test_an_implicit_q_is_its_head_on_the_features_and_its_generators_noise():
    """z = f(x, e), e ~ N(0, I) (2.12): the head on [features(x), e], computed by the encoder with x's part once."""
    torch.manual_seed(0)
    encoder = LatentVariableModel(ModelConfig(**SMALL)).encoder
    x = torch.rand(5, 784).round()
    z = encoder.sample(x, 7, torch.Generator().manual_seed(1)).z
    e = torch.randn(5, 7, 4, generator=torch.Generator().manual_seed(1))
    features = encoder.features(x).unsqueeze(1).expand(5, 7, -1)
    torch.testing.assert_close(z, encoder.head(torch.cat([features, e], dim=-1)))

"""The conv family is AVB's networks layer for layer (docs/background.md, "AVB's networks"), not only shape for
shape: a channel count, a kernel, a stride or a padding that differs from AVB's would still map 784 pixels
to 784 logits, so each layer is compared with the architecture as the AVB authors' code builds it."""

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


@pytest.fixture(scope="module")
def conv_models() -> dict[str, LatentVariableModel]:
    """A conv model of each kind of q (built once: the adversary alone has 17 million weights)."""
    torch.manual_seed(0)
    return {
        "gaussian": LatentVariableModel(ModelConfig(latent_dim=LATENT, q="gaussian", family="conv")),
        "implicit": LatentVariableModel(ModelConfig(latent_dim=LATENT, q="implicit", family="conv")),
        "adaptive": LatentVariableModel(
            ModelConfig(latent_dim=LATENT, q="implicit", family="conv", contrast="adaptive")
        ),
    }


def test_the_conv_encoders_and_decoder_are_avbs_layer_for_layer(conv_models):
    # Gaussian q: AVB's features, then mean and log-variance
    assert layers(conv_models["gaussian"].encoder) == [*AVB_FEATURES, ("dense", 512, 2 * LATENT)]
    # implicit q: the features and the noise (32) through one hidden layer of 512 ELUs to z
    assert layers(conv_models["implicit"].encoder) == [
        *AVB_FEATURES,
        ("dense", 512 + 32, 512),
        ("ELU",),
        ("dense", 512, LATENT),
    ]
    # adaptive contrast: z0 and the coefficients of 16 basis vectors from the features
    assert layers(conv_models["adaptive"].encoder) == [
        *AVB_FEATURES,
        ("dense", 512, LATENT),
        ("dense", 512, 16 * LATENT),
    ]
    for model in conv_models.values():
        assert layers(model.decoder) == AVB_DECODER


def test_the_conv_adversary_is_avbs(conv_models):
    for kind in ("implicit", "adaptive"):
        assert layers(conv_models[kind].discriminator) == AVB_ADVERSARY
    assert conv_models["gaussian"].discriminator is None


def test_adaptive_contrasts_basis_vectors_are_three_128_unit_elu_layers_of_their_own_noise(conv_models):
    basis = conv_models["adaptive"].encoder.basis
    assert isinstance(basis, BasisNets)
    sizes = [(32, 128), (128, 128), (128, 128), (128, LATENT)]
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

"""The binary networks of the Bi-Real Net, ReActNet and BiBench papers, written as their public PyTorch
code writes them, with random weights, exported to ONNX for lowbit's deployment benchmarks
(`npm run bench -- deploy`) and tests (test/bnn-zoo.test.ts).

    /usr/bin/python3 tools/bnn_zoo.py --out DIR [--nets a,b] [--batch-norm-stats] [--small] [--seed N]

For each network NAME it writes, into DIR:
- NAME.onnx: the straight-through form, as the public code exports it in eval mode;
- NAME.plain.onnx: the same weights with a plain sign, Where(x >= 0, 1, -1), on the activations and
  pre-binarized weights (onnxruntime's best case: no dead straight-through branch to compute);
- NAME.json: input shape, binary and float MACs per image, layer counts, file sizes, options.
PyTorch 1.13 (Debian's python3-torch, so /usr/bin/python3), opset 13, input `input` [N, 3, H, W],
output `logits` [N, classes], dynamic batch axis N, CPU only.

Networks (binary = sign activations and +-a or +-1 weights; float = full precision):
- bireal18: Bi-Real Net-18 (liuzechun/Bi-Real-net, pytorch_implementation/BiReal18_34/birealnet.py),
  224x224. ApproxSign activation and HardBinaryConv (`scale * sign(W)` with the detach trick) verbatim;
  one shortcut per binary 3x3 conv (out = bn(bconv(sign(x))) + x); downsample shortcut
  AvgPool2d(2) -> 1x1 conv -> BN; float stem (7x7/2 conv + BN + maxpool) and fc.
- reactnet18: ReActNet's ResNet-18 variant (liuzechun/ReActNet, resnet/2_step2/birealnet.py), 224x224:
  the Bi-Real skeleton with RSign (LearnableBias, then sign) and RPReLU (LearnableBias, PReLU per
  channel, LearnableBias) in every block. Its eval path is the public code's: torch.sign on the
  activations, sign(W) in the conv and the per-channel scale multiplied after it.
- resnet18, resnet34: BiBench-style binary ResNets (htqin/BiBench, bibench/models/backbones/resnet.py
  with layers/bnn.py's BNNConv2d), 224x224: plain BasicBlocks (conv1 -> bn1 -> Hardtanh -> conv2 -> bn2
  -> + identity -> Hardtanh), every 3x3 conv binary with the straight-through sign
  `sign(x).detach() - clamp(x).detach() + clamp(x)` on its input and +-1 weights (the same trick on W);
  float stem (7x7/2 conv + BN + Hardtanh + maxpool), downsample (strided 1x1 conv + BN) and fc.
- resnet20: CIFAR ResNet-20 with Bi-Real blocks, 32x32: 3x3 float stem 3 -> 16 + BN (no maxpool), 18
  binary 3x3 convs of 16/32/64 channels each with its shortcut, Bi-Real downsample, float fc.
- vggsmall: VGG-Small (as in LQ-Nets / IR-Net; BiBench's backbones/vgg_cifar.py), 32x32: conv 128-128,
  maxpool, 256-256, maxpool, 512-512, maxpool (each conv -> [maxpool] -> BN -> Hardtanh), fc 8192 -> 10;
  binary (BNNConv2d) except the first conv and the fc.

Random weights (seeded). Batch norms get gamma in [0.5, 1.5] and beta in [-0.5, 0.5]; their running
statistics are drawn around the variance a conv of these weights gives on unit-variance inputs, or
with --batch-norm-stats measured: 2 batches of 8 random normal images through the network in train
mode with a cumulative average (momentum None), which sets each running mean and variance to what the
layer really sees. --small makes reduced variants for tests: 1/4 width at 64x64 for the ImageNet
networks, 1/4 width for VGG-Small, ResNet-20 as it is; each exports in a few seconds.
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP workers crawl on a shared machine

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

_PLUS_ONE = torch.tensor(1.0)
_MINUS_ONE = torch.tensor(-1.0)


def where_sign(x):
    """The plain sign: +1 where x >= 0, else -1. Float32 0-d tensors, not Python floats: torch 1.13
    exports Python floats in Where as double constants, which onnxruntime rejects."""
    return torch.where(x >= 0, _PLUS_ONE.to(x.dtype), _MINUS_ONE.to(x.dtype))


class Binary(nn.Module):
    """Base of the binarizing modules: `plain` switches the module to the plain-sign export form, in
    which a binary conv reads its binarized weights from the buffer `binarized` (an initializer)."""

    plain = False


def set_plain(model, plain):
    for m in model.modules():
        if isinstance(m, Binary):
            m.plain = plain
            if plain and hasattr(m, "effective_weight"):
                with torch.no_grad():
                    m.register_buffer("binarized", m.effective_weight().clone(), persistent=False)


# ---------------------------------------------------------------- Bi-Real Net (liuzechun/Bi-Real-net)


class BinaryActivation(Binary):
    """ApproxSign, verbatim from Bi-Real Net's birealnet.py."""

    def forward(self, x):
        if self.plain:
            return where_sign(x)
        out_forward = torch.sign(x)
        mask1 = x < -1
        mask2 = x < 0
        mask3 = x < 1
        out1 = (-1) * mask1.type(torch.float32) + (x * x + 2 * x) * (1 - mask1.type(torch.float32))
        out2 = out1 * mask2.type(torch.float32) + (-x * x + 2 * x) * (1 - mask2.type(torch.float32))
        out3 = out2 * mask3.type(torch.float32) + 1 * (1 - mask3.type(torch.float32))
        out = out_forward.detach() - out3.detach() + out3
        return out


class HardBinaryConv(Binary):
    """Bi-Real Net's HardBinaryConv: weights `scaling_factor * sign(W)` with the detach trick. The latent
    weights are drawn from randn rather than the code's `rand * 0.001`, whose signs are all +1."""

    binary = True

    def __init__(self, in_chn, out_chn, kernel_size=3, stride=1, padding=1):
        super().__init__()
        self.stride = stride
        self.padding = padding
        self.number_of_weights = in_chn * out_chn * kernel_size * kernel_size
        self.shape = (out_chn, in_chn, kernel_size, kernel_size)
        self.weights = nn.Parameter(torch.randn((self.number_of_weights, 1)) * 0.01, requires_grad=True)

    def scale(self):
        real_weights = self.weights.view(self.shape)
        return torch.mean(
            torch.mean(torch.mean(abs(real_weights), dim=3, keepdim=True), dim=2, keepdim=True), dim=1, keepdim=True
        )

    def effective_weight(self):
        return self.scale() * where_sign(self.weights.view(self.shape))

    def forward(self, x):
        if self.plain:
            return F.conv2d(x, self.binarized, stride=self.stride, padding=self.padding)
        real_weights = self.weights.view(self.shape)
        scaling_factor = self.scale()
        scaling_factor = scaling_factor.detach()
        binary_weights_no_grad = scaling_factor * torch.sign(real_weights)
        cliped_weights = torch.clamp(real_weights, -1.0, 1.0)
        binary_weights = binary_weights_no_grad.detach() - cliped_weights.detach() + cliped_weights
        y = F.conv2d(x, binary_weights, stride=self.stride, padding=self.padding)
        return y


class BiRealBlock(nn.Module):
    """Bi-Real Net's BasicBlock: one binary conv with its own shortcut."""

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.binary_activation = BinaryActivation()
        self.binary_conv = HardBinaryConv(inplanes, planes, stride=stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        residual = x
        out = self.binary_activation(x)
        out = self.binary_conv(out)
        out = self.bn1(out)
        if self.downsample is not None:
            residual = self.downsample(x)
        out += residual
        return out


# ---------------------------------------------------------------- ReActNet (liuzechun/ReActNet, resnet/2_step2)


class ReActActivation(Binary):
    """ReActNet's BinaryActivation: ApproxSign in training, torch.sign in eval (what it exports)."""

    def forward(self, x):
        if self.plain:
            return where_sign(x)
        out_forward = torch.sign(x)
        if self.training:
            mask1 = x < -1
            mask2 = x < 0
            mask3 = x < 1
            out1 = (-1) * mask1.type(torch.float32) + (x * x + 2 * x) * (1 - mask1.type(torch.float32))
            out2 = out1 * mask2.type(torch.float32) + (-x * x + 2 * x) * (1 - mask2.type(torch.float32))
            out3 = out2 * mask3.type(torch.float32) + 1 * (1 - mask3.type(torch.float32))
            out = out_forward.detach() - out3.detach() + out3
        else:
            out = out_forward
        return out


class LearnableBias(nn.Module):
    def __init__(self, out_chn):
        super().__init__()
        # the code initialises it to zero; a trained network's biases are not
        self.bias = nn.Parameter(torch.randn(1, out_chn, 1, 1) * 0.1, requires_grad=True)

    def forward(self, x):
        out = x + self.bias.reshape([-1, 1, 1])
        return out


class ReActBinaryConv(Binary):
    """ReActNet's HardBinaryConv: eval computes conv(x, sign(W)) * scale."""

    binary = True

    def __init__(self, in_chn, out_chn, kernel_size=3, stride=1, padding=1):
        super().__init__()
        self.stride = stride
        self.padding = padding
        self.shape = (out_chn, in_chn, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.randn(self.shape) * 0.01, requires_grad=True)

    def scale(self):
        real_weights = self.weight
        return torch.mean(
            torch.mean(torch.mean(abs(real_weights), dim=3, keepdim=True), dim=2, keepdim=True), dim=1, keepdim=True
        )

    def effective_weight(self):
        return self.scale() * where_sign(self.weight)

    def forward(self, x):
        if self.plain:
            return F.conv2d(x, self.binarized, stride=self.stride, padding=self.padding)
        real_weights = self.weight
        scaling_factor = self.scale()
        if self.training:
            scaling_factor = scaling_factor.detach()
            binary_weights_no_grad = scaling_factor * torch.sign(real_weights)
            cliped_weights = torch.clamp(real_weights, -1.0, 1.0)
            binary_weights = binary_weights_no_grad.detach() - cliped_weights.detach() + cliped_weights
        else:
            binary_weights = torch.sign(real_weights)
        y = F.conv2d(x, binary_weights, stride=self.stride, padding=self.padding)
        if not self.training:
            y = y * scaling_factor.reshape([-1, 1, 1])
        return y


class ReActBlock(nn.Module):
    """ReActNet's BasicBlock: RSign (move0 + sign) -> binary conv -> BN -> + shortcut -> RPReLU."""

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.move0 = LearnableBias(inplanes)
        self.binary_activation = ReActActivation()
        self.binary_conv = ReActBinaryConv(inplanes, planes, stride=stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.move1 = LearnableBias(planes)
        self.prelu = nn.PReLU(planes)
        self.move2 = LearnableBias(planes)
        self.downsample = downsample

    def forward(self, x):
        residual = x
        out = self.move0(x)
        out = self.binary_activation(out)
        out = self.binary_conv(out)
        out = self.bn1(out)
        if self.downsample is not None:
            residual = self.downsample(x)
        out += residual
        out = self.move1(out)
        out = self.prelu(out)
        out = self.move2(out)
        return out


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BiRealNet(nn.Module):
    """Bi-Real Net's and ReActNet's BiRealNet: `block` is BiRealBlock or ReActBlock. `cifar`: a 3x3
    stem without maxpool (ResNet-20)."""

    def __init__(self, block, layers, widths, num_classes=1000, cifar=False):
        super().__init__()
        self.inplanes = widths[0]
        if cifar:
            self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(self.inplanes)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(self.inplanes)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layers = nn.Sequential(
            *[self._make_layer(block, w, n, stride=1 if i == 0 else 2) for i, (w, n) in enumerate(zip(widths, layers))]
        )
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1], num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.AvgPool2d(kernel_size=2, stride=stride),
                conv1x1(self.inplanes, planes),
                nn.BatchNorm2d(planes),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.maxpool(x)
        x = self.layers(x)
        x = self.avgpool(x)
        x = x.view(x.size(0), -1)
        x = self.fc(x)
        return x


# ---------------------------------------------------------------- BiBench (htqin/BiBench)


class BNNConv2d(Binary):
    """BiBench's BNNConv2d (layers/bnn.py): straight-through sign of the input (clamp gradient) and +-1
    weights by the same trick, no scale."""

    binary = True

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1):
        super().__init__()
        self.stride = stride
        self.padding = padding
        self.shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.randn(*self.shape) * 0.01, requires_grad=True)

    def effective_weight(self):
        return where_sign(self.weight)

    def forward(self, x):
        if self.plain:
            return F.conv2d(where_sign(x), self.binarized, stride=self.stride, padding=self.padding)
        binary_input_no_grad = torch.sign(x)
        cliped_input = torch.clamp(x, -1.0, 1.0)
        x = binary_input_no_grad.detach() - cliped_input.detach() + cliped_input

        real_weights = self.weight.view(self.shape)
        binary_weights_no_grad = torch.sign(real_weights)
        cliped_weights = torch.clamp(real_weights, -1.0, 1.0)
        binary_weights = binary_weights_no_grad.detach() - cliped_weights.detach() + cliped_weights
        y = F.conv2d(x, binary_weights, stride=self.stride, padding=self.padding)
        return y


class BiBenchBlock(nn.Module):
    """BiBench's BasicBlock with conv_cfg BNN and act_cfg Hardtanh (bireal_cut off)."""

    def __init__(self, in_channels, out_channels, stride=1, downsample=None):
        super().__init__()
        self.conv1 = BNNConv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.norm1 = nn.BatchNorm2d(out_channels)
        self.conv2 = BNNConv2d(out_channels, out_channels, 3, padding=1)
        self.norm2 = nn.BatchNorm2d(out_channels)
        self.activation = nn.Hardtanh(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.norm1(out)
        out = self.activation(out)
        out = self.conv2(out)
        out = self.norm2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.activation(out)
        return out


class BiBenchResNet(nn.Module):
    """BiBench's ResNet (ImageNet stem) + GlobalAveragePooling + linear head: float stem, downsample
    (avg_down False: strided 1x1 conv + BN) and head."""

    def __init__(self, stage_blocks, widths, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.norm1 = nn.BatchNorm2d(widths[0])
        self.activation = nn.Hardtanh(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        layers = []
        in_channels = widths[0]
        for i, (blocks, out_channels) in enumerate(zip(stage_blocks, widths)):
            stride = 1 if i == 0 else 2
            downsample = None
            if stride != 1 or in_channels != out_channels:
                downsample = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(out_channels),
                )
            layers.append(BiBenchBlock(in_channels, out_channels, stride, downsample))
            in_channels = out_channels
            layers.extend(BiBenchBlock(out_channels, out_channels) for _ in range(1, blocks))
        self.layers = nn.Sequential(*layers)
        self.gap = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x):
        x = self.conv1(x)
        x = self.norm1(x)
        x = self.activation(x)
        x = self.maxpool(x)
        x = self.layers(x)
        x = self.gap(x)
        x = x.view(x.size(0), -1)
        return self.fc(x)


class VGGSmall(nn.Module):
    """VGG-Small for CIFAR-10 (LQ-Nets / IR-Net layout): conv -> [maxpool] -> BN -> Hardtanh; the first
    conv and the fc float, the other five convs BNNConv2d."""

    def __init__(self, widths, num_classes=10, image=32):
        super().__init__()
        w = widths
        self.conv0 = nn.Conv2d(3, w[0], kernel_size=3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(w[0])
        self.conv1 = BNNConv2d(w[0], w[1])
        self.bn1 = nn.BatchNorm2d(w[1])
        self.conv2 = BNNConv2d(w[1], w[2])
        self.bn2 = nn.BatchNorm2d(w[2])
        self.conv3 = BNNConv2d(w[2], w[3])
        self.bn3 = nn.BatchNorm2d(w[3])
        self.conv4 = BNNConv2d(w[3], w[4])
        self.bn4 = nn.BatchNorm2d(w[4])
        self.conv5 = BNNConv2d(w[4], w[5])
        self.bn5 = nn.BatchNorm2d(w[5])
        self.pooling = nn.MaxPool2d(kernel_size=2, stride=2)
        self.nonlinear = nn.Hardtanh(inplace=True)
        self.fc = nn.Linear(w[5] * (image // 8) ** 2, num_classes)

    def forward(self, x):
        x = self.nonlinear(self.bn0(self.conv0(x)))
        x = self.nonlinear(self.bn1(self.pooling(self.conv1(x))))
        x = self.nonlinear(self.bn2(self.conv2(x)))
        x = self.nonlinear(self.bn3(self.pooling(self.conv3(x))))
        x = self.nonlinear(self.bn4(self.conv4(x)))
        x = self.nonlinear(self.bn5(self.pooling(self.conv5(x))))
        x = x.view(x.size(0), -1)
        return self.fc(x)


# ---------------------------------------------------------------- the zoo

IMAGENET = [64, 128, 256, 512]

# name -> (description, builder(small) -> (model, image size))
NETS = {
    "bireal18": (
        "Bi-Real Net-18 (ApproxSign, scale * sign(W), a shortcut per binary conv)",
        lambda small: (BiRealNet(BiRealBlock, [4, 4, 4, 4], quarter(IMAGENET, small)), 64 if small else 224),
    ),
    "reactnet18": (
        "ReActNet-18 (ResNet variant: RSign, RPReLU, sign(W) * scale)",
        lambda small: (BiRealNet(ReActBlock, [4, 4, 4, 4], quarter(IMAGENET, small)), 64 if small else 224),
    ),
    "resnet18": (
        "BiBench binary ResNet-18 (BNN sign, +-1 weights, Hardtanh)",
        lambda small: (BiBenchResNet([2, 2, 2, 2], quarter(IMAGENET, small)), 64 if small else 224),
    ),
    "resnet34": (
        "BiBench binary ResNet-34 (BNN sign, +-1 weights, Hardtanh)",
        lambda small: (BiBenchResNet([3, 4, 6, 3], quarter(IMAGENET, small)), 64 if small else 224),
    ),
    "resnet20": (
        "CIFAR ResNet-20 with Bi-Real blocks (16/32/64 channels)",
        lambda small: (BiRealNet(BiRealBlock, [6, 6, 6], [16, 32, 64], num_classes=10, cifar=True), 32),
    ),
    "vggsmall": (
        "VGG-Small (CIFAR, BNN sign, +-1 weights, Hardtanh)",
        lambda small: (VGGSmall(quarter([128, 128, 256, 256, 512, 512], small)), 32),
    ),
}


def quarter(widths, small):
    return [w // 4 for w in widths] if small else list(widths)


def is_binary(m):
    return getattr(m, "binary", False)


def draw_batch_norms(model, generator):
    """gamma, beta and running statistics drawn: the running variance around the variance the
    preceding conv gives on unit-variance inputs (K * mean(w^2)), the mean within half a deviation."""
    last = None
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) or is_binary(m):
                last = m
            elif isinstance(m, nn.BatchNorm2d):
                w = last.effective_weight() if is_binary(last) else last.weight
                var = float(w[0].numel() * (w * w).mean())
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=generator) + 0.5)
                m.bias.copy_(torch.rand(c, generator=generator) - 0.5)
                m.running_mean.copy_((torch.rand(c, generator=generator) - 0.5) * var**0.5)
                m.running_var.copy_((0.5 + 1.5 * torch.rand(c, generator=generator)) * var)


def measure_batch_norms(model, image, generator, batches=2, batch=8):
    """Running statistics of each batch norm from `batches` batches of random normal images in train mode."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(batch, 3, image, image, generator=generator))
    for m in bns:
        m.momentum = 0.1
    model.eval()


def count_macs(model, image):
    """MACs per image of the binary and the float convs / linear layers, and how many of each."""
    counts = {"binary_macs": 0, "float_macs": 0, "binary_layers": 0, "float_layers": 0}

    def hook(kind):
        def record(module, inputs, output):
            if isinstance(module, nn.Linear):
                macs = module.in_features * module.out_features
            else:
                shape = module.shape if is_binary(module) else module.weight.shape
                macs = output[0].numel() * shape[1] * shape[2] * shape[3]  # output[0]: one image
            counts[f"{kind}_macs"] += macs
            counts[f"{kind}_layers"] += 1

        return record

    handles = [
        m.register_forward_hook(hook("binary" if is_binary(m) else "float"))
        for m in model.modules()
        if is_binary(m) or isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    with torch.no_grad():
        model(torch.zeros(1, 3, image, image))
    for h in handles:
        h.remove()
    return counts


def export(model, image, path):
    """ONNX opset 13 with input `input` and output `logits`, batch axis dynamic; `image` is the
    side of a 3-channel square image or the input's [C, H, W]."""
    dummy = torch.zeros(1, *([3, image, image] if isinstance(image, int) else image))
    with torch.no_grad():
        torch.onnx.export(
            model,
            dummy,
            path,
            opset_version=13,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        )


def build(name, args):
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed + 1)
    description, builder = NETS[name]
    model, image = builder(args.small)
    for m in model.modules():
        if isinstance(m, nn.PReLU):
            with torch.no_grad():
                m.weight.uniform_(0.05, 0.3, generator=generator)
        elif is_binary(m):
            # float32 randn draws an exact 0 about once in 10^7 values: torch.sign(0) = 0 would make
            # that layer ternary, and its plain export (where_sign(0) = +1) a different network.
            with torch.no_grad():
                for p in m.parameters():
                    p[p == 0] = 1e-4
    draw_batch_norms(model, generator)
    if args.batch_norm_stats:
        measure_batch_norms(model, image, generator)
    model.eval()
    return description, model, image


def parse_zoo_args(doc, nets, extra=None):
    """The command line of a zoo script (--out, --nets, --small, --seed, --threads, and what `extra`
    adds to the parser): the arguments and the networks asked for; sets torch's threads and makes --out."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--nets", default=",".join(nets), help=f"comma-separated subset of {','.join(nets)}")
    if extra:
        extra(p)
    p.add_argument("--small", action="store_true", help="reduced width / resolution variants for tests")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    names = [n for n in args.nets.split(",") if n]
    unknown = [n for n in names if n not in nets]
    if unknown:
        p.error(f"unknown network(s) {', '.join(unknown)}; known: {', '.join(nets)}")
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    return args, names


def main():
    args, names = parse_zoo_args(
        __doc__,
        NETS,
        lambda p: p.add_argument(
            "--batch-norm-stats", action="store_true", help="measure BN statistics in train mode"
        ),
    )
    for name in names:
        start = time.time()
        description, model, image = build(name, args)
        st, plain = os.path.join(args.out, f"{name}.onnx"), os.path.join(args.out, f"{name}.plain.onnx")
        set_plain(model, False)
        export(model, image, st)
        set_plain(model, True)
        export(model, image, plain)
        info = {
            "name": name,
            "description": description,
            "input": [3, image, image],
            "classes": model.fc.out_features,
            **count_macs(model, image),
            "params": sum(p.numel() for p in model.parameters()),
            "onnx": os.path.basename(st),
            "onnx_bytes": os.path.getsize(st),
            "plain": os.path.basename(plain),
            "plain_bytes": os.path.getsize(plain),
            "small": args.small,
            "batch_norm_stats": args.batch_norm_stats,
            "seed": args.seed,
            "torch": torch.__version__,
        }
        with open(os.path.join(args.out, f"{name}.json"), "w") as f:
            json.dump(info, f, indent=1)
        print(
            f"{name}: {info['binary_layers']} binary convs {info['binary_macs'] / 1e6:.1f} M MACs, "
            f"{info['float_layers']} float layers {info['float_macs'] / 1e6:.1f} M MACs, "
            f"{info['onnx_bytes'] / 1e6:.1f} MB, {time.time() - start:.1f} s",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())

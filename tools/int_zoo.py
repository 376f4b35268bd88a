"""Float networks as torchvision defines them, with random weights, exported to ONNX for lowbit's integer
(W8A8 / W4A8) deployment benchmarks (`npm run bench -- deploy`) and tests (test/int-zoo.test.ts).

    /usr/bin/python3 tools/int_zoo.py --out DIR [--nets a,b] [--small] [--seed N]

For each network NAME it writes, into DIR:
- NAME.onnx: the eval-mode export (PyTorch folds each batch norm into its conv), as users get it;
- NAME.json: input shape, classes, MACs per image, layer counts, file size, options.
PyTorch 1.13 (Debian's python3-torch, so /usr/bin/python3; torchvision is not needed: the
architectures are written out below as torchvision 0.14's resnet.py and mobilenetv2.py define them),
opset 13, input `input` [N, C, H, W], output `logits`, dynamic batch axis N, CPU only.

Networks:
- resnet18: torchvision ResNet-18 (BasicBlock [2, 2, 2, 2], 7x7/2 stem, maxpool, strided 1x1
  downsample + BN, global average pool, fc), 224x224, 1000 classes.
- mobilenetv2: torchvision MobileNetV2 (width 1.0, ReLU6, inverted residuals: 1x1 expand, 3x3
  depthwise, 1x1 project, residual when stride 1 and the widths match; 1280-channel head, dropout,
  fc), 224x224, 1000 classes.
- dwmult: depthwise convs with a channel multiplier (groups = input channels, 2 and 3 outputs per
  input channel; stride 2, padding, ReLU6, a bias), 6 x 17 x 17 input, output the feature map: a
  test network for what torchvision's blocks never use.

Weights: torchvision's initialization (Kaiming normal fan-out for convs, N(0, 0.01) for
MobileNetV2's fc), seeded. Batch norms get gamma in [0.5, 1.5] and beta in [-0.5, 0.5], and their
running statistics are measured: 2 batches of 8 random normal images through the network in train
mode with a cumulative average (momentum None), so that every layer sees activations of a realistic
spread (not the init's mean 0 / variance 1, which ResNet's residual sums would blow up).
--small makes reduced variants for tests: ResNet-18 at 1/4 width (16-128 channels), MobileNetV2 at
width 0.5 with a 320-channel head, both 64x64 with 100 classes; each exports in a few seconds.
"""
import json
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP workers crawl on a shared machine

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from bnn_zoo import export, parse_zoo_args  # noqa: E402  (tools/ is the script's folder)

# ---------------------------------------------------------------- torchvision ResNet-18 (models/resnet.py)


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, layers, widths, num_classes=1000):
        super().__init__()
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(widths[0], layers[0])
        self.layer2 = self._make_layer(widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers.extend(BasicBlock(planes, planes) for _ in range(1, blocks))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


# ---------------------------------------------------------------- torchvision MobileNetV2 (models/mobilenetv2.py)


def make_divisible(v, divisor=8, min_value=None):
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # do not round down by more than 10%
        new_v += divisor
    return new_v


class ConvBNReLU6(nn.Sequential):
    """torchvision's Conv2dNormActivation with BatchNorm2d and ReLU6."""

    def __init__(self, in_planes, out_planes, kernel_size=3, stride=1, groups=1):
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_planes),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(inp, hidden_dim, kernel_size=1))
        layers.extend(
            [
                ConvBNReLU6(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),
                nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
                nn.BatchNorm2d(oup),
            ]
        )
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes=1000, width_mult=1.0, last_channel=1280, dropout=0.2):
        super().__init__()
        setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
        input_channel = make_divisible(32 * width_mult)
        self.last_channel = make_divisible(last_channel * max(1.0, width_mult))
        features = [ConvBNReLU6(3, input_channel, stride=2)]
        for t, c, n, s in setting:
            output_channel = make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, t))
                input_channel = output_channel
        features.append(ConvBNReLU6(input_channel, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        return self.classifier(x)


# ---------------------------------------------------------------- depthwise convs with a channel multiplier


class DepthwiseMultiplier(nn.Module):
    """Two depthwise convs with channel multipliers 3 and 2 (stride 2 with padding, then stride 1)."""

    def __init__(self, channels=6):
        super().__init__()
        self.dw1 = nn.Conv2d(channels, 3 * channels, 3, stride=2, padding=1, groups=channels, bias=True)
        self.bn1 = nn.BatchNorm2d(3 * channels)
        self.relu = nn.ReLU6(inplace=True)
        self.dw2 = nn.Conv2d(3 * channels, 6 * channels, 3, stride=1, padding=1, groups=3 * channels, bias=True)

    def forward(self, x):
        return self.dw2(self.relu(self.bn1(self.dw1(x))))


# ---------------------------------------------------------------- the zoo

# name -> (description, builder(small) -> (model, input shape [C, H, W]))
NETS = {
    "resnet18": (
        "torchvision ResNet-18",
        lambda small: (
            ResNet([2, 2, 2, 2], [16, 32, 64, 128] if small else [64, 128, 256, 512], 100 if small else 1000),
            [3, 64, 64] if small else [3, 224, 224],
        ),
    ),
    "mobilenetv2": (
        "torchvision MobileNetV2 (width 1.0, ReLU6)",
        lambda small: (
            MobileNetV2(100, 0.5, 320) if small else MobileNetV2(),
            [3, 64, 64] if small else [3, 224, 224],
        ),
    ),
    "dwmult": ("depthwise convs with channel multipliers 3 and 2", lambda small: (DepthwiseMultiplier(), [6, 17, 17])),
}


def measure_batch_norms(model, shape, generator, batches=2, batch=8):
    """gamma and beta drawn, running statistics measured on `batches` batches of random normal inputs in
    train mode (cumulative average)."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            c = m.num_features
            m.weight.copy_(torch.rand(c, generator=generator) + 0.5)
            m.bias.copy_(torch.rand(c, generator=generator) - 0.5)
            m.reset_running_stats()
            m.momentum = None
        model.train()
        for _ in range(batches):
            model(torch.randn(batch, *shape, generator=generator))
    for m in bns:
        m.momentum = 0.1
    model.eval()


def count_macs(model, shape):
    """MACs per image of the convs and linear layers, how many of each, and how many are depthwise."""
    counts = {"macs": 0, "convs": 0, "depthwise": 0, "dense": 0}

    def record(module, inputs, output):
        if isinstance(module, nn.Linear):
            counts["macs"] += module.in_features * module.out_features
            counts["dense"] += 1
            return
        w = module.weight.shape
        counts["macs"] += output[0].numel() * w[1] * w[2] * w[3]
        counts["convs"] += 1
        counts["depthwise"] += int(module.groups > 1 and module.groups == module.in_channels)

    handles = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    for h in handles:
        h.remove()
    return counts


def build(name, args):
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed + 1)
    description, builder = NETS[name]
    model, shape = builder(args.small)
    measure_batch_norms(model, shape, generator)
    return description, model, shape


def main():
    args, names = parse_zoo_args(__doc__, NETS)
    for name in names:
        start = time.time()
        description, model, shape = build(name, args)
        path = os.path.join(args.out, f"{name}.onnx")
        export(model, shape, path)
        with torch.no_grad():
            classes = model(torch.zeros(1, *shape)).shape[1:]
        info = {
            "name": name,
            "description": description,
            "input": shape,
            "output": list(classes),
            "classes": classes[0] if len(classes) == 1 else None,
            **count_macs(model, shape),
            "params": sum(p.numel() for p in model.parameters()),
            "onnx": os.path.basename(path),
            "onnx_bytes": os.path.getsize(path),
            "small": args.small,
            "seed": args.seed,
            "torch": torch.__version__,
        }
        with open(os.path.join(args.out, f"{name}.json"), "w") as f:
            json.dump(info, f, indent=1)
        print(
            f"{name}: {info['convs']} convs ({info['depthwise']} depthwise), {info['dense']} dense, "
            f"{info['macs'] / 1e6:.1f} M MACs, {info['onnx_bytes'] / 1e6:.1f} MB, {time.time() - start:.1f} s",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())

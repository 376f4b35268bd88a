"""Exports two Bi-Real Net basic blocks to ONNX as the public Bi-Real Net / ReActNet code writes
them (github.com/liuzechun/Bi-Real-net, birealnet.py): the ApproxSign straight-through activation,
HardBinaryConv (`scale * sign(W)` with the detach trick), BatchNorm, the residual add, and the
downsample shortcut AvgPool2d(2) -> 1x1 conv -> BN. PyTorch 1.13, opset 13, dynamic batch axis.

    python3 tools/export_bireal_block.py OUT.onnx [--act approx|where] [--seed N]

--act where replaces ApproxSign by torch.where(x >= 0, ones_like(x), -ones_like(x)). Random
weights with realistic batch-norm statistics; the graph is [N, 16, 8, 8] -> [N, 32, 4, 4].
"""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


class BinaryActivation(nn.Module):
    """ApproxSign, verbatim from birealnet.py."""

    def forward(self, x):
        out_forward = torch.sign(x)
        mask1 = x < -1
        mask2 = x < 0
        mask3 = x < 1
        out1 = (-1) * mask1.type(torch.float32) + (x * x + 2 * x) * (1 - mask1.type(torch.float32))
        out2 = out1 * mask2.type(torch.float32) + (-x * x + 2 * x) * (1 - mask2.type(torch.float32))
        out3 = out2 * mask3.type(torch.float32) + 1 * (1 - mask3.type(torch.float32))
        out = out_forward.detach() - out3.detach() + out3
        return out


class WhereSign(nn.Module):
    def forward(self, x):
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


class HardBinaryConv(nn.Module):
    """From birealnet.py (latent weights drawn from randn here rather than rand * 0.001)."""

    def __init__(self, in_chn, out_chn, kernel_size=3, stride=1, padding=1):
        super().__init__()
        self.stride = stride
        self.padding = padding
        self.number_of_weights = in_chn * out_chn * kernel_size * kernel_size
        self.shape = (out_chn, in_chn, kernel_size, kernel_size)
        self.weights = nn.Parameter(torch.randn((self.number_of_weights, 1)) * 0.1, requires_grad=True)

    def forward(self, x):
        real_weights = self.weights.view(self.shape)
        scaling_factor = torch.mean(
            torch.mean(torch.mean(abs(real_weights), dim=3, keepdim=True), dim=2, keepdim=True), dim=1, keepdim=True
        )
        scaling_factor = scaling_factor.detach()
        binary_weights_no_grad = scaling_factor * torch.sign(real_weights)
        cliped_weights = torch.clamp(real_weights, -1.0, 1.0)
        binary_weights = binary_weights_no_grad.detach() - cliped_weights.detach() + cliped_weights
        y = F.conv2d(x, binary_weights, stride=self.stride, padding=self.padding)
        return y


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, act="approx"):
        super().__init__()
        self.binary_activation = BinaryActivation() if act == "approx" else WhereSign()
        self.binary_conv = HardBinaryConv(inplanes, planes, stride=stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        residual = x
        out = self.binary_activation(x)
        out = self.binary_conv(out)
        out = self.bn1(out)
        if self.downsample is not None:
            residual = self.downsample(x)
        out += residual
        return out


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--act", choices=["approx", "where"], default="approx")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    downsample = nn.Sequential(nn.AvgPool2d(kernel_size=2, stride=2), conv1x1(16, 32), nn.BatchNorm2d(32))
    net = nn.Sequential(
        BasicBlock(16, 16, act=args.act),
        BasicBlock(16, 32, stride=2, downsample=downsample, act=args.act),
    )
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    net.eval()
    x = torch.randn(2, 16, 8, 8)
    torch.onnx.export(
        net,
        x,
        args.out,
        opset_version=13,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
    )


if __name__ == "__main__":
    main()

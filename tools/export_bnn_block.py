"""Exports two binary residual blocks to ONNX as the public BNN code writes them, for the import
tests. PyTorch 1.13, opset 13, dynamic batch axis; the graph is [N, 16, 8, 8] -> [N, 32, 4, 4],
the second block downsampling through AvgPool2d(2) -> 1x1 conv -> BN.

    python3 tools/export_bnn_block.py OUT.onnx [--block bireal|reactnet] [--act approx|where|ste|hardtanh]
                                      [--weights bireal|dorefa|recu|fda] [--xnor] [--seed N]

--block bireal: the Bi-Real Net block (github.com/liuzechun/Bi-Real-net, birealnet.py):
    out = bn(binary_conv(act(x))) + shortcut(x).
--block reactnet: the ReActNet block on a ResNet body (github.com/liuzechun/ReActNet): RSign (a
    learnable per-channel bias, then the sign) before the conv, RPReLU (bias, PReLU, bias) after
    the residual sum.
--act: ApproxSign as in birealnet.py (approx); torch.where(x >= 0, ones_like(x), -ones_like(x))
    (where); BiBench's straight-through sign x + (sign(x) - x).detach() (ste); or that sign of a
    Hardtanh, sign(clamp(x, -1, 1)) in the straight-through form (hardtanh).
--weights: the weight binarizers whose inference form is sign(W) times a scale, as BiBench's
    layers compute them: Bi-Real / ReActNet (per-channel mean |W|, the detach trick, the default),
    DoReFa (one mean |W| for the layer), ReCU (sign of the centred weights, per-channel scale), FDA
    (sign(W) in the conv, a per-channel scale multiplied onto its output).
--xnor: XNOR-Net's activation scale on each conv's output: K = avg_pool3x3(mean over channels of
    |x|), a per-sample factor (lowbit refuses it by name).
Random weights with realistic batch-norm statistics.
"""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from bnn_zoo import BinaryActivation as ApproxSign  # birealnet.py's ApproxSign, verbatim


class WhereSign(nn.Module):
    def forward(self, x):
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


class SteSign(nn.Module):
    def __init__(self, hardtanh=False):
        super().__init__()
        self.hardtanh = hardtanh

    def forward(self, x):
        if self.hardtanh:
            x = F.hardtanh(x)
        return x + (torch.sign(x) - x).detach()


def activation(kind):
    return {"approx": ApproxSign, "where": WhereSign, "ste": SteSign}.get(kind, lambda: SteSign(True))()


class LearnableBias(nn.Module):
    """From ReActNet: a per-channel bias, added by broadcasting."""

    def __init__(self, channels):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x):
        return x + self.bias.expand_as(x)


class BinaryConv(nn.Module):
    """A 3x3 conv of binarized weights (HardBinaryConv in birealnet.py for --weights bireal)."""

    def __init__(self, in_chn, out_chn, stride=1, weights="bireal"):
        super().__init__()
        self.stride = stride
        self.kind = weights
        self.shape = (out_chn, in_chn, 3, 3)
        w = torch.randn((out_chn * in_chn * 9, 1)) * 0.1
        w[w == 0] = 1e-4  # an exact 0 (about one float32 randn draw in 10^7) would make sign(W) ternary
        self.weights = nn.Parameter(w)
        self.alpha = nn.Parameter(torch.rand(out_chn) + 0.5)  # FDA's output scale

    def forward(self, x):
        w = self.weights.view(self.shape)
        if self.kind == "bireal":
            scale = torch.mean(torch.mean(torch.mean(abs(w), dim=3, keepdim=True), dim=2, keepdim=True), dim=1, keepdim=True)
            bw = scale.detach() * torch.sign(w)
            cliped = torch.clamp(w, -1.0, 1.0)
            bw = bw.detach() - cliped.detach() + cliped
        elif self.kind == "dorefa":
            bw = w + (torch.sign(w) * w.abs().mean() - w).detach()
        elif self.kind == "recu":
            centred = w - w.mean(dim=(1, 2, 3), keepdim=True)
            scale = centred.abs().mean(dim=(1, 2, 3), keepdim=True).detach()
            bw = centred + (torch.sign(centred) * scale - centred).detach()
        else:  # fda
            bw = w + (torch.sign(w) - w).detach()
        y = F.conv2d(x, bw, stride=self.stride, padding=1)
        if self.kind == "fda":
            y = y * self.alpha.view(1, -1, 1, 1)
        return y


class Block(nn.Module):
    def __init__(self, inplanes, planes, args, stride=1, downsample=None):
        super().__init__()
        self.reactnet = args.block == "reactnet"
        if self.reactnet:
            self.move0 = LearnableBias(inplanes)
            self.move1 = LearnableBias(planes)
            self.prelu = nn.PReLU(planes)
            self.move2 = LearnableBias(planes)
        self.binary_activation = activation(args.act)
        self.binary_conv = BinaryConv(inplanes, planes, stride, args.weights)
        self.xnor = args.xnor
        self.bn1 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.move0(x) if self.reactnet else x
        y = self.binary_conv(self.binary_activation(out))
        if self.xnor:
            k = F.avg_pool2d(torch.mean(torch.abs(out), dim=1, keepdim=True), 3, stride=1, padding=1)
            y = y * k[:, :, :: self.binary_conv.stride, :: self.binary_conv.stride]
        out = self.bn1(y)
        out = out + residual
        if self.reactnet:
            out = self.move2(self.prelu(self.move1(out)))
        return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--block", choices=["bireal", "reactnet"], default="bireal")
    p.add_argument("--act", choices=["approx", "where", "ste", "hardtanh"], default="approx")
    p.add_argument("--weights", choices=["bireal", "dorefa", "recu", "fda"], default="bireal")
    p.add_argument("--xnor", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    downsample = nn.Sequential(
        nn.AvgPool2d(kernel_size=2, stride=2), nn.Conv2d(16, 32, kernel_size=1, bias=False), nn.BatchNorm2d(32)
    )
    net = nn.Sequential(Block(16, 16, args), Block(16, 32, args, stride=2, downsample=downsample))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
            elif isinstance(m, LearnableBias):
                m.bias.uniform_(-0.3, 0.3)
            elif isinstance(m, nn.PReLU):
                m.weight.uniform_(0.05, 0.5)
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

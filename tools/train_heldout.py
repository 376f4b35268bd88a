#!/usr/bin/python3
"""Trains the held-out Fashion-MNIST networks (float, ordinary layers) that test lowbit's post-training
quantization on models it did not shape, and exports them to ONNX.

  /usr/bin/python3 tools/train_heldout.py [--model vgg|resnet|all] [--epochs N] [--seed S] [--out models]
                                          [--threads 2] [--data DIR] [--train-limit N]

Writes <out>/heldout-<model>.onnx and <out>/heldout-<model>.torch.json (the fields of train_fashion.py's
.torch.json; see tools/README.md). Data, seeding, export and the slice report: tools/fashion_mnist.py.

  heldout-vgg:    [Conv 3x3 + BN + ReLU, MaxPool 2] x 2 (1->32, 32->64), Conv 3x3 64->128 + BN + ReLU (7x7),
                  GlobalAveragePool, Linear 128->10
  heldout-resnet: stem Conv 3x3 1->32 + BN + ReLU, MaxPool 2 (14x14); BasicBlock 32->32 (identity shortcut);
                  BasicBlock 32->64 stride 2 (7x7; shortcut 1x1 Conv stride 2 + BN); GlobalAveragePool,
                  Linear 64->10. BasicBlock: Conv3x3-BN-ReLU-Conv3x3-BN, + shortcut, ReLU.
"""
import argparse
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before the torch import (see train_fashion.py)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import fashion_mnist as fm  # noqa: E402


def conv_bn(cin, cout, k=3, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout))


class VGG(nn.Module):
    def __init__(self, widths=(32, 64, 128)):
        super().__init__()
        c1, c2, c3 = widths
        self.features = nn.Sequential(
            conv_bn(1, c1), nn.ReLU(), nn.MaxPool2d(2),  # 28 -> 14
            conv_bn(c1, c2), nn.ReLU(), nn.MaxPool2d(2),  # 14 -> 7
            conv_bn(c2, c3), nn.ReLU())
        self.fc = nn.Linear(c3, 10)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.a = conv_bn(cin, cout, stride=stride)
        self.b = conv_bn(cout, cout)
        self.shortcut = conv_bn(cin, cout, k=1, stride=stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return F.relu(self.b(F.relu(self.a(x))) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(1, 32), nn.ReLU(), nn.MaxPool2d(2))  # 28 -> 14
        self.blocks = nn.Sequential(BasicBlock(32, 32), BasicBlock(32, 64, stride=2))  # 14 -> 7
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))


MODELS = {"vgg": VGG, "resnet": ResNet}
DEFAULTS = dict(epochs=2, lr=3e-3, batch=128)  # Adam, cosine decay per step to lr / 100


def train(name, xtr, ytr, xte, yte, args):
    fm.seed_everything(args.seed, args.threads)
    model = MODELS[name]()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps = args.epochs * ((len(xtr) + args.batch - 1) // args.batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=args.lr / 100)
    gen = torch.Generator().manual_seed(args.seed)
    epoch_seconds, accs = [], []
    for epoch in range(args.epochs):
        model.train()
        t = time.time()
        for idx in torch.randperm(len(xtr), generator=gen).split(args.batch):
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        epoch_seconds.append(round(time.time() - t, 2))
        accs.append(round(fm.accuracy(fm.predict_logits(model, xte), yte), 6))
        print(f"  heldout-{name} epoch {epoch + 1}/{args.epochs}: {epoch_seconds[-1]:.1f} s, "
              f"loss {float(loss):.4f} (last batch), test acc {accs[-1]:.4f}", flush=True)

    record = {"model": f"heldout-{name}", "epochs": args.epochs, "seed": args.seed,
              "epoch_seconds": epoch_seconds, "epoch_test_accuracy": accs, "test_accuracy": accs[-1],
              "train": dict(epochs=args.epochs, lr=args.lr, batch=args.batch, optimizer="Adam",
                            schedule="cosine per step to lr/100", threads=args.threads,
                            train_images=len(xtr), torch=torch.__version__),
              "parameters": sum(p.numel() for p in model.parameters())}
    onnx_path = os.path.join(args.out, f"heldout-{name}.onnx")
    fm.export_onnx(model, onnx_path)
    record.update(fm.slice_report(fm.predict_logits(model, xte[:1000])))  # = models/fashion-mnist-test-1000.lbds
    json_path = os.path.join(args.out, f"heldout-{name}.torch.json")
    fm.write_json(json_path, record)
    print(f"  heldout-{name}: test accuracy {record['test_accuracy']:.4f}, slice accuracy "
          f"{fm.accuracy(fm.predict_logits(model, xte[:1000]), yte[:1000]):.4f}; wrote {onnx_path} "
          f"({os.path.getsize(onnx_path)} bytes), {json_path}", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="all", choices=("all", *MODELS))
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    p.add_argument("--batch", type=int, default=DEFAULTS["batch"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="models", help="directory for the .onnx and .torch.json")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", default=None, help=f"idx directory (default $FASHION_MNIST_DIR or {fm.DEFAULT_DIR})")
    p.add_argument("--train-limit", type=int, default=None, help="use only the first N training images (smoke tests)")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    xtr, ytr, xte, yte = fm.load_inputs(args.data, args.train_limit)
    for name in MODELS if args.model == "all" else (args.model,):
        train(name, xtr, ytr, xte, yte, args)
    print(f"total {time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

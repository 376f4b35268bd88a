#!/usr/bin/python3
"""Trains lowbit's Fashion-MNIST example models and exports them to ONNX.

  /usr/bin/python3 tools/train_fashion.py --model float|binary|binary-mst [--epochs N] [--seed S]
                                          [--out models] [--threads 2] [--data DIR] [--cache tools/.cache]

Writes <out>/fashion-<model>.onnx and <out>/fashion-<model>.torch.json (see tools/README.md), and the
PyTorch checkpoint <cache>/fashion-<model>.pt (never shipped: <cache> holds a .gitignore of "*").
`binary-mst` fine-tunes <cache>/fashion-binary.pt (train `binary` first) with tools/mst_regularizer.py's
MSTRegularizer on the binary convs; --from-scratch trains it from a fresh initialisation instead.
Model definitions and conventions: tools/fashion_mnist.py.
"""
import argparse
import os
import sys
import time

# Spinning OpenMP workers slow everything down several-fold on shared cores; must precede the torch import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import fashion_mnist as fm  # noqa: E402
from mst_regularizer import MSTRegularizer  # noqa: E402

DEFAULTS = {  # epochs, Adam lr (cosine-decayed per step to lr / 100), batch
    "float": dict(epochs=5, lr=1e-3, batch=128),
    "binary": dict(epochs=6, lr=2e-3, batch=128),
    "binary-mst": dict(epochs=3, lr=5e-4, batch=128),
}
# beta 30: the trained binary model's latent weights have a median |W| of about 0.03 (90th percentile
# 0.07-0.09), so tanh(30 W) still has slope on most of them; strength 1e-2 sums over about 250 tree edges.
MST_OPTIONS = dict(strength=1e-2, every=10, max_depth=None, allow_negation=False, surrogate="tanh", beta=30.0)


def mst_summary(model, **options):
    """Per binary layer, the stats of the tree lowbit's buildMst builds from the current signs (default
    options: unbounded depth, no negation), plus the unweighted mean of the layers' mean d/K."""
    stats = MSTRegularizer(model.binary_layers(), **options).stats()
    mean = sum(s["mean_dk"] for s in stats.values()) / len(stats)
    return round(mean, 6), {k: {kk: (round(v, 6) if isinstance(v, float) else v) for kk, v in s.items()}
                            for k, s in stats.items()}


def evaluate(model, x, y):
    return fm.accuracy(fm.predict_logits(model, x), y)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, choices=fm.MODELS)
    p.add_argument("--epochs", type=int, default=None, help="default: float 5, binary 6, binary-mst 3")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="models", help="directory for the .onnx and .torch.json")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", default=None, help=f"idx directory (default $FASHION_MNIST_DIR or {fm.DEFAULT_DIR})")
    p.add_argument("--cache", default=os.path.join(HERE, ".cache"), help="directory for .pt checkpoints")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--from-scratch", action="store_true", help="binary-mst: do not start from fashion-binary.pt")
    p.add_argument("--mst-strength", type=float, default=MST_OPTIONS["strength"])
    p.add_argument("--mst-beta", type=float, default=MST_OPTIONS["beta"])
    p.add_argument("--train-limit", type=int, default=None, help="use only the first N training images (smoke tests)")
    args = p.parse_args(argv)
    cfg = dict(DEFAULTS[args.model])
    for k in ("epochs", "lr", "batch"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)

    fm.seed_everything(args.seed, args.threads)
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.cache, exist_ok=True)
    ignore = os.path.join(args.cache, ".gitignore")
    if not os.path.exists(ignore):
        with open(ignore, "w") as f:
            f.write("# checkpoints of tools/train_fashion.py: never committed\n*\n")

    t0 = time.time()
    xtr, ytr, xte, yte = fm.load_inputs(args.data, args.train_limit)
    print(f"fashion-{args.model}: {len(xtr)} training / {len(xte)} test images, {args.threads} threads, "
          f"seed {args.seed}, {cfg} (data {time.time() - t0:.1f} s)", flush=True)

    model = fm.make_model(args.model)
    binary = args.model != "float"
    record = {"model": f"fashion-{args.model}", "epochs": cfg["epochs"], "seed": args.seed}
    reg = None
    if args.model == "binary-mst":
        start = os.path.join(args.cache, "fashion-binary.pt")
        if not args.from_scratch:
            if not os.path.exists(start):
                p.error(f"{start} not found: train --model binary first (same --cache), or pass --from-scratch")
            fm.load_checkpoint_state(model, torch.load(start, map_location="cpu")["state_dict"])
            acc0 = evaluate(model, xte, yte)
            print(f"  start: {start}, test accuracy {acc0:.4f}", flush=True)
            record["start_checkpoint"] = "fashion-binary"
            record["start_test_accuracy"] = round(acc0, 6)
        options = dict(MST_OPTIONS, strength=args.mst_strength, beta=args.mst_beta)
        reg = MSTRegularizer(model.binary_layers(), **options)
        record["mst_options"] = options
    if binary:
        dk, stats = mst_summary(model)
        record["mean_dk_before"], record["mst_before"] = dk, stats
        print(f"  mean d/K before: {dk:.4f}  " + "  ".join(f"{k} {s['mean_dk']:.3f}" for k, s in stats.items()),
              flush=True)

    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    steps = cfg["epochs"] * ((len(xtr) + cfg["batch"] - 1) // cfg["batch"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=cfg["lr"] / 100)
    gen = torch.Generator().manual_seed(args.seed)
    latent = [m.weight for _, m in model.binary_layers()] if binary else []
    epoch_seconds, accs = [], []
    for epoch in range(cfg["epochs"]):
        model.train()
        t = time.time()
        loss_sum = penalty_sum = correct = 0.0
        for idx in torch.randperm(len(xtr), generator=gen).split(cfg["batch"]):
            logits = model(xtr[idx])
            loss = F.cross_entropy(logits, ytr[idx])
            total = loss
            if reg is not None:
                pen = reg.step()
                total = loss + pen
                penalty_sum += float(pen) * len(idx)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            sched.step()
            if latent:
                with torch.no_grad():  # BNN practice: keep latent weights in the STE's range
                    for w in latent:
                        w.clamp_(-1.0, 1.0)
            loss_sum += float(loss) * len(idx)
            correct += float((logits.argmax(1) == ytr[idx]).sum())
        seconds = time.time() - t
        epoch_seconds.append(round(seconds, 2))
        acc = evaluate(model, xte, yte)
        accs.append(round(acc, 6))
        line = (f"  epoch {epoch + 1}/{cfg['epochs']}: {seconds:.1f} s, loss {loss_sum / len(xtr):.4f}, "
                f"train acc {correct / len(xtr):.4f}, test acc {acc:.4f}")
        if reg is not None:
            dk, _ = mst_summary(model)
            line += f", penalty {penalty_sum / len(xtr):.4f}, mean d/K {dk:.4f}"
        print(line, flush=True)

    model.eval()
    logits = fm.predict_logits(model, xte)
    record["epoch_seconds"] = epoch_seconds
    record["epoch_test_accuracy"] = accs
    record["test_accuracy"] = round(fm.accuracy(logits, yte), 6)
    record["train"] = dict(cfg, optimizer="Adam", schedule="cosine per step to lr/100", threads=args.threads,
                           train_images=len(xtr), torch=torch.__version__)
    if binary:
        dk, stats = mst_summary(model)
        record["mean_dk_after"], record["mst_after"] = dk, stats
        dkn, statsn = mst_summary(model, allow_negation=True)
        record["mean_dk_after_negation"], record["mst_after_negation"] = dkn, statsn
        print(f"  mean d/K after: {dk:.4f}  " + "  ".join(
            f"{k} {s['mean_dk']:.3f} (op ratio {s['op_ratio']:.2f})" for k, s in stats.items())
            + f"; with negation {dkn:.4f}", flush=True)

    ckpt = os.path.join(args.cache, f"fashion-{args.model}.pt")
    torch.save({"model": args.model, "state_dict": fm.checkpoint_state(model), "record": {
        k: record[k] for k in ("epochs", "seed", "test_accuracy")}}, ckpt)
    onnx_path = os.path.join(args.out, f"fashion-{args.model}.onnx")
    fm.export_onnx(model, onnx_path)
    # The slice: the first 1000 test images (= models/fashion-mnist-test-1000.lbds), eval mode, float32.
    record.update(fm.slice_report(fm.predict_logits(model, xte[:1000])))
    json_path = os.path.join(args.out, f"fashion-{args.model}.torch.json")
    fm.write_json(json_path, record)
    print(f"  test accuracy {record['test_accuracy']:.4f}; epoch seconds {epoch_seconds}")
    print(f"  wrote {onnx_path} ({os.path.getsize(onnx_path)} bytes), {json_path} "
          f"({os.path.getsize(json_path)} bytes), checkpoint {ckpt}; total {time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

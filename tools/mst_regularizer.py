#!/usr/bin/python3
"""MST-distance regularisation for training binary neural networks (PyTorch).

lowbit's MST schedules (lib/ops/mst.ts, native/src/binary/mst.cc; Vo et al., ICCV 2023) compute a
binary layer's output channel from a *parent* channel's result plus a correction over only the d
weight positions where the two channels' signs differ. The saving is set by the minimum spanning tree
of the channels' Hamming distances, and random or ordinarily trained binary weights sit near d = K/2
(even the tree's edges cost a third of K or more), where it saves little. Training with this
regulariser pulls the latent (real-valued) weights of tree-adjacent channels towards each other, so
their signs agree in more positions and the tree lowbit builds from the final signs is cheaper, at
little cost in accuracy because most sign flips it causes are of latent weights near zero anyway.

Pieces:
  binary_sign, SignSTE, ste_sign  lowbit's sign convention (w >= 0 -> +1), a straight-through binariser
  build_tree                      exactly lowbit's build_mst (same parents, negation, depths, costs)
  MSTRegularizer                  recomputes the trees every N steps and returns a differentiable penalty

Needs only torch and the standard library; on Debian, PyTorch is the apt package python3-torch and is
importable from /usr/bin/python3. Command line (see tools/README.md):
  /usr/bin/python3 tools/mst_regularizer.py --selftest [--seed N]
  /usr/bin/python3 tools/mst_regularizer.py --tree-json FILE
"""
import argparse
import json
import os
import sys
import time
from dataclasses import dataclass

if __name__ == "__main__":
    # The self-test often shares its cores with other tests; spinning OpenMP workers then slow it down
    # several-fold. Must be set before torch (libgomp) loads; importers keep their own setting.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn as nn
import torch.nn.functional as F


# --------------------------------------------------------------------------- binarisation

def binary_sign(w):
    """lowbit's sign: +1 where w >= 0 (zero included, as the weight packers do), -1 elsewhere; w's dtype."""
    return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))


class SignSTE(torch.autograd.Function):
    """Straight-through sign: forward binary_sign, backward the identity where |w| <= 1 and 0 beyond
    (the usual BNN estimator: latent weights / activations that have saturated stop receiving gradient)."""

    @staticmethod
    def forward(ctx, w):
        ctx.save_for_backward(w)
        return binary_sign(w)

    @staticmethod
    def backward(ctx, grad):
        (w,) = ctx.saved_tensors
        return grad * (w.abs() <= 1).to(grad.dtype)


def ste_sign(w):
    return SignSTE.apply(w)


# --------------------------------------------------------------------------- the tree (lowbit's build_mst)

@dataclass
class Tree:
    """An MST schedule as lowbit's buildMst reports it; per-channel tensors (int64 / bool) indexed by channel."""

    parent: torch.Tensor  # -1 for a root (computed densely), else a channel of the same group
    negate: torch.Tensor  # True where the child is computed from its parent's complement
    depth: torch.Tensor  # 0 for a root
    cost: torch.Tensor  # positions the channel evaluates: K for a root, d (or K - d negated) for a child
    channels: int
    kbits: int
    total_distance: int  # sum of the children's costs
    mean_dk: float  # mean cost / K over the children (0 without children): the regulariser's target
    max_depth: int
    op_ratio: float  # dense bit-ops / MST bit-ops = C*K / (roots*K + total_distance)

    def to_json(self):
        return {
            "parent": self.parent.tolist(),
            "negate": self.negate.long().tolist(),
            "depth": self.depth.tolist(),
            "cost": self.cost.tolist(),
            "total_distance": self.total_distance,
            "mean_dk": self.mean_dk,
            "max_depth": self.max_depth,
            "op_ratio": self.op_ratio,
        }


def build_tree(signs, groups=1, max_depth=None, allow_negation=False):
    """lowbit's build_mst on a [C, K] matrix of signs (+-1; other values are binarised with binary_sign).

    Per group (channels [g*C/groups, (g+1)*C/groups)), Prim's algorithm from a virtual root at distance K:
    the not-yet-attached channel with the smallest key is taken next, ties to the shallower attachment
    (root = 0, else the candidate parent's depth + 1), then to the lower index; a channel at depth >= max_depth
    may not become a parent; a channel's key is lowered by cost d (K - d with a negated parent when
    allow_negation and K - d < d), or kept equal but moved to a strictly shallower parent. Every tie rule
    matches native/src/binary/mst.cc, so parents agree with buildMst channel for channel.

    The groups run in lockstep (each takes exactly C/groups steps), so a depthwise layer costs C/groups
    vectorised steps rather than C Python loops. Distances come from one matrix product,
    d = (K - S S^T) / 2, in int32 (exact for K < 2^31, and several times faster than the float product
    when torch falls back to a reference BLAS, as Debian's python3-torch can).
    """
    s = binary_sign(torch.as_tensor(signs, dtype=torch.float64))
    if s.dim() != 2:
        raise ValueError(f"signs: expected a [C, K] matrix, got shape {tuple(s.shape)}")
    C, K = s.shape
    if groups < 1 or C % groups:
        raise ValueError(f"groups: {groups} does not divide the {C} channels")
    if max_depth is not None and (int(max_depth) != max_depth or max_depth < 0):
        raise ValueError(f"max_depth: expected None or an integer >= 0, got {max_depth}")
    G, n = groups, C // groups
    limit = C + 1 if max_depth is None else int(max_depth)  # no tree is deeper than C - 1
    rows = s.to(torch.int32).reshape(G, n, K)
    dist = ((K - rows @ rows.transpose(1, 2)) // 2).long()  # [G, n, n] Hamming distances

    gi = torch.arange(G)
    idx = torch.arange(n).expand(G, n)
    key = torch.full((G, n), K, dtype=torch.long)
    via = torch.full((G, n), -1, dtype=torch.long)  # best parent so far, -1: the virtual root
    flip = torch.zeros((G, n), dtype=torch.bool)
    done = torch.zeros((G, n), dtype=torch.bool)
    parent = torch.full((G, n), -1, dtype=torch.long)
    negate = torch.zeros((G, n), dtype=torch.bool)
    depth = torch.zeros((G, n), dtype=torch.long)
    cost = torch.full((G, n), K, dtype=torch.long)
    big = (K + 1) * (n + 1) * n  # above every lexicographic rank below

    for _ in range(n):
        # Lexicographic (key, attachment depth, index) as one integer, so argmin breaks ties as mst.cc does.
        attach = torch.where(via < 0, torch.zeros_like(via), depth.gather(1, via.clamp(min=0)) + 1)
        rank = (key * (n + 1) + attach) * n + idx
        v = torch.where(done, torch.full_like(rank, big), rank).argmin(1)  # [G]
        done[gi, v] = True
        parent[gi, v] = via[gi, v]
        negate[gi, v] = flip[gi, v]
        cost[gi, v] = key[gi, v]
        dv = attach[gi, v]
        depth[gi, v] = dv
        d = dist[gi, v]  # [G, n] distances from v
        neg = (K - d < d) if allow_negation else torch.zeros_like(done)
        c = torch.where(neg, K - d, d)
        deeper_via = depth.gather(1, via.clamp(min=0))
        better = (c < key) | ((c == key) & (via >= 0) & (dv.unsqueeze(1) < deeper_via))
        better &= ~done & (dv < limit).unsqueeze(1)  # a channel at the depth bound may not become a parent
        key = torch.where(better, c, key)
        via = torch.where(better, v.unsqueeze(1).expand(G, n), via)
        flip = torch.where(better, neg, flip)

    offset = (gi * n).unsqueeze(1)
    parent = torch.where(parent < 0, parent, parent + offset).reshape(C)  # group-local -> channel index
    negate, depth, cost = negate.reshape(C), depth.reshape(C), cost.reshape(C)
    child = parent >= 0
    total = int(cost[child].sum())
    children = int(child.sum())
    ops = int(cost.sum())
    return Tree(
        parent=parent, negate=negate, depth=depth, cost=cost, channels=C, kbits=K,
        total_distance=total,
        mean_dk=total / (children * K) if children else 0.0,
        max_depth=int(depth.max()) if C else 0,
        op_ratio=C * K / ops if ops > 0 else 1.0,
    )


# --------------------------------------------------------------------------- the regulariser

class MSTRegularizer:
    """A differentiable penalty that makes a network's binary layers cheap under lowbit's MST schedules.

    Every `every` calls of step(), the MST of each layer is rebuilt from the signs of its latent weights
    (exactly as lowbit would build it for deployment). In between, penalty() sums, over the tree's edges
    (parent i, child j), a smooth distance between the latent rows W_i and W_j (W_i and -W_j for a
    negated edge). Its gradient pulls tree-adjacent channels' weights towards agreement, mostly moving
    the latent weights that are near zero, so signs flip where the task hardly cares and the tree
    rebuilt from the signs gets cheaper. Holding the tree fixed between rebuilds keeps the penalty
    smooth (the tree is a discrete function of the weights and has no gradient of its own).

    layers: nn.Conv2d / nn.Linear modules (or anything with a `.weight` [C, ...] and optional `.groups`),
        or (name, module) pairs. Rows are weight.reshape(C, -1); a Conv2d's groups are respected
        (channels of different groups are never connected, as in lowbit).
    strength: lambda, the penalty's weight relative to the task loss.
    every: rebuild the trees every `every` calls of step(); 1 tracks the weights exactly, larger values
        amortise the O(C^2 K) rebuild at the price of a slightly stale tree.
    max_depth, allow_negation: as lowbit's buildMst (use the options you will deploy with).
    surrogate: 'tanh': ((tanh(beta W_i) - tanh(beta W_j)) / 2)^2, a smooth count of sign disagreements
        (beta sets how near zero a weight must be to still be pulled; ~1 / typical |W|); 'l1': |W_i - W_j|,
        which also pulls magnitudes together.
    normalize: average each edge's distance over its K positions (True) so that lambda means the same
        for layers of different K; False sums over the positions.
    """

    def __init__(self, layers, strength=5e-3, every=10, max_depth=None, allow_negation=False,
                 surrogate="tanh", beta=10.0, normalize=True):
        self.layers = []
        for i, item in enumerate(layers):
            name, module = item if isinstance(item, tuple) else (f"{type(item).__name__.lower()}{i}", item)
            self.layers.append((name, module))
        if surrogate not in ("tanh", "l1"):
            raise ValueError(f"surrogate: expected 'tanh' or 'l1', got {surrogate!r}")
        if every < 1:
            raise ValueError(f"every: expected an integer >= 1, got {every}")
        self.strength, self.every, self.max_depth = strength, int(every), max_depth
        self.allow_negation, self.surrogate, self.beta, self.normalize = allow_negation, surrogate, beta, normalize
        self.trees = {}  # name -> Tree of the last update()
        self.edges = {}  # name -> (parent, child, sign) tensors of the tree's edges
        self.calls = 0

    @staticmethod
    def rows(module):
        """The layer's latent weights as [C, K] (conv [O, I/g, kh, kw]: K = I/g * kh * kw; lowbit orders
        the K positions differently, which changes no distance)."""
        return module.weight.reshape(module.weight.shape[0], -1)

    def _tree(self, module):
        return build_tree(binary_sign(self.rows(module).detach()).cpu(), groups=getattr(module, "groups", 1),
                          max_depth=self.max_depth, allow_negation=self.allow_negation)

    @torch.no_grad()
    def update(self):
        """Rebuilds every layer's tree from the current signs, and its edges as index tensors on the
        weight's device (so penalty() does no host-device traffic between rebuilds)."""
        for name, module in self.layers:
            tree = self._tree(module)
            device = module.weight.device
            child = (tree.parent >= 0).nonzero().squeeze(1)
            sign = 1.0 - 2.0 * tree.negate[child].to(module.weight.dtype)  # -1 on negated edges: compare with -W_j
            self.trees[name] = tree
            self.edges[name] = (tree.parent[child].to(device), child.to(device), sign.unsqueeze(1).to(device))

    def penalty(self):
        """lambda * sum over layers and tree edges of the surrogate distance (differentiable in the weights)."""
        if not self.trees:
            self.update()
        total = None
        for name, module in self.layers:
            par, child, sign = self.edges[name]
            if child.numel() == 0:  # all roots (e.g. max_depth=0): nothing to pull together
                continue
            w = self.rows(module)
            if self.surrogate == "tanh":
                # ~1 where the two signs differ, ~0 where they agree; the gradient lives near w = 0
                dist = ((torch.tanh(self.beta * w[par]) - sign * torch.tanh(self.beta * w[child])) / 2) ** 2
            else:
                dist = (w[par] - sign * w[child]).abs()
            term = (dist.mean(1) if self.normalize else dist.sum(1)).sum()
            total = term if total is None else total + term
        return self.strength * total if total is not None else torch.zeros(())

    def step(self):
        """Rebuilds the trees on every `every`-th call (the first included), then returns penalty()."""
        if self.calls % self.every == 0:
            self.update()
        self.calls += 1
        return self.penalty()

    @torch.no_grad()
    def stats(self):
        """Per layer, the statistics of the tree lowbit would build from the current signs (freshly built,
        not the possibly stale training tree): channels, K, total_distance, mean_dk, depth, op_ratio."""
        out = {}
        for name, module in self.layers:
            t = self._tree(module)
            out[name] = {"channels": t.channels, "K": t.kbits, "total_distance": t.total_distance,
                         "mean_dk": t.mean_dk, "depth": t.max_depth, "op_ratio": t.op_ratio}
        return out


# --------------------------------------------------------------------------- self-test: a toy BNN

class BinaryConv2d(nn.Conv2d):
    """Conv2d with sign-binarised weights (STE) in the forward pass; the latent weights stay real."""

    def forward(self, x):
        return F.conv2d(x, ste_sign(self.weight), self.bias, self.stride, self.padding, self.dilation, self.groups)


class BinaryLinear(nn.Linear):
    def forward(self, x):
        return F.linear(x, ste_sign(self.weight), self.bias)


class ToyBNN(nn.Module):
    """Full-precision first and last layers (as usual for BNNs), two binary layers with binary activations
    in between: a grouped 3x3 conv (2 groups, K = 144) and a dense layer (K = 1024)."""

    def __init__(self, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = BinaryConv2d(32, 64, 3, padding=1, groups=2, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.fc1 = BinaryLinear(64 * 4 * 4, 64, bias=False)
        self.bn3 = nn.BatchNorm1d(64)
        self.fc2 = nn.Linear(64, classes)

    def binary_layers(self):
        return [("conv2", self.conv2), ("fc1", self.fc1)]

    def forward(self, x):
        x = ste_sign(self.bn1(self.conv1(x)))
        x = ste_sign(F.max_pool2d(self.bn2(self.conv2(x)), 2))
        x = ste_sign(self.bn3(self.fc1(x.flatten(1))))
        return self.fc2(x)


def toy_data(seed, classes=10, train=2048, test=2048, noise=0.9):
    """Synthetic 3x8x8 images: one smooth random prototype per class, randomly shifted by up to a pixel,
    scaled, and drowned in Gaussian noise (so the task is learnable but not trivial)."""
    g = torch.Generator().manual_seed(seed)
    proto = F.avg_pool2d(torch.randn(classes, 3, 12, 12, generator=g), 3, stride=1, padding=1) * 2

    def sample(m):
        y = torch.randint(classes, (m,), generator=g)
        dx, dy = torch.randint(0, 3, (2, m), generator=g)
        x = torch.stack([proto[y[i], :, dy[i]:dy[i] + 8, dx[i]:dx[i] + 8] for i in range(m)])
        x = x * (0.7 + 0.6 * torch.rand(m, 1, 1, 1, generator=g)) + noise * torch.randn(m, 3, 8, 8, generator=g)
        return x, y

    return sample(train), sample(test)


def train_toy(seed, regularize, epochs=6, batch=128, lr=1e-2, **reg_options):
    """Trains ToyBNN on toy_data; returns (test accuracy, per-layer stats as lowbit would build the trees)."""
    (xt, yt), (xv, yv) = toy_data(seed)
    torch.manual_seed(seed)  # identical initialisation and batches with and without the regulariser
    model = ToyBNN(10)
    reg = MSTRegularizer(model.binary_layers(), **reg_options)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        model.train()
        for i in torch.randperm(len(xt)).split(batch):
            loss = F.cross_entropy(model(xt[i]), yt[i])
            if regularize:
                loss = loss + reg.step()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():  # BNN practice: keep latent weights where the STE passes gradient
                for _, layer in model.binary_layers():
                    layer.weight.clamp_(-1, 1)
    model.eval()
    with torch.no_grad():
        acc = (model(xv).argmax(1) == yv).float().mean().item()
    return acc, reg.stats()


def selftest(seed, max_ratio=0.6, max_acc_drop=0.05):
    """Trains the toy BNN without and with the regulariser (same data, initialisation and batches) and
    passes when the regularised mean d/K is at most max_ratio of the baseline's and the accuracy drops by
    at most max_acc_drop. Returns the exit status."""
    torch.set_num_threads(2)
    t0 = time.time()
    options = dict(strength=5e-3, every=10, surrogate="tanh", beta=10.0)
    runs = {}
    for label, regularize in (("baseline", False), ("regularized", True)):
        acc, stats = train_toy(seed, regularize, **options)
        dk = sum(s["mean_dk"] for s in stats.values()) / len(stats)
        runs[label] = (acc, dk)
        print(f"{label:12s} accuracy {acc:.4f}  mean d/K {dk:.4f}")
        for name, s in stats.items():
            print(f"  {name:6s} C={s['channels']:<3d} K={s['K']:<5d} mean d/K {s['mean_dk']:.4f}  "
                  f"op_ratio {s['op_ratio']:.3f}  depth {s['depth']}")
    (base_acc, base_dk), (reg_acc, reg_dk) = runs["baseline"], runs["regularized"]
    ok_dk = reg_dk <= max_ratio * base_dk
    ok_acc = reg_acc >= base_acc - max_acc_drop
    print(f"d/K ratio {reg_dk / base_dk:.4f} (need <= {max_ratio}), accuracy change {reg_acc - base_acc:+.4f} "
          f"(need >= {-max_acc_drop}), seed {seed}, {time.time() - t0:.1f} s")
    print("selftest " + ("PASS" if ok_dk and ok_acc else "FAIL"))
    return 0 if ok_dk and ok_acc else 1


def tree_json(path):
    """--tree-json: {"signs": [[+-1, ...], ...], "groups", "max_depth" (null: none), "allow_negation"} -> the
    tree as JSON. A list of such objects gives a list of trees (one process, one torch import, for many layers)."""
    with open(path) as f:
        spec = json.load(f)

    def one(s):
        return build_tree(s["signs"], groups=s.get("groups", 1), max_depth=s.get("max_depth"),
                          allow_negation=bool(s.get("allow_negation", False))).to_json()

    json.dump([one(s) for s in spec] if isinstance(spec, list) else one(spec), sys.stdout)
    print()
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--selftest", action="store_true", help="train a toy BNN with and without the regulariser")
    mode.add_argument("--tree-json", metavar="FILE", help="print lowbit's MST of the signs in FILE as JSON")
    p.add_argument("--seed", type=int, default=0, help="seed of the self-test's data and initialisation")
    args = p.parse_args(argv)
    return selftest(args.seed) if args.selftest else tree_json(args.tree_json)


if __name__ == "__main__":
    sys.exit(main())

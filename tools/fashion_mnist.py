#!/usr/bin/python3
"""Fashion-MNIST for lowbit's example models: the data, the three model definitions, shared helpers.

Used by tools/train_fashion.py (training + ONNX export) and tools/export_slice.py (the shipped test
slice). Needs Debian's python3-torch (run with /usr/bin/python3) and Debian's dataset-fashion-mnist, or
any directory holding the four original idx files (gzip-compressed or not):
  {train,t10k}-images-idx3-ubyte.gz, {train,t10k}-labels-idx1-ubyte.gz
The directory is the `data_dir` argument, else $FASHION_MNIST_DIR, else /usr/share/datasets/fashion-mnist.

Conventions every model follows (the lowbit ONNX converter relies on them):
  * input `input`: float32 NCHW [N, 1, 28, 28], pixel / 255 (no mean / std normalisation);
    output `logits`: [N, 10], no softmax; dynamic batch axis; ONNX opset 13, exported in eval mode.
  * binarisation is sign(0) = +1: torch.where(x >= 0, 1, -1), never torch.sign (sign(0) = 0, and so is
    ONNX Sign); lowbit packs 0 (and -0) as +1.
  * binary models (fashion-binary, fashion-binary-mst):
      conv1: Conv(1 -> 32, 3x3, pad 1, no bias), INT8 weights (per output channel, symmetric,
             scale = max|w_c| / 127, q = round(w / scale) in [-127, 127]) on the raw pixel / 255 input,
             -> BatchNorm2d -> MaxPool 2 -> sign
      bconv2: binary Conv(32 -> 64, 3x3, pad 1 with zeros, no bias), weights alpha_c * sign(W_c),
             alpha_c = mean |W_c| -> BatchNorm2d -> MaxPool 2 -> sign                          (14 -> 7)
      bconv3: binary Conv(64 -> 64) -> BatchNorm2d -> sign                                   (7x7)
      bconv4: binary Conv(64 -> 128) -> BatchNorm2d -> sign                                  (7x7)
      fc:     Flatten (NCHW order, 128*7*7 = 6272 +-1 features) -> Linear(6272 -> 10), INT8 weights
             per output row (same rule as conv1) and a float bias.
    (Both pools sit early so that one training epoch takes about a minute on 2 cores.)
    Training uses straight-through estimators (weights: identity gradient; activations: hardtanh
    gradient); eval mode (and therefore the ONNX export) computes the same forward values exactly:
    activations are exactly +-1 and the effective weights exactly alpha_c * +-1 / q * scale.
"""
import gzip
import json
import math
import os
import struct
import sys
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"]
MODELS = ("float", "binary", "binary-mst")


# --------------------------------------------------------------------------- data

def data_dir(path=None):
    return path or os.environ.get("FASHION_MNIST_DIR") or DEFAULT_DIR


def _read_idx(path):
    """An idx file (gzip or plain) as (dims, raw bytes of the uint8 payload)."""
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    elif not os.path.exists(path) and path.endswith(".gz") and os.path.exists(path[:-3]):
        path = path[:-3]
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an idx file")
    dtype, ndim = raw[2], raw[3]
    if dtype != 0x08:
        raise ValueError(f"{path}: expected uint8 data (type 0x08), got type 0x{dtype:02x}")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    payload = raw[4 + 4 * ndim:]
    if len(payload) != math.prod(dims):
        raise ValueError(f"{path}: {len(payload)} bytes of data for dims {dims}")
    return dims, payload


def load_split(split, path=None):
    """split 'train' or 't10k' -> (images uint8 [N, 1, 28, 28], labels int64 [N]), in file order."""
    if split not in ("train", "t10k"):
        raise ValueError(f"split: expected 'train' or 't10k', got {split!r}")
    d = data_dir(path)
    idims, ibytes = _read_idx(os.path.join(d, f"{split}-images-idx3-ubyte.gz"))
    ldims, lbytes = _read_idx(os.path.join(d, f"{split}-labels-idx1-ubyte.gz"))
    if len(idims) != 3 or len(ldims) != 1 or idims[0] != ldims[0]:
        raise ValueError(f"{d}: {split} images {idims} and labels {ldims} disagree")
    images = torch.frombuffer(bytearray(ibytes), dtype=torch.uint8).reshape(idims[0], 1, idims[1], idims[2])
    labels = torch.frombuffer(bytearray(lbytes), dtype=torch.uint8).long()
    return images, labels


def to_input(images_u8):
    """uint8 images -> the models' input: float32 pixel / 255."""
    return images_u8.float() / 255.0


def load_inputs(path=None, train_limit=None):
    """(x_train, y_train, x_test, y_test) as model inputs and labels; the first train_limit training
    images only if given (smoke tests)."""
    xtr_u8, ytr = load_split("train", path)
    xte_u8, yte = load_split("t10k", path)
    if train_limit:
        xtr_u8, ytr = xtr_u8[:train_limit], ytr[:train_limit]
    return to_input(xtr_u8), ytr, to_input(xte_u8), yte


# --------------------------------------------------------------------------- quantisers

_PLUS_ONE = torch.tensor(1.0)
_MINUS_ONE = torch.tensor(-1.0)


def binary_sign(x):
    """lowbit's sign: +1 where x >= 0 (zero included), -1 elsewhere, in x's dtype.

    Same values as torch.where(x >= 0, 1.0, -1.0), but with float32 0-d tensors for the two values: torch
    1.13 exports Python float scalars in Where as double constants, which makes the ONNX graph invalid
    (Conv bound to double and float). Exports as GreaterOrEqual(x, 0.0f) -> Where(., 1.0f, -1.0f); never
    torch.sign / ONNX Sign, which map 0 to 0."""
    return torch.where(x >= 0, _PLUS_ONE.to(x.dtype), _MINUS_ONE.to(x.dtype))


def sign_activation(x, training):
    """Activation binarisation. Training: straight-through with a hardtanh gradient (1 where |x| <= 1);
    eval: exactly binary_sign(x) (the STE form xc + (s - xc) is not always exactly +-1 in float)."""
    if not training:
        return binary_sign(x)
    xc = x.clamp(-1.0, 1.0)
    return xc + (binary_sign(x) - xc).detach()


def int8_weight(w):
    """Per-output-channel symmetric INT8: (q as float, scale [C, 1, ...]) with scale = max|w_c| / 127,
    q = round(w / scale) clamped to [-127, 127]. A channel of zeros gets scale 1 (q = 0)."""
    amax = w.detach().abs().reshape(w.shape[0], -1).amax(1)
    scale = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax)).reshape(-1, *([1] * (w.dim() - 1)))
    q = torch.round(w.detach() / scale).clamp(-127, 127)
    return q, scale


def binary_weight(w):
    """(+-1 signs, alpha [C, 1, ...]) with alpha_c = mean |W_c|."""
    alpha = w.detach().abs().reshape(w.shape[0], -1).mean(1).reshape(-1, *([1] * (w.dim() - 1)))
    return binary_sign(w.detach()), alpha


class QuantWeightMixin:
    """The effective weight of a layer: STE in training (forward value quantised, gradient the identity
    to the latent weight), a plain cached tensor in eval mode, so that the ONNX export holds the
    quantised weight itself as a constant (alpha_c * +-1, or q * scale) and no quantiser ops."""

    kind = None  # 'int8' or 'binary'

    def quantized(self):
        if self.kind == "int8":
            q, scale = int8_weight(self.weight)
            return q * scale
        s, alpha = binary_weight(self.weight)
        return alpha * s

    def effective_weight(self):
        if self.training:
            w = self.weight
            return w + (self.quantized() - w).detach()
        # Eval: the quantised weight as a buffer `weight_q`, computed outside autograd and any trace and
        # kept until the latent weight changes, so an ONNX export holds it as the initializer
        # "<layer>.weight_q" (export_onnx runs one eval forward first so the buffer exists when tracing).
        key = (self.weight.data_ptr(), self.weight._version)
        if getattr(self, "_weight_q_key", None) != key or getattr(self, "weight_q", None) is None:
            state = torch._C._get_tracing_state()
            torch._C._set_tracing_state(None)
            try:
                with torch.no_grad():
                    self.register_buffer("weight_q", self.quantized().detach().clone())
            finally:
                torch._C._set_tracing_state(state)
            self._weight_q_key = key
        return self.weight_q


class Int8Conv2d(QuantWeightMixin, nn.Conv2d):
    kind = "int8"

    def forward(self, x):
        return F.conv2d(x, self.effective_weight(), self.bias, self.stride, self.padding, self.dilation, self.groups)


class BinaryConv2d(QuantWeightMixin, nn.Conv2d):
    """Binary-weight conv: alpha_c * sign(W_c). The input is a +-1 activation; padding is zeros."""
    kind = "binary"

    def forward(self, x):
        return F.conv2d(x, self.effective_weight(), self.bias, self.stride, self.padding, self.dilation, self.groups)


def dense_nchw(x, weight, bias, training):
    """Linear layer on the NCHW flattening of x [N, C, H, W]: F.linear(flatten(x), weight, bias).

    In training it runs as a conv with an H x W kernel (weight viewed as [O, C, H, W]; the same sums),
    because Debian's torch does matrix products with the reference BLAS (several times slower than its
    oneDNN convolutions). Eval mode (and so the ONNX export: Flatten -> Gemm) uses F.linear."""
    if training:
        n, c, h, w = x.shape
        return F.conv2d(x, weight.reshape(weight.shape[0], c, h, w), bias).flatten(1)
    return F.linear(torch.flatten(x, 1), weight, bias)


class Int8Linear(QuantWeightMixin, nn.Linear):
    """INT8-weight dense layer (per output row) with a float bias, on NCHW features."""
    kind = "int8"

    def forward(self, x):
        return dense_nchw(x, self.effective_weight(), self.bias, self.training)


# --------------------------------------------------------------------------- models

class FloatCNN(nn.Module):
    """fashion-float: Conv(1->32)+BN+ReLU, MaxPool 2, Conv(32->64)+BN+ReLU, MaxPool 2, Flatten,
    Linear(3136->128)+ReLU, (Dropout 0.25 in training), Linear(128->10)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)
        self.dropout = nn.Dropout(0.25)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = self.dropout(F.relu(dense_nchw(x, self.fc1.weight, self.fc1.bias, self.training)))
        return self.fc2(x)


class BinaryCNN(nn.Module):
    """fashion-binary / fashion-binary-mst (see the module docstring for the layer list)."""

    def __init__(self, c1=32, c2=64, c3=64, c4=128):
        super().__init__()
        self.conv1 = Int8Conv2d(1, c1, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c1)
        self.conv2 = BinaryConv2d(c1, c2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c2)
        self.conv3 = BinaryConv2d(c2, c3, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(c3)
        self.conv4 = BinaryConv2d(c3, c4, 3, padding=1, bias=False)
        self.bn4 = nn.BatchNorm2d(c4)
        self.fc = Int8Linear(c4 * 7 * 7, 10)

    def binary_layers(self):
        return [("conv2", self.conv2), ("conv3", self.conv3), ("conv4", self.conv4)]

    def forward(self, x):
        t = self.training
        x = sign_activation(F.max_pool2d(self.bn1(self.conv1(x)), 2), t)  # 28 -> 14
        x = sign_activation(F.max_pool2d(self.bn2(self.conv2(x)), 2), t)  # 14 -> 7
        x = sign_activation(self.bn3(self.conv3(x)), t)  # 7
        x = sign_activation(self.bn4(self.conv4(x)), t)  # 7
        return self.fc(x)


def make_model(name):
    if name == "float":
        return FloatCNN()
    if name in ("binary", "binary-mst"):
        return BinaryCNN()
    raise ValueError(f"model: expected one of {MODELS}, got {name!r}")


# --------------------------------------------------------------------------- helpers

def seed_everything(seed, threads=2):
    import random
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np
        np.random.seed(seed)
    except ImportError:
        pass
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


@torch.no_grad()
def predict_logits(model, x, batch=1000):
    """float32 logits of `x` (model input, float) in eval mode."""
    was = model.training
    model.eval()
    out = torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])
    model.train(was)
    return out


def accuracy(logits, labels):
    return (logits.argmax(1) == labels).float().mean().item()


def round_sig(v, digits=6):
    """A float rounded to `digits` significant digits (as a Python float, for JSON)."""
    v = float(v)
    if v == 0 or not math.isfinite(v):
        return v
    return float(f"{v:.{digits - 1}e}")


def slice_report(logits):
    """Predictions, 6-significant-digit logits and top1 - top2 margins of a [N, 10] logits tensor."""
    top2 = logits.topk(2, dim=1).values
    return {
        "slice_predictions": logits.argmax(1).tolist(),
        "slice_logits": [[round_sig(v) for v in row] for row in logits.tolist()],
        "slice_margins": [round_sig(v) for v in (top2[:, 0] - top2[:, 1]).tolist()],
    }


def export_onnx(model, path):
    """torch.onnx.export in eval mode, opset 13, input `input` [N,1,28,28] -> `logits` [N,10], dynamic N.

    training=PRESERVE (the model is in eval mode, so BatchNorm and Dropout export in inference form) keeps
    torch from folding each BatchNorm into the preceding Conv: a fold would multiply the binary weights by
    gamma / sqrt(var) (flipping every sign of a channel with gamma < 0, which changes the channels'
    Hamming distances and so the MST) and the INT8 weights off their grid. The graph therefore holds the
    quantised weights exactly as trained: Conv(x, <layer>.weight_q) -> BatchNormalization."""
    model.eval()
    dummy = torch.zeros(1, 1, 28, 28)
    with torch.no_grad(), warnings.catch_warnings():
        # torch warns about constant folding under PRESERVE for models in *training* mode; this one is in eval.
        warnings.filterwarnings("ignore", message="It is recommended that constant folding be turned off")
        model(dummy)  # materialises the quantised weights (weight_q buffers) before tracing
        torch.onnx.export(model, dummy, path, opset_version=13, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, do_constant_folding=True,
                          training=torch.onnx.TrainingMode.PRESERVE)


def checkpoint_state(model):
    """state_dict without the derived weight_q buffers."""
    return {k: v for k, v in model.state_dict().items() if not k.endswith("weight_q")}


def load_checkpoint_state(model, state):
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("weight_q")]
    unexpected = [k for k in unexpected if not k.endswith("weight_q")]
    if missing or unexpected:
        raise ValueError(f"checkpoint: missing {missing}, unexpected {unexpected}")


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    imgs, labels = load_split(sys.argv[1] if len(sys.argv) > 1 else "t10k")
    print(tuple(imgs.shape), imgs.dtype, tuple(labels.shape), torch.bincount(labels).tolist())

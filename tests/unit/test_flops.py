"""FLOPs, float32 mode and peaks: the three parts of MFU, each checked against a count made another way."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from harness.measure.flops import (
    PEAK_TFLOPS,
    compute_precision,
    flop_counter,
    flops_per_image,
    model_flops_utilisation,
    peak_tflops,
    set_float32_matmul,
)
from harness.zoo.models import build_model

aten = torch.ops.aten


def analytic_conv_flops(x: torch.Tensor, w: torch.Tensor, out: torch.Tensor, groups: int, transposed: bool) -> int:
    """2 x the multiply-adds of one convolution pass, from the layer's shapes alone: each output element
    (each input element for a transposed convolution, which scatters it) meets every kernel tap of the
    channels of its group."""
    n, k = x.shape[0], math.prod(w.shape[2:])
    if transposed:  # weight: (Cin, Cout/groups, *k)
        return 2 * n * x.shape[1] * math.prod(x.shape[2:]) * (out.shape[1] // groups) * k
    return 2 * n * out.shape[1] * math.prod(out.shape[2:]) * (x.shape[1] // groups) * k


CONVS = {  # name: (dims, Cin, Cout, groups, kernel, stride, padding, dilation, transposed)
    "plain 3x3": (2, 8, 16, 1, 3, 1, 1, 1, False),
    "depthwise 3x3 stride 2": (2, 32, 32, 32, 3, 2, 1, 1, False),
    "grouped 3x3 dilated": (2, 16, 24, 4, 3, 1, 2, 2, False),
    "pointwise": (2, 24, 8, 1, 1, 1, 0, 1, False),
    "grouped 1d": (1, 12, 18, 3, 5, 2, 2, 1, False),
    "depthwise 3d": (3, 6, 6, 6, 3, 1, 1, 1, False),
    "transposed grouped": (2, 8, 12, 2, 4, 2, 1, 1, True),
}


def conv_pass(dims: int, cin: int, cout: int, groups: int, kernel: int, stride: int, padding: int, dilation: int,
              transposed: bool, input_grad: bool = True):
    torch.manual_seed(0)
    x = torch.randn(2, cin, *[9] * dims, requires_grad=input_grad)
    shape = (cin, cout // groups) if transposed else (cout, cin // groups)
    w = torch.randn(*shape, *[kernel] * dims, requires_grad=True)
    conv = getattr(F, f"conv_transpose{dims}d" if transposed else f"conv{dims}d")
    return x, w, lambda: conv(x, w, stride=stride, padding=padding, groups=groups, dilation=dilation)


@pytest.mark.parametrize("name", list(CONVS))
@pytest.mark.parametrize("input_grad", [True, False])
def test_each_gradient_of_a_convolution_counts_one_forward(name, input_grad):
    dims, cin, cout, groups, kernel, stride, padding, dilation, transposed = CONVS[name]
    x, w, run = conv_pass(*CONVS[name], input_grad=input_grad)
    with flop_counter() as counter:
        out = run()
        out.sum().backward()
    counts = counter.get_flop_counts()["Global"]
    forward = analytic_conv_flops(x, w, out, groups, transposed)
    assert counts[aten.convolution] == forward
    # the first layer of a network (an input without gradient) needs only the weight gradient
    assert counts[aten.convolution_backward] == forward * (2 if input_grad else 1)


def test_a_plain_convolution_counts_as_torch_counts_it():
    _, _, run = conv_pass(*CONVS["plain 3x3"])
    with FlopCounterMode(display=False) as torch_counter:
        run().sum().backward()
    with flop_counter() as ours:
        run().sum().backward()
    assert ours.get_flop_counts()["Global"] == torch_counter.get_flop_counts()["Global"]


@pytest.mark.parametrize("groups", [32, 4])  # depthwise, grouped
def test_training_a_grouped_convolution_costs_three_forwards(groups):
    layer = torch.nn.Conv2d(32, 32, 3, padding=1, groups=groups)
    x = torch.randn(4, 32, 16, 16, requires_grad=True)  # as inside a network: the input gradient is needed
    forward = flops_per_image(lambda: layer(x), 4)
    train = flops_per_image(lambda: layer(x).sum().backward(), 4)
    assert train == pytest.approx(3 * forward, rel=0.05)
    with FlopCounterMode(display=False) as torch_counter:
        layer(x).sum().backward()
    if groups == 32:  # the count this replaces: the weight gradient counted once per group
        assert torch_counter.get_total_flops() // 4 == forward * (2 + groups)


def test_training_mobilenetv2_costs_three_forwards():
    torch.manual_seed(0)
    # on the meta device: the counter needs the shapes only, and no arithmetic is done
    model = build_model("MobileNetV2").to("meta")  # finetune: every parameter trained
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(2, 3, 64, 64, device="meta"), torch.tensor([0.0, 1.0], device="meta")

    def train_step() -> None:
        model.train()
        optimizer.zero_grad()
        F.binary_cross_entropy_with_logits(model(x).float(), y).backward()
        optimizer.step()

    @torch.no_grad()
    def predict() -> None:
        model.eval()
        torch.sigmoid(model(x))

    train, infer = flops_per_image(train_step, 2), flops_per_image(predict, 2)
    assert train == pytest.approx(3 * infer, rel=0.05), train / infer  # torch's own count: about 20x


# torch >= 2.9 sets the float32 mode through fp32_precision, older torch (the oldest supported) through allow_tf32
MODES = (("cuda", "matmul", "fp32_precision"), ("cudnn", "conv", "fp32_precision"), ("cudnn", "rnn", "fp32_precision")) \
    if hasattr(torch.backends.cuda.matmul, "fp32_precision") else (("cuda", "matmul", "allow_tf32"), ("cudnn", "", "allow_tf32"))


def _mode_holder(library: str, part: str):
    holder = getattr(torch.backends, library)
    return getattr(holder, part) if part else holder


@pytest.fixture
def float32_mode():
    saved = [getattr(_mode_holder(library, part), name) for library, part, name in MODES]
    yield
    for (library, part, name), value in zip(MODES, saved):
        setattr(_mode_holder(library, part), name, value)


def test_the_float32_mode_is_set_explicitly_and_read_back(float32_mode):
    assert set_float32_matmul(tf32=False) == {"matmul": "ieee", "cudnn_conv": "ieee"}
    assert getattr(_mode_holder(*MODES[1][:2]), MODES[1][2]) in ("ieee", False)  # torch's default for cuDNN convolutions is TF32
    assert set_float32_matmul(tf32=True) == {"matmul": "tf32", "cudnn_conv": "tf32"}
    assert getattr(_mode_holder(*MODES[0][:2]), MODES[0][2]) in ("tf32", True)


def test_the_precision_of_the_peak_follows_the_float32_mode():
    assert compute_precision("fp32", {"matmul": "ieee", "cudnn_conv": "ieee"}) == "fp32"
    assert compute_precision("fp32", {"matmul": "ieee", "cudnn_conv": "tf32"}) == "tf32"
    assert compute_precision("bf16", {"matmul": "ieee", "cudnn_conv": "ieee"}) == "bf16"


def test_peaks_match_the_exact_device_name():
    assert peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == (989.5, None)  # SXM5
    assert peak_tflops("NVIDIA H100 PCIe", "bf16") == (756.5, None)
    assert peak_tflops("NVIDIA H100 80GB HBM3", "tf32") == (494.5, None)
    assert peak_tflops("Tesla P100-SXM2-16GB", "fp32") == (10.6, None)
    assert peak_tflops("Tesla P100-PCIE-16GB", "fp32") == (9.3, None)
    assert peak_tflops("NVIDIA A100 80GB PCIe", "tf32") == (156.0, None)
    for name in PEAK_TFLOPS:
        assert PEAK_TFLOPS[name]["fp32"] > 0 and all(v is None or v > 0 for v in PEAK_TFLOPS[name].values())


def test_an_unknown_or_merely_similar_name_has_no_peak():
    for name in ("NVIDIA RTX A1000", "NVIDIA H100", "H100 80GB HBM3", "NVIDIA A100"):
        peak, reason = peak_tflops(name, "fp32")
        assert peak is None and reason == f"peak of {name} at fp32 unknown: add it to harness.measure.flops.PEAK_TFLOPS"
    peak, reason = peak_tflops("Tesla V100-SXM2-16GB", "bf16")
    assert peak is None and "no bf16" in reason
    with pytest.raises(ValueError):
        peak_tflops("NVIDIA L4", "fp64")


def test_mfu_divides_by_the_peak_of_the_precision_used():
    mfu = model_flops_utilisation(10 ** 9, 156_000.0, "NVIDIA A100-SXM4-80GB", "tf32")
    assert mfu["achieved_tflops"] == pytest.approx(156.0) and mfu["mfu"] == pytest.approx(1.0)
    assert mfu["peak_precision"] == "tf32" and mfu["mfu_reason"] is None
    on_v100 = model_flops_utilisation(10 ** 9, 1000.0, "Tesla V100-SXM2-32GB", "tf32")  # TF32 flags do nothing
    assert on_v100["peak_precision"] == "fp32" and on_v100["mfu"] == pytest.approx(1.0 / 15.7)
    cpu = model_flops_utilisation(10 ** 9, 1000.0, None, "fp32")
    assert cpu["mfu"] is None and cpu["mfu_reason"] == "no GPU in use" and cpu["achieved_tflops"] == 1.0
    unknown = model_flops_utilisation(10 ** 9, 1000.0, "NVIDIA RTX A1000", "fp16")
    assert unknown["mfu"] is None and "add it to" in unknown["mfu_reason"]
    no_count = model_flops_utilisation(None, 1000.0, "NVIDIA L4", "fp16")
    assert no_count["mfu"] is None and no_count["mfu_reason"]

"""Model FLOPs utilisation: the FLOPs a step does, the float32 mode it runs in, and the GPU's peak for it.

MFU = FLOPs per image x images/s / the datasheet's dense peak at the precision the matmuls and
convolutions actually ran in. Each of the three parts is here, so that none is guessed.
"""
from typing import Any, Callable

import torch
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

aten = torch.ops.aten
PRECISIONS = ("fp32", "tf32", "fp16", "bf16")

# Dense (non-sparse) peak TFLOP/s of the tensor cores (or, for fp32 and GPUs without tensor cores, of
# the CUDA cores), keyed by the exact name NVML and torch.cuda.get_device_name report. From the vendor
# datasheets; where a datasheet gives only the 2:4-sparse figure, half of it. None: the GPU has no
# such arithmetic path (no TF32 before Ampere, no BF16 before Ampere, no FP16 tensor cores on Pascal,
# whose figure is the packed half2 rate).
_DATASHEETS: tuple[tuple[tuple[str, ...], tuple[float | None, ...]], ...] = (
    # names: (fp32, tf32, fp16, bf16)
    # Pascal: fp16 is the CUDA cores' packed half2 rate, twice fp32 (no tensor cores). NVIDIA Tesla P100 PCIe
    # datasheet (nvidia-tesla-p100-PCIe-datasheet.pdf): 9.3 / 18.7 TFLOPS for the 12 GB and 16 GB cards; Tesla
    # P100 for NVLink (SXM2) datasheet (nvidia-tesla-p100-datasheet.pdf): 10.6 / 21.2.
    (("Tesla P100-PCIE-12GB", "Tesla P100-PCIE-16GB"), (9.3, None, 18.7, None)),
    (("Tesla P100-SXM2-16GB",), (10.6, None, 21.2, None)),
    # Volta: fp16 is the tensor cores' rate (autocast's convolutions and matmuls run there). NVIDIA V100
    # datasheet (volta-v100-datasheet-update-us-1165301-r5.pdf): PCIe 14 / 112, SXM2 15.7 / 125, V100S 16.4 / 130.
    (("Tesla V100-PCIE-16GB", "Tesla V100-PCIE-32GB"), (14.0, None, 112.0, None)),
    (("Tesla V100-SXM2-16GB", "Tesla V100-SXM2-32GB"), (15.7, None, 125.0, None)),
    (("Tesla V100S-PCIE-32GB",), (16.4, None, 130.0, None)),
    (("Tesla T4",), (8.1, None, 65.0, None)),
    # Older drivers report the A100s without the "NVIDIA " prefix.
    (("NVIDIA A100-SXM4-40GB", "A100-SXM4-40GB", "NVIDIA A100-SXM4-80GB", "NVIDIA A100-SXM-80GB",
      "NVIDIA A100-PCIE-40GB", "A100-PCIE-40GB", "NVIDIA A100 80GB PCIe"), (19.5, 156.0, 312.0, 312.0)),
    (("NVIDIA A30",), (10.3, 82.0, 165.0, 165.0)),
    (("NVIDIA A10",), (31.2, 62.5, 125.0, 125.0)),
    (("NVIDIA A40",), (37.4, 74.8, 149.7, 149.7)),
    (("NVIDIA L4",), (30.3, 60.0, 121.0, 121.0)),
    (("NVIDIA L40",), (90.5, 90.5, 181.0, 181.0)),
    (("NVIDIA L40S",), (91.6, 183.0, 366.5, 366.5)),
    (("NVIDIA H100 80GB HBM3", "NVIDIA H200", "NVIDIA GH200 480GB"), (67.0, 494.5, 989.5, 989.5)),  # SXM5
    (("NVIDIA H100 PCIe",), (51.0, 378.0, 756.5, 756.5)),
    (("NVIDIA H100 NVL", "NVIDIA H200 NVL"), (60.0, 417.5, 835.5, 835.5)),
)
PEAK_TFLOPS: dict[str, dict[str, float | None]] = {
    name: dict(zip(PRECISIONS, peaks)) for names, peaks in _DATASHEETS for name in names}


def conv_backward_flop(grad_out_shape: torch.Size, x_shape: torch.Size, w_shape: torch.Size, _bias: Any,
                       _stride: Any, _padding: Any, _dilation: Any, transposed: bool, _output_padding: Any,
                       _groups: int, output_mask: list[bool], out_shape: Any = None, **kwargs: Any) -> int:
    """FLOPs of aten.convolution_backward: one forward's worth for each gradient asked for.

    Every multiply-add of the forward pass (an output element, a kernel tap, an input channel of its
    group) is met once by the input gradient and once by the weight gradient. torch's own formula
    counts the weight gradient as a convolution over all input channels, `groups` times too many: the
    weight gradient of a depthwise convolution read C times its forward (C its channels, 32 to 960 in
    MobileNetV2).
    """
    # w_shape already holds the input channels per group, so the forward count is right for any groups.
    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed=transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def flop_counter() -> FlopCounterMode:
    """torch's flop counter, with the convolution backward formula corrected for grouped convolutions."""
    return FlopCounterMode(display=False, custom_mapping={aten.convolution_backward: conv_backward_flop})


def flops_per_image(step: Callable[[], object], batch: int) -> int:
    """FLOPs one call of step does, per image: matmuls and convolutions, forward and backward
    (torch's count; bias, normalisation, activations and the optimiser are not counted)."""
    with flop_counter() as counter:
        step()
    return int(counter.get_total_flops() // batch)


def set_float32_matmul(tf32: bool) -> dict[str, str]:
    """Make float32 matmuls and cuDNN convolutions run in TF32 (tf32=True) or IEEE float32, explicitly.

    torch's defaults differ by library (cuDNN convolutions in TF32, cuBLAS matmuls in IEEE), so an
    "fp32" run would mix the two. Returns the mode each reads back as, for the run's record.
    """
    mode = "tf32" if tf32 else "ieee"
    backends: Any = torch.backends  # fp32_precision is newer than torch's type stubs
    if hasattr(backends.cuda.matmul, "fp32_precision"):  # torch >= 2.9; mixing it with allow_tf32 is an error
        backends.cuda.matmul.fp32_precision = mode
        backends.cudnn.conv.fp32_precision = mode
        backends.cudnn.rnn.fp32_precision = mode
        return {"matmul": backends.cuda.matmul.fp32_precision, "cudnn_conv": backends.cudnn.conv.fp32_precision}
    backends.cuda.matmul.allow_tf32 = tf32
    backends.cudnn.allow_tf32 = tf32
    return {"matmul": "tf32" if backends.cuda.matmul.allow_tf32 else "ieee",
            "cudnn_conv": "tf32" if backends.cudnn.allow_tf32 else "ieee"}


def compute_precision(precision: str, float32_matmul: dict[str, str]) -> str:
    """The precision whose peak bounds a run: its autocast dtype, or for fp32 the float32 matmul mode
    (set_float32_matmul's return); "tf32" where either matmuls or convolutions use TF32."""
    if precision != "fp32":
        return precision
    return "tf32" if "tf32" in float32_matmul.values() else "fp32"


def peak_tflops(device_name: str, precision: str) -> tuple[float | None, str | None]:
    """The GPU's dense peak TFLOP/s at precision (fp32, tf32, fp16, bf16), matched on the exact device
    name; (None, reason) where it is not known."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    peaks = PEAK_TFLOPS.get(device_name.strip())
    if peaks is None:
        return None, f"peak of {device_name} at {precision} unknown: add it to harness.measure.flops.PEAK_TFLOPS"
    if peaks[precision] is None:
        return None, f"{device_name} has no {precision} arithmetic (its datasheet gives no {precision} peak)"
    return peaks[precision], None


def model_flops_utilisation(flops_per_image: int | None, images_per_s: float | None, device_name: str | None,
                            precision: str, devices: int = 1) -> dict[str, Any]:
    """Achieved TFLOP/s and MFU of a run on `devices` GPUs of one kind (images_per_s: theirs together, the
    peak: theirs together); device_name None means no GPU in use. Every null has a reason."""
    if precision == "tf32" and PEAK_TFLOPS.get(device_name or "", {}).get("tf32", 0.0) is None:
        precision = "fp32"  # the TF32 flags do nothing on a GPU without TF32 (before Ampere)
    achieved = flops_per_image * images_per_s / 1e12 if flops_per_image and images_per_s else None
    peak, reason = peak_tflops(device_name, precision) if device_name is not None else (None, "no GPU in use")
    peak = peak * devices if peak is not None else None
    if reason is None and achieved is None:
        reason = "no FLOP count or no steady-state throughput"
    return {"achieved_tflops": achieved, "peak_tflops": peak, "peak_precision": precision,
            "mfu": achieved / peak if achieved is not None and peak else None, "mfu_reason": reason}

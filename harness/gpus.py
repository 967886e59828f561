"""NVIDIA GPUs by name and compute capability, and which torch builds can run them; imports no torch.

A torch build carries GPU code for some compute capabilities only (its architecture list: torch 2.14 on
CUDA 13 has sm_75 to sm_120, so no P100, sm_60, and no V100, sm_70). The same rule (`runs_on`) answers
before a sweep is queued, where a cluster backend checks the GPUs of its partition against the torch the
jobs will run (`read_torch_build`), and inside the job, where measure.meters checks the GPU it was given.
"""
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

Capability = tuple[int, int]
AMPERE: Capability = (8, 0)  # bf16 and TF32 arithmetic start here
PROBE_TIMEOUT_S = 60  # a container's python may start slowly; torch's import takes seconds on a shared node
# The build docs/site.md installs for a Pascal or Volta site (torch 2.7.1 on CUDA 12.6, from PyPI); its
# architecture list as torch 2.7.1+cu126 reports it (torch._C._cuda_getArchFlags()).
OLDER_GPU_BUILD = ("torch==2.7.1 torchvision==0.22.1", ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"))

# A GPU's name, as a Slurm GRES type, a node feature or NVML writes it, read case-insensitively after the
# vendor's words (nvidia, tesla, geforce, quadro) and with '_', '-', '.' and spaces as one separator:
# "tesla_v100", "A100_80GB", "h100-sxm", "NVIDIA GeForce RTX 3090". Each pattern must not run on into a
# digit (a10 is not a100); where one name begins another (l40, l40s), the longer comes first.
_MODELS: tuple[tuple[str, Capability], ...] = (
    ("k80", (3, 7)), ("k40", (3, 5)), ("m40", (5, 2)), ("m60", (5, 2)),
    ("p100", (6, 0)), ("p40", (6, 1)), ("p4", (6, 1)), ("gtx-?10[5-8]0(-?ti)?", (6, 1)), ("titan-?xp", (6, 1)),
    ("v100s?", (7, 0)), ("titan-?v", (7, 0)),
    ("t4", (7, 5)), ("rtx-?20[6-8]0(-?(ti|super))?", (7, 5)), ("titan-?rtx", (7, 5)),
    ("rtx-?pro-?6000", (12, 0)), ("rtx-?[2-6]000-?ada", (8, 9)), ("rtx-?[468]000", (7, 5)),
    ("a100", (8, 0)), ("a800", (8, 0)), ("a30", (8, 0)),
    ("a10g?", (8, 6)), ("a40", (8, 6)), ("a16", (8, 6)), ("a2", (8, 6)), ("rtx-?a[2-6]000", (8, 6)), ("rtx-?30[5-9]0(-?ti)?", (8, 6)),
    ("l40s", (8, 9)), ("l40", (8, 9)), ("l4", (8, 9)), ("l20", (8, 9)), ("rtx-?40[6-9]0(-?(ti|super))?", (8, 9)),
    ("gh200", (9, 0)), ("h100", (9, 0)), ("h200", (9, 0)), ("h800", (9, 0)), ("h20", (9, 0)),
    ("gb200", (10, 0)), ("b200", (10, 0)), ("b100", (10, 0)), ("gb300", (10, 3)), ("b300", (10, 3)),
    ("rtx-?50[6-9]0(-?ti)?", (12, 0)),
)
_PATTERNS = tuple((re.compile(pattern + r"(?![0-9])"), capability) for pattern, capability in _MODELS)
_VENDOR = re.compile(r"^((nvidia|tesla|geforce|quadro)-?)+")


@dataclass(frozen=True)
class GpuModel:
    name: str  # as matched, upper case: P100, A100, RTX3090
    capability: Capability


def model_named(text: str) -> GpuModel | None:
    """The GPU a name says (a GRES type, a node feature, a device name), or None where it names none known."""
    name = _VENDOR.sub("", re.sub(r"[\s_.\-]+", "-", text.strip().lower()).strip("-"))
    for pattern, capability in _PATTERNS:
        found = pattern.match(name)
        if found:
            return GpuModel(found.group(0).upper(), capability)
    return None


def capability_text(capability: Capability) -> str:
    return f"{capability[0]}.{capability[1]}"


def parse_capability(text: str) -> Capability:
    """A compute capability written as MAJOR.MINOR ("6.0", "8.6"); ValueError for anything else."""
    found = re.fullmatch(r"([1-9][0-9]?)\.([0-9])", text.strip())
    if not found:
        raise ValueError(f"{text!r} is not a compute capability such as \"6.0\" or \"8.6\"")
    return int(found.group(1)), int(found.group(2))


def _numbers(arch_list: list[str] | tuple[str, ...], prefix: str) -> list[int]:
    return sorted(int(a[len(prefix):]) for a in arch_list if a.startswith(prefix) and a[len(prefix):].isdigit())


def runs_on(capability: Capability, arch_list: list[str] | tuple[str, ...]) -> bool:
    """Whether a build with this architecture list runs a GPU of this capability: a binary for sm_XY runs
    on the same major with minor >= Y; PTX for compute_XY is compiled on the fly for any later GPU."""
    major, minor = capability
    number = major * 10 + minor
    return (any(sm // 10 == major and sm <= number for sm in _numbers(arch_list, "sm_"))
            or any(ptx <= number for ptx in _numbers(arch_list, "compute_")))


def arch_range(arch_list: list[str] | tuple[str, ...]) -> str:
    """A build's architectures in a few words: "sm_75-sm_120", "sm_50-sm_90 and PTX compute_90"."""
    sm, ptx = _numbers(arch_list, "sm_"), _numbers(arch_list, "compute_")
    if not sm and not ptx:
        return "no GPU code (a CPU build)"
    binaries = (f"sm_{sm[0]}" if len(sm) == 1 else f"sm_{sm[0]}-sm_{sm[-1]}") if sm else ""
    return " and ".join(filter(None, [binaries, f"PTX compute_{ptx[-1]}" if ptx else ""]))


def install_fix(capability: Capability) -> str:
    """What to install so that the jobs run a GPU of this capability."""
    sm = f"sm_{capability[0]}{capability[1]}"
    packages, arch = OLDER_GPU_BUILD
    if runs_on(capability, arch):
        return (f"install a torch build with {sm} in the jobs' environment, e.g. pip install {packages} "
                "(docs/site.md, \"A Pascal or Volta site\")")
    return f"install a torch build with {sm} in the jobs' environment (torch.cuda.get_arch_list() on a GPU node lists a build's)"


def precision_refusal(gpu: str, capability: Capability, precisions: set[str]) -> str | None:
    """Why a GPU cannot run the arithmetic asked (precisions: fp32, fp16, bf16, tf32), or None where it can:
    bf16 and TF32 need Ampere (8.0) or later. fp16 runs on Pascal, without tensor cores (its half2 rate)."""
    asked = [option for name, option in (("bf16", "--precision bf16"), ("tf32", "--tf32")) if name in precisions]
    if not asked or capability >= AMPERE:
        return None
    need = "need" if len(asked) > 1 else "needs"
    return (f"{' and '.join(asked)} {need} compute capability {capability_text(AMPERE)} (Ampere) or later, but the GPU "
            f"{gpu} is {capability_text(capability)}: use --precision fp16 (its fp16 peak bounds MFU) or fp32, without --tf32")


@dataclass(frozen=True)
class TorchBuild:
    """The torch the jobs will run: its version and architecture list, or why it could not be read here."""

    source: str  # "this Python (PATH)", or 'python = "..."' of the profile
    version: str | None = None
    arch: tuple[str, ...] = ()
    unreadable: str | None = None

    def describe(self) -> str:
        """"torch 2.14.1+cu130 of this Python (...), with sm_75-sm_120", or why it is not known."""
        if self.unreadable:
            return f"unknown: {self.source} did not run here ({self.unreadable})"
        return f"torch {self.version} of {self.source}, with {arch_range(self.arch)}"


# Run by the jobs' python: the build's own list, which older torch's get_arch_list() hides without a GPU.
PROBE = ("import json, torch; flags = getattr(torch._C, '_cuda_getArchFlags', lambda: None)(); "
         "print(json.dumps({'torch': torch.__version__, 'arch': (flags or '').split()}))")


def read_torch_build(python: str | None, timeout: float = PROBE_TIMEOUT_S) -> TorchBuild:
    """The torch of the command line that runs the jobs' Python (a profile's `python`: a container's, a
    module's), asked once, here; this interpreter's where python is None. Never raises: a python that
    cannot run here (a container runtime only the nodes have) gives its reason in `unreadable`."""
    source = f'python = "{python}"' if python else f"this Python ({sys.executable})"
    try:
        command = shlex.split(python) if python else [sys.executable]
        done = subprocess.run([*command, "-c", PROBE], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except ValueError as err:
        return TorchBuild(source, unreadable=f"not a command line: {err}")
    except subprocess.TimeoutExpired:
        return TorchBuild(source, unreadable=f"no answer within {timeout:.0f} s")
    except OSError as err:
        return TorchBuild(source, unreadable=err.strerror or type(err).__name__)
    said = [line for line in done.stdout.splitlines() if line.strip()]
    try:
        answer = json.loads(said[-1]) if done.returncode == 0 and said else None
    except ValueError:
        answer = None
    if not (isinstance(answer, dict) and isinstance(answer.get("torch"), str) and isinstance(answer.get("arch"), list)
            and all(isinstance(a, str) for a in answer["arch"])):
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}, no torch version printed"])[-1]
        return TorchBuild(source, unreadable=why[:200])
    return TorchBuild(source, answer["torch"][:60], tuple(a[:20] for a in answer["arch"][:64]))


def nvidia_gpus() -> int:
    """The NVIDIA GPUs this process may use: those the driver lists (asked of /proc: no torch, no CUDA
    context), as many as CUDA_VISIBLE_DEVICES names where it is set."""
    listed = len(list(Path("/proc/driver/nvidia/gpus").glob("*")))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return listed if visible is None else min(listed, len([d for d in visible.split(",") if d.strip()]))


def has_nvidia_gpu() -> bool:
    """Whether the NVIDIA driver lists a GPU here."""
    return any(Path("/proc/driver/nvidia/gpus").glob("*"))

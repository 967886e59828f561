"""NASNet-A Mobile (4 cells per stack, 1056 features, stem 32), assembled from timm's NASNet cells.

timm ships only NASNet-A Large. The Mobile network differs in size and in one wire: Keras builds it
with ``skip_reduction=False``, so the first cell after each reduction cell takes as its second input
the reduction cell's own input (the last normal cell), where Large skips back one cell further.
"""
from functools import partial

import torch
from timm.layers import ConvNormAct, create_classifier
from timm.models import register_model
from timm.models._builder import build_model_with_cfg
from timm.models._registry import generate_default_cfgs
from timm.models.nasnet import CellStem0, CellStem1, FirstCell, NormalCell, ReductionCell0, ReductionCell1
from torch import nn


class NASNetAMobile(nn.Module):
    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        stem_size: int = 32,
        num_features: int = 1056,
        cells_per_stack: int = 4,
        channel_multiplier: int = 2,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
        pad_type: str = "same",
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = num_features
        self.drop_rate = drop_rate
        channels = num_features // 24
        self.conv0 = ConvNormAct(
            in_chans, stem_size, kernel_size=3, padding=0, stride=2,
            norm_layer=partial(nn.BatchNorm2d, eps=0.001, momentum=0.1), apply_act=False,
        )
        self.cell_stem_0 = CellStem0(stem_size, num_channels=channels // channel_multiplier**2, pad_type=pad_type)
        self.cell_stem_1 = CellStem1(stem_size, num_channels=channels // channel_multiplier, pad_type=pad_type)

        cells: list[nn.Module] = []
        # (width of the stack's cells, width of the previous cell output, of the one before it)
        width, out_prev, out_prev_prev = channels, 2 * channels, channels
        for stack in range(3):
            if stack > 0:
                reduction = ReductionCell0 if stack == 1 else ReductionCell1
                cells.append(reduction(
                    in_chs_left=out_prev, out_chs_left=2 * width,
                    in_chs_right=out_prev, out_chs_right=2 * width, pad_type=pad_type,
                ))
                # A reduction cell outputs 4 branches of its width; the next cell's skip input is the
                # reduction cell's own input, whose width is out_prev.
                width *= 2
                out_prev_prev, out_prev = out_prev, 4 * width
            cells.append(FirstCell(
                in_chs_left=out_prev_prev, out_chs_left=width // 2,
                in_chs_right=out_prev, out_chs_right=width, pad_type=pad_type,
            ))
            out_prev_prev, out_prev = out_prev, 6 * width
            for _ in range(cells_per_stack - 1):
                cells.append(NormalCell(
                    in_chs_left=out_prev_prev, out_chs_left=width,
                    in_chs_right=out_prev, out_chs_right=width, pad_type=pad_type,
                ))
                out_prev_prev = out_prev
        self.cells = nn.ModuleList(cells)
        self.act = nn.ReLU(inplace=True)
        self.feature_info = [dict(num_chs=num_features, reduction=32, module="act")]
        self.head_drop = nn.Dropout(drop_rate)
        self.global_pool: nn.Module
        self.last_linear: nn.Module
        self.reset_classifier(num_classes, global_pool)

    def get_classifier(self) -> nn.Module:
        return self.last_linear

    def reset_classifier(self, num_classes: int, global_pool: str = "avg") -> None:
        self.num_classes = num_classes
        self.global_pool, self.last_linear = create_classifier(self.num_features, num_classes, pool_type=global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x_conv0 = self.conv0(x)
        x_stem_0 = self.cell_stem_0(x_conv0)
        x, x_prev = self.cell_stem_1(x_conv0, x_stem_0), x_stem_0
        for cell in self.cells:
            # Every cell, reduction cells included, hands its own input on as the next cell's skip input.
            x, x_prev = cell(x, x_prev), x
        return self.act(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.global_pool(x))
        return x if pre_logits else self.last_linear(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


default_cfgs = generate_default_cfgs({
    # No timm weights exist; the config records Keras' preprocessing for this network ("tf" mode).
    "nasnetamobile.untrained": {
        "input_size": (3, 224, 224), "pool_size": (7, 7), "crop_pct": 0.875, "interpolation": "bilinear",
        "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "num_classes": 1000,
        "first_conv": "conv0.conv", "classifier": "last_linear",
    },
})


@register_model
def nasnetamobile(pretrained: bool = False, **kwargs) -> NASNetAMobile:
    """NASNet-A Mobile (4 @ 1056), wired as Keras' NASNetMobile."""
    return build_model_with_cfg(
        NASNetAMobile, "nasnetamobile", pretrained,
        feature_cfg=dict(feature_cls="hook", no_rewrite=True), **kwargs,
    )

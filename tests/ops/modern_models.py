"""Small models written the way torchvision and timm write today's families (tiny widths).

torchvision and timm cannot be imported where the tests run, so each construct those families
use is reproduced here as they use it: a ViT's class token and position embedding, ConvNeXt's
channels-first LayerNorm and layer scale, Swin's window attention with a relative-position
bias table, EfficientNet's MBConv with squeeze-excitation and stochastic depth, ShuffleNet's
channel shuffle, MobileViT's unfold/fold, a recurrent text classifier, and a factory.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn


def stochastic_depth(input, p, mode, training=True):
    """torchvision.ops.stochastic_depth (without its logging)."""
    if not training or p == 0.0:
        return input
    survival_rate = 1.0 - p
    size = [input.shape[0]] + [1] * (input.ndim - 1) if mode == "row" else [1] * input.ndim
    noise = torch.empty(size, dtype=input.dtype, device=input.device)
    noise = noise.bernoulli_(survival_rate)
    if survival_rate > 0.0:
        noise.div_(survival_rate)
    return input * noise


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, input):
        return stochastic_depth(input, self.p, self.mode, self.training)


class DropPath(nn.Module):
    """timm.layers.DropPath."""

    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True):
        super().__init__()
        self.drop_prob = drop_prob
        self.scale_by_keep = scale_by_keep

    def forward(self, x):
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep_prob = 1 - self.drop_prob
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        random_tensor = x.new_empty(shape).bernoulli_(keep_prob)
        if keep_prob > 0.0 and self.scale_by_keep:
            random_tensor.div_(keep_prob)
        return x * random_tensor


# ----- ViT: class token, position embedding, attention, class-token pooling ------------------


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        x = x.transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, torch_attention: bool, drop_path: float) -> None:
        super().__init__()
        self.torch_attention = torch_attention
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        if torch_attention:
            self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        else:
            self.attn = Attention(dim, heads)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 2), nn.GELU(), nn.Linear(dim * 2, dim))

    def forward(self, input):
        torch._assert(input.dim() == 3, f"Expected (batch, seq, hidden) got {input.shape}")
        x = self.norm1(input)
        if self.torch_attention:
            x, _ = self.attn(x, x, x, need_weights=False)
        else:
            x = self.attn(x)
        x = input + self.drop_path(x)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class TinyViT(nn.Module):
    def __init__(self, image_size: int = 8, patch: int = 4, dim: int = 16, classes: int = 5):
        super().__init__()
        self.patch = patch
        self.dim = dim
        self.grid = image_size // patch
        self.conv_proj = nn.Conv2d(3, dim, patch, stride=patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.empty(1, self.grid**2 + 1, dim).normal_(std=0.02))
        self.blocks = nn.Sequential(
            EncoderBlock(dim, 2, torch_attention=False, drop_path=0.1),
            EncoderBlock(dim, 2, torch_attention=True, drop_path=0.0),
        )
        self.ln = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    def position(self, h: int, w: int):
        """The position embedding resized to the patch grid (timm's dynamic image size)."""
        grid = self.pos_embedding[:, 1:].reshape(1, self.grid, self.grid, self.dim)
        grid = F.interpolate(grid.permute(0, 3, 1, 2), size=(h, w), mode="bilinear")
        grid = grid.permute(0, 2, 3, 1).flatten(1, 2)
        return torch.cat([self.pos_embedding[:, :1], grid], dim=1)

    def forward(self, x):
        n, c, h, w = x.shape  # noqa: RUF059 - as torchvision writes it
        torch._assert(h % self.patch == 0, f"Wrong image height {h}")
        n_h, n_w = h // self.patch, w // self.patch
        x = self.conv_proj(x)
        x = x.reshape(n, self.dim, n_h * n_w).permute(0, 2, 1)
        batch_class_token = self.class_token.expand(n, -1, -1)
        x = torch.cat([batch_class_token, x], dim=1)
        x = x + self.position(n_h, n_w)
        x = self.ln(self.blocks(x))
        return self.head(x[:, 0])


# ----- ConvNeXt: channels-first LayerNorm through F.layer_norm, layer scale -------------------


class LayerNorm2d(nn.LayerNorm):
    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    def __init__(self, dim: int, layer_scale: float, sd_prob: float) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim),
            LayerNorm2d(dim, eps=1e-6),
            nn.Conv2d(dim, 4 * dim, 1),
            nn.GELU(),
            nn.Conv2d(4 * dim, dim, 1),
        )
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)
        self.stochastic_depth = StochasticDepth(sd_prob, "row")

    def forward(self, input):
        result = self.layer_scale * self.block(input)
        result = self.stochastic_depth(result)
        result += input
        return result


class TinyConvNeXt(nn.Module):
    def __init__(self, dims: tuple[int, int] = (8, 16), classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, dims[0], 4, stride=4), LayerNorm2d(dims[0]))
        self.stage1 = CNBlock(dims[0], 1e-6, 0.1)
        self.down = nn.Sequential(LayerNorm2d(dims[0]), nn.Conv2d(dims[0], dims[1], 2, stride=2))
        self.stage2 = CNBlock(dims[1], 1e-6, 0.2)
        self.norm = nn.LayerNorm(dims[1])
        self.head = nn.Linear(dims[1], classes)

    def forward(self, x):
        x = self.stage2(self.down(self.stage1(self.stem(x))))
        x = x.mean([-2, -1])
        return self.head(self.norm(x))


# ----- Swin: window attention, relative-position bias table and index, shape arithmetic -------


def window_partition(x, window_size: int):
    B, H, W, C = x.shape
    x = x.view(B, H // window_size, window_size, W // window_size, window_size, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, window_size, window_size, C)


def window_reverse(windows, window_size: int, H, W):
    C = windows.shape[-1]
    x = windows.view(-1, H // window_size, W // window_size, window_size, window_size, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, H, W, C)


class WindowAttention(nn.Module):
    def __init__(self, dim: int, window_size: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads)
        )
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size),
                                            indexing="ij")).flatten(1)
        relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
        relative[:, :, 0] += window_size - 1
        relative[:, :, 1] += window_size - 1
        relative[:, :, 0] *= 2 * window_size - 1
        self.register_buffer("relative_position_index", relative.sum(-1), persistent=False)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):
        B_, N, C = x.shape
        qkv = self.qkv(x).reshape(B_, N, 3, self.num_heads, C // self.num_heads)
        qkv = qkv.permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = q * self.scale
        attn = q @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(N, N, -1).permute(2, 0, 1).contiguous()
        attn = self.softmax(attn + bias.unsqueeze(0))
        x = (attn @ v).transpose(1, 2).reshape(B_, N, C)
        return self.proj(x)


class SwinBlock(nn.Module):
    def __init__(self, dim: int, window_size: int, shift: int) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, 2)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        B, H, W, C = x.shape  # noqa: RUF059 - as timm writes it
        shortcut = x
        x = self.norm1(x)
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = window_partition(x, self.window_size)
        windows = windows.view(-1, self.window_size * self.window_size, C)
        attn = self.attn(windows).view(-1, self.window_size, self.window_size, C)
        x = window_reverse(attn, self.window_size, H, W)
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class TinySwin(nn.Module):
    def __init__(self, dim: int = 8, classes: int = 5) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, 2, stride=2)
        self.blocks = nn.Sequential(SwinBlock(dim, 2, 0), SwinBlock(dim, 2, 1))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed(x).permute(0, 2, 3, 1)
        x = self.norm(self.blocks(x))
        return self.head(x.mean(dim=(1, 2)))


# ----- EfficientNet: MBConv with squeeze-excitation and stochastic depth ----------------------


class SqueezeExcitation(nn.Module):
    def __init__(self, input_channels: int, squeeze_channels: int,
                 activation=nn.ReLU, scale_activation=nn.Sigmoid) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def _scale(self, input):
        scale = self.fc2(self.activation(self.fc1(self.avgpool(input))))
        return self.scale_activation(scale)

    def forward(self, input):
        return self._scale(input) * input


def conv_bn_act(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
                act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.SiLU(inplace=True))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, stride: int, sd_prob: float) -> None:
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        mid = cin * expand
        self.block = nn.Sequential(
            conv_bn_act(cin, mid, 1),
            conv_bn_act(mid, mid, 3, stride, groups=mid),
            SqueezeExcitation(mid, max(1, cin // 4), activation=nn.SiLU),
            conv_bn_act(mid, cout, 1, act=False),
        )
        self.stochastic_depth = StochasticDepth(sd_prob, "row")

    def forward(self, input):
        result = self.block(input)
        if self.use_res_connect:
            result = self.stochastic_depth(result)
            result += input
        return result


class TinyEfficientNet(nn.Module):
    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_act(3, 8, 3, 2),
            MBConv(8, 8, 2, 1, 0.1),
            MBConv(8, 12, 2, 2, 0.2),
            MBConv(12, 12, 2, 1, 0.2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2, inplace=True), nn.Linear(12, classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


# ----- ShuffleNet: channel shuffle ----------------------------------------------------------


def channel_shuffle(x, groups: int):
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, -1, height, width)


class ShuffleUnit(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.branch2 = nn.Sequential(
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 3, padding=1, groups=half, bias=False), nn.BatchNorm2d(half),
        )

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        out = torch.cat((x1, self.branch2(x2)), dim=1)
        return channel_shuffle(out, 2)


class TinyShuffleNet(nn.Module):
    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8),
                                   nn.ReLU(inplace=True))
        self.stage = nn.Sequential(ShuffleUnit(8), ShuffleUnit(8))
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        x = self.stage(self.conv1(x))
        return self.fc(x.mean([2, 3]))


# ----- MobileViT: unfold into patches, transformer, fold back ---------------------------------


class MobileViTBlock(nn.Module):
    """MobileViT v1's reshape unfolding, and v2's F.unfold/F.fold (``use_fold``)."""

    def __init__(self, channels: int, dim: int, patch: int, use_fold: bool) -> None:
        super().__init__()
        self.patch_h = self.patch_w = patch
        self.use_fold = use_fold
        self.conv_kxk = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv_1x1 = nn.Conv2d(channels, dim, 1, bias=False)
        layer = nn.TransformerEncoderLayer(dim, 2, dim_feedforward=2 * dim, dropout=0.0,
                                           batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.conv_proj = nn.Conv2d(dim, channels, 1)
        self.conv_fusion = nn.Conv2d(2 * channels, channels, 3, padding=1)

    def unfolding(self, x):
        patch_area = self.patch_w * self.patch_h
        batch_size, in_channels, orig_h, orig_w = x.shape
        num_patch_h, num_patch_w = orig_h // self.patch_h, orig_w // self.patch_w
        num_patches = num_patch_h * num_patch_w
        x = x.reshape(batch_size * in_channels * num_patch_h, self.patch_h, num_patch_w,
                      self.patch_w)
        x = x.transpose(1, 2).reshape(batch_size, in_channels, num_patches, patch_area)
        x = x.transpose(1, 3).reshape(batch_size * patch_area, num_patches, -1)
        info = {"batch_size": batch_size, "num_patches_h": num_patch_h,
                "num_patches_w": num_patch_w}
        return x, info

    def folding(self, x, info):
        patch_area = self.patch_w * self.patch_h
        channels = x.shape[-1]
        x = x.contiguous().view(info["batch_size"], patch_area, -1, channels).transpose(1, 3)
        num_patch_h, num_patch_w = info["num_patches_h"], info["num_patches_w"]
        x = x.reshape(info["batch_size"] * channels * num_patch_h, num_patch_w, self.patch_h,
                      self.patch_w)
        x = x.transpose(1, 2)
        return x.reshape(info["batch_size"], channels, num_patch_h * self.patch_h,
                         num_patch_w * self.patch_w)

    def forward(self, x):
        shortcut = x
        x = self.conv_1x1(self.conv_kxk(x))
        if self.use_fold:
            B, C, H, W = x.shape
            kernel = (self.patch_h, self.patch_w)
            patches = F.unfold(x, kernel_size=kernel, stride=kernel)
            patches = patches.reshape(B, C, self.patch_h * self.patch_w, -1)
            patches = patches.permute(0, 2, 3, 1).reshape(B * self.patch_h * self.patch_w, -1, C)
            patches = self.transformer(patches)
            patches = patches.reshape(B, self.patch_h * self.patch_w, -1, C).permute(0, 3, 1, 2)
            patches = patches.reshape(B, C * self.patch_h * self.patch_w, -1)
            x = F.fold(patches, output_size=(H, W), kernel_size=kernel, stride=kernel)
        else:
            patches, info = self.unfolding(x)
            x = self.folding(self.transformer(patches), info)
        x = self.conv_proj(x)
        return self.conv_fusion(torch.cat((shortcut, x), dim=1))


class TinyMobileViT(nn.Module):
    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.v1 = MobileViTBlock(8, 8, 2, use_fold=False)
        self.v2 = MobileViTBlock(8, 8, 2, use_fold=True)
        self.head = nn.Linear(8, classes)

    def forward(self, x):
        x = self.v2(self.v1(self.stem(x)))
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


class PaddedPatches(nn.Module):
    """timm's MobileViT resizes when the size is not a multiple of the patch: a branch on a
    size, which symbolic tracing cannot decide."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 2, stride=2)

    def forward(self, x):
        B, C, H, W = x.shape  # noqa: RUF059 - as timm writes it
        new_h, new_w = math.ceil(H / 2) * 2, math.ceil(W / 2) * 2
        if new_h != H or new_w != W:
            x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False)
        return self.conv(x).flatten(1)


class FourierPositions(nn.Module):
    """timm's EdgeNeXt positional encoding: reads a layer's weight for its device and dtype,
    makes a grid of the input's size, then calls that layer."""

    def __init__(self, dim: int = 8, hidden: int = 4) -> None:
        super().__init__()
        self.hidden = hidden
        self.stem = nn.Conv2d(3, dim, 3, padding=1)
        self.token_projection = nn.Conv2d(2 * hidden, dim, 1)

    def forward(self, x):
        x = self.stem(x)
        B, C, H, W = x.shape  # noqa: RUF059 - as timm writes it
        device = self.token_projection.weight.device
        dtype = self.token_projection.weight.dtype
        mask = ~torch.zeros((B, 2 * self.hidden, H, W)).to(device=device, dtype=torch.bool)
        grid = mask.cumsum(2, dtype=torch.float32) / H
        return x + self.token_projection(grid.to(dtype))


# ----- text: embedding, LSTM/GRU, last-step slicing -----------------------------------------


class TextClassifier(nn.Module):
    def __init__(self, vocabulary: int = 100, dim: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, dim, padding_idx=0)
        self.lstm = nn.LSTM(dim, dim, batch_first=True, bidirectional=True)
        self.gru = nn.GRU(2 * dim, dim, batch_first=True)
        self.dropout = nn.Dropout(0.1)
        self.head = nn.Linear(dim, classes)

    def forward(self, tokens):
        x = self.embedding(tokens)
        out, _ = self.lstm(x)
        out, hidden = self.gru(out)
        last = out[:, -1, :]
        return self.head(self.dropout(last)) + hidden[-1].sum(-1, keepdim=True) * 0


class PairModel(nn.Module):
    """Two inputs: token ids and a float mask."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(50, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, tokens, mask):
        x = self.embedding(tokens) * mask.unsqueeze(-1)
        return self.head(x.sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0))


# ----- a model made by a factory; a custom layer that stores a derived value -----------------


def make_classifier(width: int = 8, depth: int = 2, classes: int = 4) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes)]
    return nn.Sequential(*layers)


class Shift(nn.Module):
    """Adds ``shift``; keeps twice the value (so its attribute is not its argument)."""

    def __init__(self, shift: float = 1.0) -> None:
        super().__init__()
        self.shift = shift * 2

    def forward(self, x):
        if x.sum() > 1e9:  # data-dependent: must be kept whole (--leaf Shift)
            return x
        return x + self.shift / 2


class Shifted(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.shift = Shift(0.75)

    def forward(self, x):
        return self.shift(self.fc(x))


# A module object built elsewhere (its constructor ran without Forge watching).
SHIFTED = copy.deepcopy(Shifted())


class Unchecked(nn.Module):
    """Its first layer gives no clue about the input it takes."""

    def __init__(self) -> None:
        super().__init__()
        self.act = nn.GELU()
        self.scale = math.sqrt(2.0)

    def forward(self, x):
        return self.act(x) * self.scale

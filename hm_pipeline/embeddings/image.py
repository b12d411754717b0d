"""Image embeddings with a timm backbone. With a local checkpoint file, its weights are
loaded and the pooled features embed every image. Otherwise the backbone learns from the
catalogue itself: a multi-task head predicts product type, colour group and graphical
appearance from a sample of images at the images' own small resolution, and the bottleneck
before the heads is the embedding. Articles without an image are flagged and take the mean of
their product code (then product type) rather than a made-up vector."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch import nn

from hm_pipeline.embeddings.common import fill_from_groups, normalize, to_table
from hm_pipeline.models.common import pick_device, seeded_generator
from hm_pipeline.models.configs import ImageConfig

TARGETS = ("product_type_no", "colour_group_code", "graphical_appearance_no")


def load_images(raw_dir: Path, paths: list[str], height: int, width: int) -> torch.Tensor:
    """uint8 (n, 3, height, width), resized where an image's size differs."""
    from PIL import Image

    def one(rel: str) -> np.ndarray:
        with Image.open(Path(raw_dir) / rel) as src:
            rgb = src.convert("RGB")
        if rgb.size != (width, height):
            rgb = rgb.resize((width, height))
        return np.asarray(rgb, dtype=np.uint8)

    with ThreadPoolExecutor(max_workers=4) as pool:
        arrays = list(pool.map(one, paths, chunksize=256))
    if not arrays:
        return torch.zeros((0, 3, height, width), dtype=torch.uint8)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _to_float(x: torch.Tensor) -> torch.Tensor:
    return (x.float() / 255.0 - 0.5) / 0.25


class MultiTask(nn.Module):
    """Backbone -> pooled features -> bottleneck (the embedding) -> one head per target."""

    def __init__(self, backbone: nn.Module, dim: int, classes: list[int], height: int, width: int):
        super().__init__()
        self.backbone = backbone
        with torch.no_grad():  # the pooled width (timm's num_features misses some heads)
            backbone.eval()
            features = backbone(torch.zeros(1, 3, height, width)).shape[1]
        self.bottleneck = nn.Sequential(nn.Linear(features, dim), nn.BatchNorm1d(dim))
        self.heads = nn.ModuleList(nn.Linear(dim, c) for c in classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(self.backbone(x))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        z = torch.relu(self.embed(x))
        return [head(z) for head in self.heads]


def create_backbone(cfg: ImageConfig) -> nn.Module:
    """The timm backbone without a classifier (pooled features out), from the checkpoint file
    when one is configured; never from a hub."""
    import timm

    if cfg.checkpoint_path and not Path(cfg.checkpoint_path).is_file():
        raise FileNotFoundError(f"image checkpoint {cfg.checkpoint_path} does not exist")
    return timm.create_model(
        cfg.backbone,
        pretrained=False,
        num_classes=0,
        checkpoint_path=cfg.checkpoint_path or "",
    )


def _labels(arts: pl.DataFrame) -> tuple[np.ndarray, list[int]]:
    cols, classes = [], []
    for name in TARGETS:
        codes = arts[name].rank("dense").fill_null(1).cast(pl.Int64).to_numpy() - 1
        cols.append(codes)
        classes.append(int(codes.max(initial=0)) + 1)
    return np.stack(cols, axis=1), classes


def train_multitask(
    images: torch.Tensor, labels: np.ndarray, classes: list[int], cfg: ImageConfig
) -> tuple[MultiTask, list[float], dict[str, float]]:
    """Train on 90% of the images; returns the model (CPU, eval), each epoch's loss and the
    accuracy of each head on the other 10%."""
    device = pick_device()
    gen = seeded_generator(cfg.seed)
    model = MultiTask(create_backbone(cfg), cfg.dim, classes, cfg.height, cfg.width).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    n = len(images)
    perm = torch.randperm(n, generator=gen).numpy()
    n_val = max(1, n // 10) if n >= 20 else 0
    val, train = perm[:n_val], perm[n_val:]
    y = torch.as_tensor(labels)
    steps = max(1, cfg.epochs * ((len(train) + cfg.batch_size - 1) // cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    losses = []
    for _ in range(cfg.epochs):
        model.train()
        order = train[torch.randperm(len(train), generator=gen).numpy()]
        total = 0.0
        for s in range(0, len(order), cfg.batch_size):
            idx = order[s : s + cfg.batch_size]
            if len(idx) < 2:  # batch norm needs two
                continue
            x = _to_float(images[idx]).to(device)
            if torch.rand(1, generator=gen).item() < 0.5:
                x = torch.flip(x, dims=[3])  # garments are left-right symmetric
            outs = model(x)
            loss = sum(
                nn.functional.cross_entropy(o, y[idx, j].to(device)) for j, o in enumerate(outs)
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        losses.append(total / max(len(train), 1))
    model = model.cpu().eval()
    accuracy = {}
    if n_val:
        with torch.no_grad():
            outs = model(_to_float(images[val]))
        for j, name in enumerate(TARGETS):
            accuracy[f"val_accuracy_{name}"] = float(
                (outs[j].argmax(1) == y[val, j]).float().mean()
            )
            majority = np.bincount(labels[train, j]).argmax()
            accuracy[f"majority_{name}"] = float((labels[val, j] == majority).mean())
    return model, losses, accuracy


@torch.no_grad()
def embed_all(
    embed, raw_dir: Path, paths: list[str], cfg: ImageConfig, chunk: int = 4096
) -> np.ndarray:
    """embed(float images) for every path, loading the images chunk by chunk."""
    out = []
    for s in range(0, len(paths), chunk):
        x = _to_float(load_images(raw_dir, paths[s : s + chunk], cfg.height, cfg.width))
        x = x.contiguous(memory_format=torch.channels_last)
        out.append(torch.cat([embed(x[b : b + 512]) for b in range(0, len(x), 512)]).numpy())
    return np.concatenate(out) if out else np.zeros((0, cfg.dim), np.float32)


def image_embeddings(
    articles: pl.DataFrame, manifest: pl.DataFrame, raw_dir: Path, cfg: ImageConfig
) -> tuple[pl.DataFrame, dict, nn.Module]:
    """Embeddings of every catalogue article, what made them (for the record) and the model."""
    arts = articles.sort("article_id").join(
        manifest.select("article_id", "path", "has_image"), on="article_id", how="left"
    )
    has = arts["has_image"].fill_null(False).to_numpy()
    paths = arts["path"].to_numpy()
    info: dict = {"config": cfg.to_dict(), "images": int(has.sum()), "articles": arts.height}
    if cfg.checkpoint_path:
        backbone = create_backbone(cfg).eval()
        model: nn.Module = backbone
        embed = backbone
        info["weights"] = (
            "checkpoint sha1 "
            + hashlib.sha1(Path(cfg.checkpoint_path).read_bytes()).hexdigest()[:12]
        )
    else:
        labels, classes = _labels(arts)
        rng = np.random.default_rng(cfg.seed)
        with_image = np.flatnonzero(has)
        sample = np.sort(
            rng.choice(with_image, min(cfg.max_train_images, len(with_image)), replace=False)
        )
        images = load_images(raw_dir, list(paths[sample]), cfg.height, cfg.width)
        model, losses, accuracy = train_multitask(images, labels[sample], classes, cfg)
        del images
        embed = model.embed
        info |= {"weights": "learned from the catalogue", "trained_on": len(sample)}
        info |= {"losses": losses, **accuracy}
    dim = None
    x = np.zeros((len(arts), 1), np.float32)
    if has.any():
        # channels-last convolutions are the faster kernels on the CPU; the weights go back to
        # the usual layout afterwards
        model.to(memory_format=torch.channels_last)
        try:
            got = embed_all(embed, raw_dir, list(paths[has]), cfg)
        finally:
            model.to(memory_format=torch.contiguous_format)
        dim = got.shape[1]
        x = np.zeros((len(arts), dim), np.float32)
        x[has] = normalize(got)
    vectors, origin = fill_from_groups(
        x, has, [arts["product_code"].to_numpy(), arts["product_type_no"].to_numpy()]
    )
    info["without_image"] = int((~has).sum())
    return to_table(arts["article_id"].to_numpy(), vectors, origin), info, model

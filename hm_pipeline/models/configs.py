"""The settings of the torch models, apart from the models: plain frozen dataclasses, so that
the asset definitions (and every step process, which imports them) read their defaults without
importing torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass


class _Config:
    def to_dict(self) -> dict:
        """A JSON-friendly dict."""
        return asdict(self)


@dataclass(frozen=True)
class NeuMFConfig(_Config):
    """Sizes and training knobs."""

    gmf_dim: int = 16
    mlp_dim: int = 32
    mlp_layers: tuple[int, ...] = (64, 32, 16)
    epochs: int = 2
    batch_size: int = 4096
    lr: float = 3e-3
    weight_decay: float = 1e-6
    seed: int = 0


@dataclass(frozen=True)
class MultVAEConfig(_Config):
    """Sizes and training knobs (the paper's 600-200 with dropout 0.5 and annealed beta)."""

    hidden: int = 600
    latent: int = 200
    dropout: float = 0.5
    epochs: int = 3
    batch_size: int = 512
    lr: float = 1e-3
    beta_max: float = 0.2
    anneal_steps: int = 2000
    seed: int = 0


@dataclass(frozen=True)
class TwoTowerConfig(_Config):
    """Sizes and training knobs."""

    dim: int = 64
    hidden: int = 128
    history_days: int = 91
    history_halflife_days: float = 21.0
    train_weeks: int = 8
    max_train_examples: int = 1_500_000  # most recent kept first when there are more
    random_negatives: int = 1024
    epochs: int = 2
    batch_size: int = 1024
    lr: float = 4e-3
    weight_decay: float = 1e-6
    seed: int = 0


@dataclass(frozen=True)
class ImageConfig(_Config):
    """The backbone, an optional local checkpoint, and the training knobs."""

    backbone: str = "mobilenetv3_small_100"
    checkpoint_path: str = ""  # a local timm/torch state_dict; empty = learn from the catalogue
    height: int = 96
    width: int = 64
    dim: int = 128
    epochs: int = 2
    max_train_images: int = 6_000
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0

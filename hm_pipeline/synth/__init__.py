"""The synthetic H&M world: Kaggle-format files with latent structure and an oracle."""

from hm_pipeline.synth.config import SCALES, ScaleConfig

__all__ = ["SCALES", "ScaleConfig"]

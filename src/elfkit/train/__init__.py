"""Training of ELF models: config (pydantic), loader, augmentation, losses and the resumable loop.

    from elfkit.train import load_config, train
    train(load_config("configs/hydrogen.yaml"))
"""

from elfkit.train.config import TrainConfig, load_config
from elfkit.train.loop import train

__all__ = ["TrainConfig", "load_config", "train"]

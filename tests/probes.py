"""A callback that records what each DDP rank's batch path does, for tests/test_ddp.py."""

from pathlib import Path

import lightning.pytorch as L
import torch


class RecordBatchPath(L.Callback):
    """At the start of training, write ``rank<N>.pt`` into ``folder``: the rank's training
    samples of epoch 0, and the augmentation it draws for one fixed batch from one fixed
    global seed (what ``seed_everything`` gives every rank)."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        data = trainer.datamodule
        samples = trainer.train_dataloader.sampler.epoch_indices()
        fixed = torch.arange(4 * 28 * 28, dtype=torch.int64).remainder(256).to(torch.uint8)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            augmented = data.transform_batch(fixed.view(4, 1, 28, 28), train=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {"samples": samples, "augmented": augmented, "uses_batches": data.uses_batches}
        torch.save(record, self.folder / f"rank{trainer.global_rank}.pt")

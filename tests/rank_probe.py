"""A callback that records each rank's share of a training epoch, for tests/test_multinode.py."""

import json
from pathlib import Path

import lightning.pytorch as L


class RecordRankShare(L.Callback):
    """Write ``rank<N>.json`` into ``folder`` at the end of the first training epoch: where the
    process stands in the cluster (global, local and node rank, world size, the cluster
    environment Lightning detected) and the training samples it took, batch by batch.

    Args:
        folder: where the records go (created if missing).
    """

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.samples: list[int] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # the batch path's sampler yields one index tensor per batch: this rank's order
        self.batches = iter(trainer.train_dataloader.sampler.epoch_indices().tolist())
        self.batch_size = trainer.datamodule.batch_size

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        taken = [next(self.batches) for _ in range(len(batch[1]))]
        self.samples.extend(taken)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        environment = trainer.strategy.cluster_environment
        record = {
            "global_rank": trainer.global_rank,
            "local_rank": trainer.local_rank,
            "node_rank": trainer.node_rank,
            "world_size": trainer.world_size,
            "environment": type(environment).__name__,
            "uses_batches": trainer.datamodule.uses_batches,
            "samples": self.samples,
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))

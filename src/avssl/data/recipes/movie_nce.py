"""The movie-nce sample: an in-sync clip (SyncClipRecipe) from hierarchical batches (M movies, then K
clips of each) so that a chosen share of every clip's negatives can come from its own movie."""

from __future__ import annotations

from avssl.data.recipes.sync_clip import SyncClipRecipe
from avssl.data.sampling import HierarchicalBatchSampler


class MovieNCERecipe(SyncClipRecipe):
    """SyncClipRecipe's samples, at the starts the hierarchical batch sampler draws."""

    def train_sampler(self, *, rank: int, world_size: int) -> tuple[HierarchicalBatchSampler, bool]:
        """Batches of K clips from each of M movies (lists of (file index, start)); is_batch_sampler."""
        p = self.config.method.params
        sampler = HierarchicalBatchSampler(
            self.table.groups, self.table.durations, self.window, self.config.data.batch_size,
            p.within_movie_share, min_gap=p.min_gap, has_audio=self.table.has_audio, repeats=p.movie_repeats,
            seed=self.config.seed, num_replicas=world_size, rank=rank,
        )
        return sampler, True

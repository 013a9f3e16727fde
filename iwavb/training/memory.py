"""A training run's GPU memory, estimated from its settings before it starts (the app's queue admits by it).

    the weights and Adam's two moments, and the copies of both that the trainer keeps to roll back to
    after a NaN: 6 floats per parameter (the gradients are in the step's peak)
  + the peak of one step's live tensors (iwavb/core/footprint.py, on the meta device), which a CUDA graph
    keeps allocated between replays
  + the data set, held on the device as uint8
then times ALLOCATOR_MARGIN for the caching allocator's rounding and cuDNN's workspaces.
"""

from __future__ import annotations

from ..core.footprint import parameter_count, step_peak_bytes
from ..data.names import IMAGES
from .config import TrainConfig

STATE_FLOATS_PER_PARAMETER = 6  # weights 1 + Adam's moments 2, and the rollback copy of those 3
ALLOCATOR_MARGIN = 1.25


def training_bytes(config: TrainConfig) -> int:
    """Estimated device bytes of training `config` (float32 state; bfloat16 autocast needs less)."""
    model = config.model_config()
    state = STATE_FLOATS_PER_PARAMETER * 4 * parameter_count(model)
    step = step_peak_bytes(model, config.batch_size, config.k)
    data = IMAGES[config.dataset] * config.data_dim
    return round(ALLOCATOR_MARGIN * (state + step + data))

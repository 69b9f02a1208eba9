"""``train_entry.main`` in every DDP process, then that rank's EMA weights saved (for test_ddp.py).

Lightning's DDP launcher starts the other ranks by running this same command again,
so each process trains, and each writes ``ema_rank<R>.safetensors`` to
``$SAGA_DDP_PROBE_OUT`` when ``trainer.fit`` returns, and ``seen_rank<R>.json``: the ``relpath``
of every example its training steps got, in order.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from stable_audio_tools.training.diffusion import DiffusionCondTrainingWrapper

from saga_sr_plugin.interface import train as train_entry
from safetensors.torch import save_file  # noqa: E402

seen: list[str] = []
official_step = DiffusionCondTrainingWrapper.training_step


def recording_step(self, batch, batch_idx):
    for md in batch[1]:
        relpath = md.get("relpath")  # the official WebDataset loader collates twice: values come wrapped
        seen.append(str(relpath[0] if isinstance(relpath, (list, tuple)) else relpath))
    return official_step(self, batch, batch_idx)


DiffusionCondTrainingWrapper.training_step = recording_step
run = train_entry.main(sys.argv[1:])
out = Path(os.environ["SAGA_DDP_PROBE_OUT"])
(out / f"seen_rank{run.trainer.global_rank}.json").write_text(json.dumps(seen))
ema = run.wrapper.diffusion_ema.ema_model.state_dict()
save_file({k: v.detach().cpu().contiguous() for k, v in ema.items()},
          str(out / f"ema_rank{run.trainer.global_rank}.safetensors"))

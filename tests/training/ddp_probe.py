"""``train_entry.main`` in every DDP process, then that rank's EMA weights saved (for test_ddp.py).

Lightning's DDP launcher starts the other ranks by running this same command again,
so each process trains, and each writes ``ema_rank<R>.safetensors`` to
``$SAGA_DDP_PROBE_OUT`` when ``trainer.fit`` returns.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path


from saga_sr_plugin.interface import train as train_entry
from safetensors.torch import save_file  # noqa: E402

run = train_entry.main(sys.argv[1:])
ema = run.wrapper.diffusion_ema.ema_model.state_dict()
save_file({k: v.detach().cpu().contiguous() for k, v in ema.items()},
          str(Path(os.environ["SAGA_DDP_PROBE_OUT"]) / f"ema_rank{run.trainer.global_rank}.safetensors"))

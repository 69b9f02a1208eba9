#!/usr/bin/env python
"""Train SAGA-SR: ``python train_entry.py --model-config model_configs/saga_model_config.json ...``.

The official ``train.py``'s flags, on the official DiffusionCondTrainingWrapper; with no
``--dataset-config`` the embedded CPU demo. The code is ``saga_sr_plugin.interface.train``,
importable (``from saga_sr_plugin.interface.train import main``); this file is its command.
"""
from saga_sr_plugin.interface.train import main

if __name__ == "__main__":
    main()

"""Band levels and window steps of a trained demo model on every held-out demo clip, per setting.

    .venv/bin/python experiments/demo_levels.py runs/saga_sr envelope_margin_db=3 envelope_margin_db=none,slope_cap_db=3

For each setting (comma-separated NAME=VALUE overrides of the model config's ``saga_sr`` block, typed by
their declaration in inference/settings.py; none given: the config's own)
and each clip of ``demo_assets/audio/val`` at 4 and 8 kHz: the output's level minus the
reference's per band above the cutoff, and the level steps at window hand-overs beyond the
reference's (what ``train_entry.py``'s demo table shows for its 3 written clips).
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path


from saga_sr_plugin.interface.setting_flags import parse_assignment


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="a folder with model.json and model.safetensors (train_entry's run)")
    p.add_argument("settings", nargs="*", type=lambda text: dict(parse_assignment(a) for a in text.split(",")),
                   help="comma-separated saga_sr overrides, e.g. envelope_margin_db=none,slope_cap_db=3")
    p.add_argument("--clips", type=int, default=8)
    args = p.parse_args(argv)

    import saga_sr_plugin  # noqa: F401
    from saga_sr_plugin.data.sidecar import read_captions
    from saga_sr_plugin.inference.upsampler import Upsampler
    from saga_sr_plugin.training.callbacks import load_examples, run_sr_examples

    upsampler = Upsampler.load(str(args.run / "model.json"), str(args.run / "model.safetensors"), device="cpu")
    references = load_examples("demo_assets/audio/val", args.clips, read_captions("demo_assets/audio/val"))
    for overrides in args.settings or [{}]:
        settings = dataclasses.replace(upsampler.settings(), **overrides)
        examples = run_sr_examples(upsampler, references, (4000, 8000), settings=settings)
        worst_level = max(abs(v) for e in examples for v in e.band_levels.values())
        worst_step = max((abs(s) for e in examples for s in e.boundary_steps), default=0.0)
        print(f"{overrides or 'config'}: mean LSD {sum(e.lsd for e in examples) / len(examples):.3f}, "
              f"worst |level| {worst_level:.1f} dB, worst |step| {worst_step:.1f} dB")
        for e in examples:
            print(f"  {e.name} {e.cutoff_hz / 1000:g} kHz  " + " ".join(f"{k} {v:+.1f}" for k, v in e.band_levels.items())
                  + f" | steps {[round(s, 1) for s in e.boundary_steps]}")


if __name__ == "__main__":
    main()

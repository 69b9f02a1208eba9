"""``saga-sr``: export, upsample, caption, evaluate.

Training is ``train_entry.py`` (it mirrors the official ``train.py``); everything
after training goes through this one command. Exit codes: 0 all done, 1 some input
files failed (each is named, and counted in the closing line), 2 nothing could run
(bad arguments, config, checkpoint or output folder: one ``error:`` line).
"""
from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import typing as tp
from pathlib import Path

from .args import DefaultsHelpFormatter, add_gui_arguments, add_mismatch_argument, finite, integer
from .setting_flags import add_setting_flags, apply_overrides, setting_overrides


def _export(args: argparse.Namespace) -> int:
    from ..training.export import export_checkpoint

    out = export_checkpoint(args.model_config, args.ckpt_path, args.output, overwrite=args.overwrite)
    print(f"exported EMA weights to {out}")
    return 0


OUTPUT_TAG = "_saga_sr"
# evaluate's f_h word beyond upsample's
ORACLE = {"target_rolloff": (("oracle",), "; 'oracle' (evaluate): each reference's own roll-off, an upper bound, "
                                          "report it apart")}


def plan_outputs(inputs: tp.Sequence[str], out_dir: str | Path, fmt: str) -> list[tuple[Path, Path]]:
    """(input file, output file) pairs.

    A folder's files keep their path relative to that folder under ``out_dir``; a file
    given by name goes to ``out_dir`` itself. Outputs never share a name: inputs that would
    (``x.mp3`` and ``x.ogg``) keep their extension in it (``x_mp3_saga_sr.wav``), and any
    remaining clash gets a counter. Earlier outputs (``*_saga_sr.*``) found in a folder are
    left out, so re-running on a folder (or with ``-o`` inside it, or ``-o`` the folder
    itself) never upsamples its own results, and every other file is kept.
    """
    from ..data.audio_io import list_audio_files

    out_dir = Path(out_dir)
    found: list[tuple[Path, Path]] = []
    for p in map(Path, inputs):
        if p.is_dir():
            for f in list_audio_files(p):
                if f.stem.endswith(OUTPUT_TAG):
                    continue
                found.append((f, f.relative_to(p).parent))
        else:
            found.append((p, Path()))
    stems = [rel / f.stem for f, rel in found]
    targets: list[Path] = []
    for (f, rel), stem in zip(found, stems):
        suffix = f"_{f.suffix.lstrip('.').lower()}" if stems.count(stem) > 1 else ""
        target = out_dir / rel / f"{f.stem}{suffix}{OUTPUT_TAG}.{fmt}"
        n = 2
        while target in targets:
            target = out_dir / rel / f"{f.stem}{suffix}_{n}{OUTPUT_TAG}.{fmt}"
            n += 1
        targets.append(target)
    return [(f, t) for (f, _), t in zip(found, targets)]


def writable_folder(folder: str | Path, what: str = "output folder") -> Path:
    """Check that ``folder`` can be written (or created), before any long work starts.

    Nothing is created here: the folder appears with the first file written into it, so
    a run that fails before writing leaves nothing behind.
    """
    folder = Path(folder)
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise OSError(f"cannot create the {what} {folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        verb = "write to" if existing == folder else "create"
        raise OSError(f"cannot {verb} the {what} {folder}: permission denied on {existing}")
    return folder


def _upsample(args: argparse.Namespace) -> int:
    from ..configs import load_json
    from ..data.audio_io import AUDIO_EXTS
    from ..distributed import current_share
    from ..inference.settings import UpsampleSettings

    pairs = plan_outputs(args.inputs, args.output_dir, args.format)
    if not pairs:
        print(f"error: no audio files in {', '.join(args.inputs)} (read here: "
              f"{', '.join(e.lstrip('.') for e in AUDIO_EXTS)})", file=sys.stderr)
        return 2
    writable_folder(args.output_dir)
    # Every option is checked against the config before the model loads (tens of seconds).
    settings = apply_overrides(UpsampleSettings.from_config(load_json(args.model_config, "model config")),
                               setting_overrides(args))
    share = current_share()  # under torchrun: every N-th file on this rank's GPU; rank 0 prints the totals
    failures, skipped, done = [], [], 0
    todo = []
    for path, target in pairs:
        if target.exists() and not args.overwrite:
            skipped.append(target)
            if share.is_first:
                print(f"skipped {path}: {target} exists (--overwrite to replace it)", file=sys.stderr)
        else:
            todo.append((path, target))
    if not todo:
        if share.is_first:
            print(summary_line("upsampled", done, len(pairs), failures, skipped))
        return 0
    args.device = share.device(args.device)
    todo = share.take(todo)
    if todo:
        done, failures = _upsample_files(args, todo, settings)
    totals = share.gather((done, failures))
    if not share.is_first:
        return 1 if failures else 0
    done, failures = sum(d for d, _ in totals), [f for _, fs in totals for f in fs]
    print(summary_line("upsampled", done, len(pairs), failures, skipped), file=sys.stderr if failures else sys.stdout)
    return 1 if failures else 0


def _upsample_files(args: argparse.Namespace, todo: list[tuple[Path, Path]], settings: tp.Any) -> tuple[int, list[Path]]:
    """Upsample ``todo`` (input, output) pairs: the number written and the inputs that failed."""
    from ..data.audio_io import read_audio, write_audio
    from ..data.audio_format import BadAudioError
    from ..evaluation.plots import save_spectrograms
    from ..inference.upsampler import Upsampler, UpsampleJob, short_caption
    from tqdm.auto import tqdm

    done, failures = 0, []
    upsampler = Upsampler.load(args.model_config, args.weights, args.device, args.dtype,
                               allow_config_mismatch=args.allow_config_mismatch)
    if args.caption is None and not args.no_caption:
        from ..captioning.qwen2_audio import Captioner

        model_name = args.caption_model or upsampler.model_config.get("saga_sr", {}).get("caption_model")
        if model_name:
            upsampler.captioner = Captioner.load(model_name, device=args.device, dtype=args.caption_dtype).caption_one
    targets = {str(path): target for path, target in todo}
    jobs = [UpsampleJob(str(path), functools.partial(read_audio, path), "" if args.no_caption else args.caption)
            for path, _ in todo]
    for job, result in upsampler.upsample_many(jobs, settings, progress=True):
        path, target = Path(job.name), targets[job.name]
        try:
            if isinstance(result, Exception):
                raise result
            float_wav = target.suffix == ".wav" and float(result.audio.abs().max()) > 1.0
            write_audio(target, result.audio, result.sample_rate, subtype="FLOAT" if float_wav else None)
        except (BadAudioError, FileNotFoundError, OSError, RuntimeError) as err:
            failures.append(path)
            tqdm.write(f"error: {err}", file=sys.stderr)  # on its own line, not after the progress bar
            continue
        done += 1
        tqdm.write(f"{path} -> {target}: input cutoff {result.input_cutoff_hz:.0f} Hz, "
                   f"f_l {result.input_rolloff:.3f}, f_h {result.target_rolloff:.3f}, caption "
                   f"{short_caption(result.caption)}"
                   + (f"; scaled by {result.peak_gain_db:.1f} dB so it does not clip" if result.peak_gain_db < 0 else "")
                   + ("; written as float WAV (peak above 0 dBFS)" if float_wav else ""))
        if args.plot:
            audio, sr = read_audio(path)
            png = save_spectrograms(target.with_suffix(".png"), [(f"input ({sr} Hz)", audio, sr),
                                                                 ("SAGA-SR (44.1 kHz)", result.audio, result.sample_rate)],
                                    title=path.name)
            print(f"  spectrograms: {png}")
    return done, failures


def summary_line(verb: str, done: int, total: int, failures: tp.Sequence, skipped: tp.Sequence = ()) -> str:
    """One closing line every command prints: what was done, skipped and failed, of how many."""
    parts = [f"{verb} {done} of {total} file(s)"]
    if skipped:
        parts.append(f"{len(skipped)} skipped")
    if failures:
        parts.append(f"{len(failures)} failed: " + ", ".join(map(str, failures[:5]))
                     + (f" and {len(failures) - 5} more" if len(failures) > 5 else ""))
    return "; ".join(parts)


def _model_systems(args: argparse.Namespace, references: str) -> tuple[dict, tp.Any]:
    """The systems and the FD embedder of an evaluation: output folders, and the model (with its raw decode)."""
    systems: dict = {}
    for folder in getattr(args, "outputs", None) or []:
        systems[Path(folder).name] = folder
    embedder = None
    if args.fd != "none":
        import torch

        from ..evaluation.frechet import EMBEDDERS

        device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
        embedder = EMBEDDERS[args.fd](device=device)
    if args.weights:
        from ..data.sidecar import captions_under
        from ..evaluation.protocol import reference_rolloffs
        from ..inference.upsampler import Upsampler, raw_settings

        upsampler = Upsampler.load(args.model_config, args.weights, args.device,
                                   allow_config_mismatch=args.allow_config_mismatch)
        overrides = setting_overrides(args)
        oracle = overrides.get("target_rolloff") == "oracle"
        if oracle:
            del overrides["target_rolloff"]
        settings = apply_overrides(upsampler.settings(), overrides)
        # each reference's caption from the captions.jsonl files under the folder, unless --caption is given
        captions = {} if args.caption is not None else captions_under(references)
        rolloffs = reference_rolloffs(references) if oracle else None
        variants = {} if args.no_raw else {"raw": raw_settings(settings)}
        systems["saga-sr-oracle" if oracle else "saga-sr"] = upsampler.system(
            settings, caption=args.caption or "", captions=captions, target_rolloffs=rolloffs, variants=variants)
    return systems, embedder


def evaluation_seed(args: argparse.Namespace) -> int:
    """The simulated filters' seed: --seed, else the declared default (not the model config's sampling seed)."""
    from ..inference.settings import UpsampleSettings

    return UpsampleSettings.seed if args.seed is None else args.seed


def _evaluate(args: argparse.Namespace) -> int:
    from ..evaluation.protocol import evaluate, markdown_table, plot_summary, write_csv
    from ..atomic import write_text
    from ..distributed import current_share

    share = current_share()  # under torchrun: this rank's files on its own GPU; rank 0 writes the results
    args.device = share.device(args.device)
    out = writable_folder(args.output_dir)
    systems, embedder = _model_systems(args, args.references)
    report = evaluate(args.references, systems, args.cutoffs, seed=evaluation_seed(args), baselines=not args.no_baselines,
                      save_inputs=args.save_inputs, perceptual=not args.no_visqol, embedder=embedder, share=share)
    if not share.is_first:
        return 0  # rank 0 reports every rank's files, failures included
    rows = report.rows
    for failure in report.failed:
        print(f"skipped: {failure}", file=sys.stderr)
    if rows:
        write_csv(rows, out / "lsd_per_file.csv")
        table = markdown_table(rows, fd=report.fd)
        if report.failed:
            table += f"\n{len(report.failed)} file(s) not scored: " + "; ".join(report.failed) + "\n"
        write_text(out / "lsd.md", table)
        plot_summary(rows, out / "lsd.png")
        print(table)
        print(f"wrote {out / 'lsd_per_file.csv'}, {out / 'lsd.md'}, {out / 'lsd.png'} (LSD, ViSQOL and FD, "
              "despite the names)")
    print(summary_line("scored", report.scored, report.total, report.failed),
          file=sys.stderr if report.failed else sys.stdout)
    return 1 if report.failed else 0


def _table1(args: argparse.Namespace) -> int:
    from ..atomic import write_text
    from ..evaluation.paper_sets import build_sets, table1
    from ..evaluation.protocol import describe_metric, evaluate, write_csv

    out = writable_folder(args.output_dir)
    if not (args.vctk or args.fma or args.esc50):
        print("error: give at least one of --vctk, --fma, --esc50 (the paper's three test sets)", file=sys.stderr)
        return 2
    built = build_sets(out / "sets", args.vctk, args.fma, args.esc50, args.clips, args.seconds)
    print("sets: " + ", ".join(f"{name} {n} clips" for name, n in built.written.items())
          + (f"; {len(built.skipped)} file(s) skipped (see {out / 'sets' / 'manifest.json'})" if built.skipped else ""))
    systems, embedder = _model_systems(args, str(out / "sets"))
    report = evaluate(out / "sets", systems, (4000, 8000), seed=evaluation_seed(args), perceptual=not args.no_visqol,
                      embedder=embedder)
    write_csv(report.rows, out / "lsd_per_file.csv")
    parts = [f"# Table 1 protocol: {', '.join(f'{k} ({v} clips)' for k, v in built.written.items())}, inputs at 4 and "
             f"8 kHz\n"]
    for metric in ("nuwave2/lsd", "ssr/lsd", "visqol"):
        if metric == "visqol" and args.no_visqol:
            continue
        parts.append(f"{describe_metric(metric)}" + (" / FD" if report.fd and metric != "visqol" else "") + "\n")
        parts.append(table1(report.rows, report.fd if metric != "visqol" else None, metric))
    text = "\n".join(parts)
    write_text(out / "table1.md", text)
    print(text)
    print(summary_line("scored", report.scored, report.total, report.failed),
          file=sys.stderr if report.failed else sys.stdout)
    return 1 if report.failed else 0


def _caption(args: argparse.Namespace) -> int:
    from ..captioning.qwen2_audio import Captioner, caption_folders
    from ..distributed import current_share

    share = current_share()
    captioner = Captioner.load(args.model, device=share.device(args.device), dtype=args.dtype, prompt=args.prompt,
                               chat_template=args.chat_template, max_new_tokens=args.max_new_tokens,
                               clip_seconds=args.clip_seconds)
    try:
        report = caption_folders(args.folders, captioner, args.batch_size, args.overwrite, args.report,
                                 args.file_list, args.segment_seconds, args.hop_seconds, share)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not share.is_first:
        return 1 if report.failed else 0
    summary = report.to_json()
    print(f"captioned {summary['captioned']} file(s), {summary['segments']} caption(s) "
          f"({summary['files_per_second']:.2f} files/s{', all ranks' if share.distributed else ''}), "
          f"{summary['already_done']} already done, {summary['failed_count']} failed"
          + (f"; report: {args.report}" if args.report else ""))
    for failure in report.failed:
        print(f"  not captioned: {failure['reason']}", file=sys.stderr)
    return 1 if report.failed else 0


def _shard(args: argparse.Namespace) -> int:
    import json

    from ..atomic import write_text
    from ..configs import load_json
    from ..data.shards import dataset_config, shard_folders

    block = load_json(args.dataset_config, "dataset config").get("saga_sr") if args.dataset_config else None
    out = writable_folder(args.output_dir)
    try:
        report = shard_folders(args.folders, out, args.shard_megabytes, args.files_per_shard, args.overwrite)
    except FileExistsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    config_path = write_text(out / "dataset_config.json", json.dumps(dataset_config(out, args.folders, block), indent=2))
    print(f"wrote {report.files} file(s) in {report.shards} shard(s), {report.bytes_written / 2**20:.1f} MiB"
          + (f"; {report.transcoded} re-encoded as FLAC" if report.transcoded else "")
          + (f"; {report.uncaptioned} without a caption (run saga-sr caption first)" if report.uncaptioned else ""))
    print(f"dataset config: {config_path} (train with --dataset-config {config_path})")
    print(summary_line("sharded", report.files, report.files + len(report.skipped), [s["reason"] for s in report.skipped]),
          file=sys.stderr if report.skipped else sys.stdout)
    return 1 if report.skipped else 0


def _pre_encode(args: argparse.Namespace) -> int:
    import json

    from ..atomic import write_text
    from ..configs import load_json
    from ..distributed import parse_share
    from ..data.pre_encoding import PreEncoder, dataset_config, pre_encode
    from ..data.simulation import SimulationConfig
    from ..models.loading import build_pretransform

    model_config = load_json(args.model_config, "model config")
    simulation = SimulationConfig()
    if args.dataset_config:
        block = load_json(args.dataset_config, "dataset config").get("saga_sr") or {}
        simulation = SimulationConfig(**block)
    try:
        share = parse_share(args.shard)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = writable_folder(args.output_dir)
    pretransform = build_pretransform(model_config, args.model_config, args.pretransform_ckpt_path)
    encoder = PreEncoder(pretransform, model_config["sample_size"], args.versions, args.batch_size,
                         share.device(args.device), args.seed, simulation)
    report = pre_encode(args.folders, out, encoder, share, args.report)
    config_path = out / "dataset_config.json"
    if share.is_first:
        write_text(config_path, json.dumps(dataset_config(out, args.folders), indent=2))
    summary = report.to_json()
    print(f"{share.describe()}: " * share.distributed + f"pre-encoded {report.clips} clip(s) of {report.files} file(s) in {report.seconds:.1f} s "
          f"({summary['clips_per_second']} clips/s, {summary['bytes_per_clip'] / 1024:.1f} KiB per clip with "
          f"K = {args.versions}); {report.already_done} already done, {len(report.skipped)} skipped")
    print(f"dataset config: {config_path} (train with a model config whose training.pre_encoded is true)")
    for skip in report.skipped:
        print(f"  skipped: {skip['reason']}", file=sys.stderr)
    return 1 if report.skipped else 0


def add_scoring_arguments(p: argparse.ArgumentParser) -> None:
    """What evaluate and table1 share: the model run on the simulated inputs, and the scores."""
    p.add_argument("--model-config", default=None)
    p.add_argument("--weights", default=None, help="run this model on the simulated inputs")
    add_mismatch_argument(p)
    p.add_argument("--caption", default=None, help="caption for every input (default: each reference's caption "
                                                  "from captions.jsonl under the folder, else the text null)")
    p.add_argument("--device", default="auto")
    add_setting_flags(p, "evaluate", extra_words=ORACLE)
    p.add_argument("--no-raw", action="store_true",
                   help="score only the post-processed output (default: also the model's raw decode, saga-sr-raw, "
                        "from the same sampling)")
    p.add_argument("--no-visqol", action="store_true", help="skip ViSQOL (about 0.5 s per 1.5 s clip and system)")
    p.add_argument("--fd", choices=["none", "openl3"], default="none",
                   help="Fréchet distance per set on these embeddings (the paper's: openl3; needs "
                        "pip install 'saga-sr[fd]' and the weights torchopenl3 fetches on first use)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="saga-sr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("export", help="Lightning checkpoint -> EMA weights (official export_model)")
    p.add_argument("--model-config", required=True)
    p.add_argument("--ckpt-path", required=True)
    p.add_argument("-o", "--output", default="model.safetensors", help=".safetensors, or .ckpt for torch.save")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output and its .json")
    p.set_defaults(func=_export)

    p = sub.add_parser("upsample", help="upsample audio files to 44.1 kHz",
                       formatter_class=DefaultsHelpFormatter)
    p.add_argument("inputs", nargs="+", help="audio files or folders")
    p.add_argument("-o", "--output-dir", default="outputs")
    p.add_argument("--model-config", required=True)
    p.add_argument("--weights", required=True, help="exported weights (.safetensors or .ckpt)")
    add_mismatch_argument(p)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--caption", default=None, help="use this caption instead of captioning the input")
    p.add_argument("--no-caption", action="store_true", help="use the text null (no caption)")
    p.add_argument("--caption-model", default=None,
                   help="Qwen2-Audio hub name or folder (default: the config's saga_sr.caption_model)")
    p.add_argument("--caption-dtype", default="auto")
    add_setting_flags(p, "upsample")
    p.add_argument("--format", default="wav", choices=["wav", "flac"])
    p.add_argument("--plot", action="store_true", help="write a PNG of input and output spectrograms")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that already exist (default: skip them)")
    p.set_defaults(func=_upsample)

    p = sub.add_parser("caption", help="Qwen2-Audio captions -> captions.jsonl in each folder (resumable)",
                       formatter_class=DefaultsHelpFormatter)
    p.add_argument("folders", nargs="+", help="dataset folders; each gets its own captions.jsonl")
    p.add_argument("--file-list", default=None, help="caption only these files (one path per line, absolute or "
                                                      "relative to the single folder given)")
    p.add_argument("--model", default="Qwen/Qwen2-Audio-7B", help="hub name or local folder (base or Instruct)")
    p.add_argument("--prompt", default=None, help="default: the authors' base-model prompt, or a content-only "
                                                   "question for chat models")
    p.add_argument("--chat-template", dest="chat_template", action="store_true", default=None,
                   help="use the processor's chat template (default: only for Instruct models)")
    p.add_argument("--no-chat-template", dest="chat_template", action="store_false")
    p.add_argument("--batch-size", type=integer(1), default=8)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto", help="auto: bfloat16 on CUDA, float32 on CPU")
    p.add_argument("--max-new-tokens", type=integer(1), default=256)
    p.add_argument("--clip-seconds", type=finite(0.1), default=30.0, help="longer files: the central part this long")
    p.add_argument("--segment-seconds", type=finite(0.1), default=None,
                   help="caption each segment this long (the authors: 5.94, a training segment) instead of each "
                        "file's central --clip-seconds; a training crop takes its segment's caption")
    p.add_argument("--hop-seconds", type=finite(0.1), default=None, help="segment hop (default: the segment length)")
    p.add_argument("--overwrite", action="store_true", help="caption again files that already have a caption")
    p.add_argument("--report", default="caption_report.json", help="JSON report: counts and every failure")
    p.epilog = ("Many processes: torchrun --nproc-per-node N --no-python saga-sr caption FOLDER ... "
                "(each rank its share of the files on its own GPU, a part file each, merged at the end; a rerun "
                "resumes)")
    p.set_defaults(func=_caption)

    p = sub.add_parser("shard", help="a folder of audio and its captions -> WebDataset tar shards (the official wds "
                                     "dataset type)", formatter_class=DefaultsHelpFormatter)
    p.add_argument("folders", nargs="+", help="dataset folders (their captions.jsonl goes into each sample's JSON)")
    p.add_argument("-o", "--output-dir", required=True, help="OUT/<folder name>/shard-000000.tar ... and "
                                                             "OUT/dataset_config.json")
    p.add_argument("--shard-megabytes", type=finite(0.001), default=256.0, help="start a new shard past this size")
    p.add_argument("--files-per-shard", type=integer(1), default=10_000, help="start a new shard past this count")
    p.add_argument("--dataset-config", default=None, help="copy its \"saga_sr\" simulation block into the new config")
    p.add_argument("--overwrite", action="store_true", help="replace shards already written for a folder")
    p.set_defaults(func=_shard)

    p = sub.add_parser("pre-encode", help="VAE latents of clips and K simulated low-res versions, once "
                                          "(official pre_encoded layout; resumable, shardable)",
                       formatter_class=DefaultsHelpFormatter)
    p.add_argument("folders", nargs="+", help="dataset folders (their captions.jsonl gives each clip's caption)")
    p.add_argument("-o", "--output-dir", required=True)
    p.add_argument("--model-config", required=True, help="the model config to train (its pretransform and sample_size)")
    p.add_argument("--pretransform-ckpt-path", default=None, help="VAE weights (else the config's)")
    p.add_argument("--dataset-config", default=None, help="take the simulation ranges from its \"saga_sr\" block")
    p.add_argument("--versions", "-k", type=integer(1), default=4, help="K simulated low-res versions per clip")
    p.add_argument("--batch-size", type=integer(1), default=16, help="clips per encoder call")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0, help="the degradations depend on (seed, file, clip) only")
    p.add_argument("--shard", default="auto", help="INDEX/COUNT: this process takes every COUNT-th file; auto: "
                                                   "torchrun's rank and world size (one process without torchrun)")
    p.add_argument("--report", default=None, help="JSON report: counts, throughput, every skipped file")
    p.set_defaults(func=_pre_encode)

    p = sub.add_parser("evaluate", help="LSD (ssr_eval and NU-Wave 2 conventions), ViSQOL and FD at simulated cutoffs",
                       formatter_class=DefaultsHelpFormatter)
    p.add_argument("references", help="folder of 44.1 kHz references; first-level subfolders are categories")
    p.add_argument("--outputs", nargs="*", help="folders of system outputs laid out as CUTOFF/<relative path>.wav")
    p.add_argument("--cutoffs", type=finite(1000.0, 22050.0), nargs="+", default=[4000, 8000])
    p.add_argument("--no-baselines", action="store_true", help="skip the unprocessed and sinc baselines")
    p.add_argument("--save-inputs", default=None, help="also write the simulated inputs here")
    add_scoring_arguments(p)
    p.add_argument("-o", "--output-dir", default="outputs/evaluate")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("table1", help="the paper's Table 1 protocol from local VCTK, FMA-small and ESC-50 copies",
                       formatter_class=DefaultsHelpFormatter)
    p.add_argument("--vctk", default=None, help="VCTK folder (speaker folders p225 ... s5; 0.92 or 0.80 layout)")
    p.add_argument("--fma", default=None, help="FMA-small folder (000/000002.mp3 ...)")
    p.add_argument("--esc50", default=None, help="ESC-50 folder (audio/ and meta/esc50.csv); fold 5 is scored")
    p.add_argument("--clips", type=integer(2), default=400, help="clips per set (the paper: 400)")
    p.add_argument("--seconds", type=finite(1.0), default=5.94, help="longest excerpt per clip (the middle)")
    add_scoring_arguments(p)
    p.add_argument("-o", "--output-dir", default="outputs/table1")
    p.set_defaults(func=_table1)

    p = sub.add_parser("gui", help="a web page to upsample and compare (Gradio, 127.0.0.1 by default)",
                       formatter_class=DefaultsHelpFormatter)
    add_gui_arguments(p)
    p.set_defaults(func=_gui)
    return parser


def _gui(args: argparse.Namespace) -> int:
    from .gui import serve

    return serve(args)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from ..configs import ConfigError
    from ..models.weights import CheckpointMismatchError

    try:
        return args.func(args)
    except (ConfigError, CheckpointMismatchError, FileNotFoundError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

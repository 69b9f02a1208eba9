"""``saga-sr gui``: a web page to hear and see super-resolution, on the official Gradio conventions.

Like stable-audio-tools' ``run_gradio.py`` / ``interface/``: ``gr.Blocks``, the model from a
config and weights (or a folder an export wrote) loaded once, sampler settings in an
accordion, results as players and spectrogram images. Two tabs:

- **Upsample**: any file the CLI reads, at any rate from 4 kHz, mono or stereo; a caption
  typed, from the configured captioner, or none; the ``saga_sr`` block's settings as
  defaults (sampler and schedule included); a progress bar fed by the sampler (steps and
  windows) and a Cancel button;
  input and output players, one figure with both spectrograms and the detected cutoff,
  the output as WAV or FLAC.
- **Compare**: a full-band recording simulated at a cutoff (the evaluation's low-pass),
  upsampled, and input / output / reference side by side with the LSD of input and output.

The handlers are plain functions (tests call them directly); bad input is a one-line
``gr.Error`` with the CLI's message, never a traceback. Requests queue (one at a time:
one model). Results and Gradio's own upload cache live in one private temporary folder, removed
when the server stops (Ctrl-C or SIGTERM, how services are stopped).

The served page reads only what reached it through its own upload: Gradio refuses a request
naming a file outside its upload folder, and the handlers refuse it again (:func:`uploaded_only`),
so a visitor cannot have the server read one of its files, whatever the Gradio release.
"""
from __future__ import annotations

import argparse
import atexit
import dataclasses
import math
import os
import shutil
import signal
import tempfile
import threading
import typing as tp
from pathlib import Path

import torch

from ..configs import ConfigError
from ..data.audio_format import SAMPLE_RATE, BadAudioError
from ..data.audio_io import prepare_input, read_audio, wav_promised_frames, write_audio
from ..evaluation.metrics import lsd
from ..evaluation.plots import save_spectrograms
from ..evaluation.protocol import simulate_input
from ..evaluation.visqol import visqol
from ..inference.settings import AUTO, UpsampleSettings
from ..inference.upsampler import Upsampler, raw_settings
from .args import MAX_SECONDS
from .setting_flags import declarations, kind_of, page_values

CAPTION_MODES = ("none", "typed", "captioner")


class Cancelled(Exception):
    """The user pressed Cancel; the sampler stops at its next step."""


@dataclasses.dataclass
class Page:
    """What the handlers share: the loaded model, its defaults, a results folder, the cancel flag."""

    upsampler: Upsampler
    out_dir: Path
    max_seconds: float = MAX_SECONDS
    captioner: tp.Callable[[torch.Tensor, int], str] | None = None
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)
    _count: int = 0

    @property
    def defaults(self) -> UpsampleSettings:
        return self.upsampler.settings()

    def result_path(self, stem: str, suffix: str) -> Path:
        self._count += 1
        folder = self.out_dir / f"{self._count:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{stem}{suffix}"


def _error(message: str) -> Exception:
    import gradio as gr

    return gr.Error(message, print_exception=False)


def _read_input(page: Page, path: str | None, what: str = "input") -> tuple[torch.Tensor, int]:
    if not path:
        raise _error(f"no {what} file: upload or record one first")
    try:
        audio, rate = read_audio(path)
    except (BadAudioError, FileNotFoundError, OSError) as err:
        raise _error(str(err).replace(str(Path(path).parent) + "/", "")) from None
    promised = wav_promised_frames(path)
    if promised is not None and promised > audio.shape[-1]:
        import gradio as gr

        gr.Warning(f"{Path(path).name} is truncated: its header promises {promised / rate:.2f} s, the file holds "
                   f"{audio.shape[-1] / rate:.2f} s; the {audio.shape[-1] / rate:.2f} s are used")
    if audio.shape[-1] / rate > page.max_seconds:
        raise _error(f"{Path(path).name}: {audio.shape[-1] / rate:.0f} s is longer than this page accepts "
                     f"({page.max_seconds:.0f} s, --max-seconds); use saga-sr upsample for long files")
    return audio, rate


# the settings the page offers, in the order of its controls (declared in inference.settings)
PAGE_SETTINGS = ("steps", "guidance_acoustic", "guidance_text", "target_rolloff", "seed", "low_frequency_replacement",
                 "sampler", "schedule")


def _settings(page: Page, *values: tp.Any) -> UpsampleSettings:
    try:
        return page_values(page.defaults, PAGE_SETTINGS, values)
    except (TypeError, ValueError) as err:
        raise _error(f"settings: {err}") from None


def setting_control(gr: tp.Any, name: str, default: tp.Any) -> tp.Any:
    """The page control of one declared setting: a dropdown for choices, a checkbox for a switch, a text box
    where words are accepted besides a number, a slider where a range is declared, else a number box."""
    field, how = declarations()[name]
    if how.choices:
        return gr.Dropdown(list(how.choices), value=default, label=how.page_label)
    if kind_of(field) == "bool":
        return gr.Checkbox(value=default, label=how.page_label)
    if how.words:
        return gr.Textbox(value=str(default), label=how.page_label)
    if how.control:
        low, high, step = how.control
        return gr.Slider(low, high, value=default, step=step, label=how.page_label)
    return gr.Number(value=default, precision=0 if kind_of(field) == "int" else None, label=how.page_label)


def _caption(page: Page, mode: str, typed: str, audio: torch.Tensor, rate: int) -> str:
    if mode == "typed":
        return typed or ""
    if mode == "captioner":
        if page.captioner is None:
            raise _error("no captioner is configured (saga_sr.caption_model in the model config, or "
                         "--caption-model); type a caption or choose none")
        return page.captioner(audio, rate)
    return ""


def _run(page: Page, audio: torch.Tensor, rate: int, caption: str, settings: UpsampleSettings, name: str,
         progress: tp.Callable[..., tp.Any] | None, nyquist_hz: float | None = None,
         variants: dict[str, UpsampleSettings] | None = None) -> tp.Any:
    """The upsampler with a progress callback per Euler step (over all windows) and the cancel flag;
    ``nyquist_hz``: the band a simulated input's rate would allow (the Compare tab's cutoff)."""
    page.cancel.clear()
    windows = page.upsampler.window_count(audio.shape[-1] * SAMPLE_RATE // rate, settings)
    total = max(1, windows * settings.steps)
    done = 0

    def on_step(window_count: int) -> None:
        nonlocal done
        if page.cancel.is_set():
            raise Cancelled()
        done += window_count
        if progress is not None:
            progress(min(done / total, 1.0), desc=f"{min(done, total)} of {total} window-steps "
                                                 f"({windows} window(s) x {settings.steps} steps)")

    try:
        return page.upsampler.upsample(audio, rate, caption=caption, settings=settings, name=name, on_step=on_step,
                                       nyquist_hz=nyquist_hz, variants=variants)
    except Cancelled:
        raise _error("cancelled") from None
    except (BadAudioError, ValueError) as err:
        raise _error(str(err)) from None


def upsample_handler(page: Page, path: str | None, caption_mode: str, typed_caption: str, *values: tp.Any,
                     progress: tp.Callable[..., tp.Any] | None = None) -> tuple[str, str, str, str, str]:
    """(input, output, spectrogram PNG, summary Markdown, caption used) for one uploaded file."""
    audio, rate = _read_input(page, path)
    name = Path(path).name
    *values, fmt = values   # the PAGE_SETTINGS controls, then the download format
    settings = _settings(page, *values)
    caption = _caption(page, caption_mode, typed_caption, audio, rate)
    result = _run(page, audio, rate, caption, settings, name, progress)
    stem = Path(name).stem
    out = write_audio(page.result_path(f"{stem}_saga_sr", "." + ("flac" if fmt == "flac" else "wav")),
                      result.audio, result.sample_rate)
    png = save_spectrograms(out.with_suffix(".png"), [(f"input ({rate} Hz)", audio, rate),
                                                      ("SAGA-SR (44.1 kHz)", result.audio, result.sample_rate)],
                            title=f"{name}: input cutoff {result.input_cutoff_hz / 1000:.1f} kHz",
                            cutoff_hz=result.input_cutoff_hz)
    summary = (f"**{name}**: {audio.shape[-1] / rate:.2f} s at {rate} Hz, {audio.shape[0]} channel(s) -> "
               f"{result.audio.shape[-1] / result.sample_rate:.2f} s at {result.sample_rate} Hz. Detected input "
               f"cutoff {result.input_cutoff_hz:.0f} Hz (f_l {result.input_rolloff:.3f}); {settings.sampler}, "
               f"{settings.steps} steps, "
               f"s_a {settings.guidance_acoustic}, s_t {settings.guidance_text}, f_h {result.target_rolloff:.3f}"
               + (" (auto, from the input)" if settings.target_rolloff == AUTO else "") + "."
               + (f" Scaled by {result.peak_gain_db:.1f} dB so it does not clip." if result.peak_gain_db < 0 else ""))
    return str(path), str(out), str(png), summary, caption


def compare_handler(page: Page, path: str | None, cutoff_hz: float, typed_caption: str, *values: tp.Any,
                    progress: tp.Callable[..., tp.Any] | None = None) -> tuple[str, str, str, str, str]:
    """(simulated input, output, reference, spectrogram PNG, LSD Markdown) for one full-band recording."""
    audio, rate = _read_input(page, path, "reference")
    name = Path(path).name
    try:
        audio = prepare_input(audio, rate, name)  # the checks and the 44.1 kHz every path into the model uses
    except BadAudioError as err:
        raise _error(str(err)) from None
    cutoff_hz = float(cutoff_hz)
    if not 1000 <= cutoff_hz <= 16000:
        raise _error(f"cutoff {cutoff_hz:.0f} Hz: choose one from 1 to 16 kHz")
    settings = _settings(page, *values)
    lowres = simulate_input(audio, cutoff_hz, seed=settings.seed, name=name)
    result = _run(page, lowres, SAMPLE_RATE, typed_caption or "", settings, name, progress, nyquist_hz=cutoff_hz,
                  variants={"raw": raw_settings(settings)} if settings.low_frequency_replacement else None)
    stem = f"{Path(name).stem}_{cutoff_hz / 1000:g}k"
    files = [write_audio(page.result_path(f"{stem}_{kind}", ".wav"), x, SAMPLE_RATE)
             for kind, x in (("input", lowres), ("output", result.audio), ("reference", audio))]
    png = save_spectrograms(files[1].with_suffix(".png"), [(f"input ({cutoff_hz / 1000:g} kHz low-pass)", lowres,
                                                            SAMPLE_RATE), ("SAGA-SR output", result.audio, SAMPLE_RATE),
                                                           ("reference", audio, SAMPLE_RATE)],
                            title=name, cutoff_hz=result.input_cutoff_hz)
    return str(files[0]), str(files[1]), str(files[2]), str(png), score_table(audio, lowres, result, cutoff_hz)


def score_table(reference: torch.Tensor, lowres: torch.Tensor, result: tp.Any, cutoff_hz: float) -> str:
    """ViSQOL beside LSD for the input, the model's raw decode and its post-processed output (issue 25)."""
    rows = [("input", lowres), *((("SAGA-SR raw decode", result.variants["raw"]),) if "raw" in result.variants else ()),
            ("SAGA-SR", result.audio)]
    lines = ["| | ViSQOL | LSD | LSD-LF | LSD-HF |", "|---|---|---|---|---|"]
    for label, x in rows:
        s = lsd(x, reference, SAMPLE_RATE, cutoff_hz=cutoff_hz)
        try:
            value = visqol(x, reference, SAMPLE_RATE)
            mos = f"{value:.2f}" if math.isfinite(value) else "n/a (clip too short or silent)"
        except (ImportError, RuntimeError, ValueError) as err:   # visqol-python missing, or a clip it cannot score
            mos = f"n/a ({type(err).__name__})"
        lines.append(f"| {label} | {mos} | {s['lsd']:.3f} | {s['lsd_lf']:.3f} | {s['lsd_hf']:.3f} |")
    return ("\n".join(lines) + "\n\nViSQOL v3 audio mode (MOS-LQO 1-5, higher is better), against the reference at "
            "48 kHz. LSD: NU-Wave 2 convention (lower is better), LF/HF below/above the cutoff. The raw decode is the "
            "same sampling before the low-frequency replacement and its caps.")


def uploaded_only(path: str | None) -> str | None:
    """``path`` if it lies in Gradio's upload folder (where the page's own uploads land), else a one-line refusal.

    A request to the served page may name any path in its file entry; Gradio's preprocessing
    refuses those outside its upload folder, and this check repeats that rule in the page's
    own code, so it holds on every Gradio release and names the refusal.
    """
    if not path:
        return path
    from gradio.utils import get_upload_folder

    folder = os.path.realpath(get_upload_folder())
    if os.path.commonpath([folder, os.path.realpath(path)]) != folder:
        raise _error(f"refused {Path(path).name!r}: this page reads only files uploaded through it")
    return path


def build_app(page: Page):
    """The ``gr.Blocks`` page over ``page`` (not launched); its handlers read only uploaded files."""
    import gradio as gr

    d = page.defaults
    with gr.Blocks(title="SAGA-SR super-resolution", delete_cache=(3600, 3600)) as app:
        gr.Markdown("# SAGA-SR audio super-resolution\nAny input from 4 to 32 kHz, mono or stereo, to 44.1 kHz. "
                    f"Files up to {page.max_seconds:.0f} s.")

        def sampler_controls():
            with gr.Accordion("Sampler settings", open=False):
                return [setting_control(gr, name, getattr(d, name)) for name in PAGE_SETTINGS]

        with gr.Tab("Upsample"):
            with gr.Row():
                with gr.Column():
                    source = gr.Audio(sources=["upload", "microphone"], type="filepath", label="input")
                    mode = gr.Radio(list(CAPTION_MODES), value="none", label="caption")
                    typed = gr.Textbox(label="typed caption", placeholder="e.g. a solo piano piece")
                    controls = sampler_controls()
                    fmt = gr.Radio(["wav", "flac"], value="wav", label="download as")
                    with gr.Row():
                        run = gr.Button("Upsample", variant="primary", elem_id="upsample-button")
                        stop = gr.Button("Cancel", elem_id="cancel-button")
                with gr.Column():
                    heard = gr.Audio(type="filepath", label="input (as uploaded)", interactive=False)
                    output = gr.Audio(type="filepath", label="SAGA-SR output (44.1 kHz)", interactive=False,
                                      elem_id="output-audio")
                    summary = gr.Markdown()
                    used = gr.Textbox(label="caption used", interactive=False)
            figure = gr.Image(type="filepath", label="spectrograms", elem_id="spectrograms")   # full width: readable
            event = run.click(lambda path, *a, progress=gr.Progress():
                              upsample_handler(page, uploaded_only(path), *a, progress=progress),
                              [source, mode, typed, *controls, fmt], [heard, output, figure, summary, used],
                              api_name="upsample")
            stop.click(page.cancel.set, None, None, cancels=[event], api_name=False)

        with gr.Tab("Compare"):
            with gr.Row():
                with gr.Column():
                    reference = gr.Audio(sources=["upload"], type="filepath", label="full-band reference")
                    cutoff = gr.Slider(2000, 16000, value=4000, step=500, label="simulated input cutoff (Hz)")
                    typed_c = gr.Textbox(label="caption (optional)")
                    controls_c = sampler_controls()
                    run_c = gr.Button("Compare", variant="primary", elem_id="compare-button")
                with gr.Column():
                    low = gr.Audio(type="filepath", label="simulated input", interactive=False)
                    out_c = gr.Audio(type="filepath", label="SAGA-SR output", interactive=False)
                    ref_c = gr.Audio(type="filepath", label="reference", interactive=False)
                    scores = gr.Markdown(elem_id="compare-scores")
            figure_c = gr.Image(type="filepath", label="spectrograms", elem_id="compare-spectrograms")
            run_c.click(lambda path, *a, progress=gr.Progress():
                        compare_handler(page, uploaded_only(path), *a, progress=progress),
                        [reference, cutoff, typed_c, *controls_c], [low, out_c, ref_c, figure_c, scores],
                        api_name="compare")
    app.queue(default_concurrency_limit=1)
    return app


def resolve_pretrained(name: str) -> tuple[str, str]:
    """(config, weights) of an exported model: a local folder (``model.json`` or ``model_config.json``
    beside ``model.safetensors`` / ``model.ckpt``) or a hub repository with the same files."""
    folder = Path(name).expanduser()
    if not folder.is_dir():
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(name, allow_patterns=["*.json", "*.safetensors", "*.ckpt"]))
        except Exception as err:  # offline, unknown repository, no access: one line
            raise ConfigError(f"--pretrained-name {name!r} is neither a folder nor a downloadable repository "
                              f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
    configs = [folder / n for n in ("model.json", "model_config.json") if (folder / n).is_file()]
    weights = [folder / n for n in ("model.safetensors", "model.ckpt") if (folder / n).is_file()]
    if not configs or not weights:
        raise ConfigError(f"{folder}: needs model.json (or model_config.json) and model.safetensors (or "
                          "model.ckpt), as saga-sr export and train_entry.py write them")
    return str(configs[0]), str(weights[0])


def load_page(args: argparse.Namespace) -> Page:
    if args.pretrained_name:
        config, weights = resolve_pretrained(args.pretrained_name)
    elif args.model_config and args.weights:
        config, weights = args.model_config, args.weights
    else:
        raise ConfigError("saga-sr gui needs --model-config and --weights, or --pretrained-name")
    if bool(args.username) != bool(args.password):
        raise ConfigError("--username and --password go together")
    upsampler = Upsampler.load(config, weights, args.device, args.dtype,
                               allow_config_mismatch=args.allow_config_mismatch)
    captioner = None
    model_name = args.caption_model or upsampler.model_config.get("saga_sr", {}).get("caption_model")
    if model_name:
        from ..captioning.qwen2_audio import Captioner

        captioner = Captioner.load(model_name, device=args.device).caption_one
    out_dir = Path(tempfile.mkdtemp(prefix="saga-sr-gui-", dir=os.environ.get("GRADIO_TEMP_DIR")))
    atexit.register(shutil.rmtree, out_dir, ignore_errors=True)
    return Page(upsampler, out_dir, args.max_seconds, captioner)


def serve(args: argparse.Namespace) -> int:
    """Load, build and serve the page until Ctrl-C or SIGTERM; then remove its folder, uploads included."""
    page = load_page(args)
    # Gradio's uploads and cache inside the page's own folder (read by Gradio when the app is built)
    os.environ["GRADIO_TEMP_DIR"] = str(page.out_dir / "gradio")
    app = build_app(page)
    auth = (args.username, args.password) if args.username else None
    # SIGTERM takes Ctrl-C's path: Gradio closes the server, the finally below removes the folder
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        app.launch(server_name=args.listen, server_port=args.port, auth=auth, share=args.share, show_error=True)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(page.out_dir, ignore_errors=True)
    return 0


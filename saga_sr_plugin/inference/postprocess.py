"""Low-frequency replacement: the AudioSR post-processing SAGA-SR applies after the VAE decode.

Below the input's 98.5 % roll-off bin c (the same roll-off as the training condition)
the output's STFT is replaced by the input's, so the band the user already had comes
back untouched by the VAE. Level matching follows the authors (and AudioSR):
r = sum over time of |input STFT at bin c| / the same for the output, clamped to
[0.8, 1.2]; the output's bins below c become input bins / r, so the kept band joins the
generated band at the boundary (``lfr_ratio_rule="cutoff_magnitude"``). The earlier rule, an
energy ratio over the whole low band, remains as ``lfr_ratio_rule="band_energy"``, and
``lfr_ratio_rule="none"`` keeps the input's band exactly as it came (r = 1).
``lfr_ratio_rule="output_to_input"`` takes band_energy's r the other way round: the kept band
is the input exactly and the generated band is multiplied by r, so a model whose whole
output is too loud (or quiet) is corrected in the band it generated too, and the two
bands still join at the same relative level. Where the
boundary is the input's content edge, bin c sits in the input's own transition band, so
the input is quieter there than the generated output, r hits the clamp (0.8) and the
whole kept band comes back 1.9 dB louder than the input (docs/inference.md).

The generated band (bins from c up) may not exceed the input's own energy by more than
``max_added_band_db`` (default +12 dB): a real recording's top octaves rarely carry more
energy than the whole band-limited input, while a model asked to extend near-silence
(dither at -90 dBFS) fills it with noise 40 dB louder than the input. Above the cap the
generated band is scaled down to it; ``None`` turns the cap off.
"""
from __future__ import annotations

import math
import typing as tp

import torch

from ..data.audio_format import as_channels_first
from ..data.spectral import ROLLOFF_HOP, ROLLOFF_N_FFT, rolloff_bin, spectral_line_db
from .settings import RATIO_RULES, UpsampleSettings


def match_added_band_envelope(spec_out: torch.Tensor, spec_ref: torch.Tensor, cutoff_bin: int, margin_db: float,
                              max_boost_db: float = 24.0, band_bins: int = 32, slope_frames: int = 17,
                              max_slope_db: float = 6.0, floor_quantile: float = 0.05,
                              edge_frames: int = ROLLOFF_N_FFT // (2 * ROLLOFF_HOP)) -> float:
    """Keep the generated band (bins from ``cutoff_bin`` up) within ``margin_db`` of the input's spectral
    envelope continued above the cutoff, frame by frame; ``spec_out`` is changed in place.

    The envelope, per frame: the input's per-bin power in the octave [c/4, c/2), falling above it at
    the slope from [c/8, c/4) to that octave (both averaged over ``slope_frames`` frames, about
    200 ms; 0 to -``max_slope_db`` dB per octave), plus a flat part, the octave's quietest bins
    (``floor_quantile``): what lies under the partials (room tone, noise floor) goes on above the
    cutoff. The octave just under the cutoff is not used: the low-pass's own transition dims it
    (a Bessel filter's by several dB). In each band of ``band_bins`` bins (689 Hz) and frame, a
    generated level more than ``margin_db`` above the envelope is brought down to that bound; one
    more than ``margin_db`` below the envelope drawn from the octave's median bin (not its mean, which
    a tone's few partials dominate) is raised to it (by at most ``max_boost_db``). So the added band
    rises and falls with the input at a natural spectrum's level, and the model decides the
    detail within the margin; neighbouring windows meet within 2 x ``margin_db`` of each other.
    A raise stops where the frame's added band would carry more energy than the whole input in
    that frame.
    Returns the mean gain (dB).
    """
    c = cutoff_bin
    if c < 16 or c >= spec_out.shape[-2] - 1:
        return 0.0
    floor = 1e-12
    power_in = spec_ref.abs().pow(2).mean(0)          # (bins, frames), channels pooled
    # the first and last frames of a centred STFT hold the reflected padding, whose phase break splatters a
    # tone over every bin: they would call for a raise nothing in the input asks for (clicks at a window's
    # ends, issue 29), so they take the envelope of the nearest whole frame
    if power_in.shape[-1] > 2 * edge_frames:
        power_in = torch.cat([power_in[:, edge_frames:edge_frames + 1].expand(-1, edge_frames),
                              power_in[:, edge_frames:-edge_frames],
                              power_in[:, -edge_frames - 1:-edge_frames].expand(-1, edge_frames)], dim=1)
    power_out = spec_out[:, c:].abs().pow(2).mean(0)
    top, below = power_in[c // 4:c // 2].mean(0), power_in[c // 8:c // 4].mean(0)
    slope = 10 * torch.log10(_smooth_frames(top, slope_frames).clamp(min=floor)
                             / _smooth_frames(below, slope_frames).clamp(min=floor))
    slope = slope.clamp(min=-max_slope_db, max=0.0)
    bins = torch.arange(c, spec_out.shape[-2], dtype=power_in.dtype, device=power_in.device)
    octaves = torch.log2(bins / (0.375 * c))       # above the centre of the anchor octave
    under = torch.quantile(power_in[c // 4:c // 2], floor_quantile, dim=0)
    typical = torch.quantile(power_in[c // 4:c // 2], 0.5, dim=0)
    fall = 10 ** (slope[None, :] * octaves[:, None] / 10)
    target_db = 10 * torch.log10((top[None, :] * fall + under[None, :]).clamp(min=floor))
    # a raise aims at the octave's median bin, not its mean: a few loud partials (a tone) say nothing of a
    # broadband level above the cutoff; for noise-like octaves the two differ by 1.6 dB
    raise_db = 10 * torch.log10((typical[None, :] * fall + under[None, :]).clamp(min=floor))
    gains = torch.zeros_like(power_out)
    for start in range(0, len(bins), band_bins):
        band = slice(start, start + band_bins)
        level = 10 * torch.log10(power_out[band].mean(0).clamp(min=floor))
        wanted, wanted_raise = target_db[band].mean(0), raise_db[band].mean(0)
        gain = ((wanted + margin_db - level).clamp(max=0)
                + (wanted_raise - margin_db - level).clamp(min=0, max=max_boost_db))
        gains[band] = gain
    # Raising never makes a frame's added band louder than the whole input in that frame (or than the model made
    # it): a tone's few loud bins, continued as a flat envelope over every bin above the cutoff, would otherwise
    # become broadband noise several times the tone's energy (a 0.5 sweep came out peaking at 4.1, issue 29).
    before = power_out.sum(0)
    after = (power_out * 10 ** (gains / 10)).sum(0)
    ceiling = torch.maximum(power_in.sum(0), before).clamp(min=floor)
    gains -= 10 * torch.log10((after / ceiling).clamp(min=1.0))[None, :]
    spec_out[:, c:] *= (10 ** (gains / 20)).to(spec_out.real.dtype)
    return float(gains.mean())


def cap_added_band_to_slope(spec_out: torch.Tensor, spec_ref: torch.Tensor, cutoff_bin: int, margin_db: float,
                            band_bins: int = 32, fit_range: tuple[float, float] = (0.5, 0.9),
                            per_frame: bool = False, smooth_frames: int = 5) -> float:
    """Keep the generated band (bins from ``cutoff_bin`` up) under the input's spectrum continued above the
    cutoff with the slope it has in the octave below, plus ``margin_db``; ``spec_out`` is changed in place.

    The input's power (mean over frames and channels) is fitted in dB against log2(bin) over
    ``fit_range`` of the cutoff (below the low-pass's transition band), the line continued above the
    cutoff (never rising). In each band of ``band_bins`` bins (689 Hz) whose mean generated power lies
    more than ``margin_db`` above that line, the band is brought down to it, in every frame alike
    (the model's timing is kept). A natural spectrum rarely falls more slowly above 4 or 8 kHz than
    just below, while a model that has learnt one level for the top octaves puts hiss 15-50 dB above
    a dull recording's (docs/real_audio.md); a bright input (cymbals, clicks) has a flat slope and
    keeps its added band. Only lowers, never raises. ``per_frame``: the bound moves, frame by frame,
    with the level of the input's fitted octave (smoothed over ``smooth_frames``), so the added band
    falls silent where the input does. Returns the mean gain over the bands and frames (dB, <= 0).
    """
    c = cutoff_bin
    if c < 16 or c >= spec_out.shape[-2] - 1:
        return 0.0
    floor = 1e-20
    power_in = spec_ref.abs().pow(2).mean(dim=(0, 2))           # (bins,)
    # dB per octave and dB at the cutoff (of the magnitude, which are the power's dB)
    slope, level_at_cutoff = spectral_line_db(power_in.sqrt(), c, fit_range, floor=floor ** 0.5)
    lo, hi = max(1, int(fit_range[0] * c)), int(fit_range[1] * c)
    if per_frame:   # the bound follows the loudness of the input's octave below the cutoff over time
        top = _smooth_frames(spec_ref[:, lo:hi].abs().pow(2).mean(dim=(0, 1)), smooth_frames)
        offset = 10 * torch.log10(top.clamp(min=floor) / top.mean().clamp(min=floor))     # (frames,)
        power_out = spec_out[:, c:].abs().pow(2).mean(dim=0)                              # (bins above c, frames)
    else:
        offset = torch.zeros(1, dtype=power_in.dtype, device=power_in.device)
        power_out = spec_out[:, c:].abs().pow(2).mean(dim=(0, 2))[:, None]              # (bins above c, 1)
    gains = []
    for start in range(0, power_out.shape[0], band_bins):
        band = slice(start, start + band_bins)
        centre = c + start + min(band_bins, power_out.shape[0] - start) / 2
        allowed = level_at_cutoff + slope * math.log2(centre / c) + margin_db + offset
        level = 10 * torch.log10(power_out[band].mean(dim=0).clamp(min=floor))
        gain = (allowed - level).clamp(max=0.0)
        spec_out[:, c + start:c + start + band_bins] *= (10 ** (gain / 20)).to(spec_out.real.dtype)
        gains.append(float(gain.mean()))
    return sum(gains) / len(gains) if gains else 0.0


def _smooth_frames(x: torch.Tensor, frames: int) -> torch.Tensor:
    """Moving average over the last axis (frames), edges replicated; (frames,) or (rows, frames)."""
    rows = x.reshape(-1, 1, x.shape[-1])
    kernel = torch.ones(1, 1, frames, dtype=x.dtype, device=x.device) / frames
    padded = torch.nn.functional.pad(rows, (frames // 2, frames - 1 - frames // 2), mode="replicate")
    return torch.nn.functional.conv1d(padded, kernel).reshape(x.shape)


class Replacement(tp.NamedTuple):
    audio: torch.Tensor     # (channels, samples), same length as the output given
    cutoff_bin: int         # first bin kept from the generated output
    level_ratio: float      # clamped input/output level ratio r (the kept band is the input / r;
                            # output_to_input: the generated band is the output * r)
    band_gain_db: float     # gain applied to the generated band by the cap (0: not limited)


def _stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    return torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft, dtype=x.dtype, device=x.device),
                      center=True, return_complex=True)


def level_ratio(spec_ref: torch.Tensor, spec_out: torch.Tensor, cutoff_bin: int, rule: str) -> torch.Tensor:
    """r such that input / r joins the output at the boundary (unclamped; nan-free)."""
    if rule == "cutoff_magnitude":
        edge = min(cutoff_bin, spec_ref.shape[-2] - 1)
        ref, out = spec_ref[:, edge].abs().sum(), spec_out[:, edge].abs().sum()
    elif rule == "none":
        return torch.ones((), dtype=spec_ref.real.dtype, device=spec_ref.device)
    elif rule in ("band_energy", "output_to_input"):
        ref, out = spec_ref[:, :cutoff_bin].abs().pow(2).sum().sqrt(), spec_out[:, :cutoff_bin].abs().pow(2).sum().sqrt()
    else:
        raise ValueError(f"unknown LFR ratio rule {rule!r}; known: {list(RATIO_RULES)}")
    return ref / out if out > 0 and ref > 0 else torch.ones((), dtype=ref.dtype, device=ref.device)


def replace_low_frequencies(output: torch.Tensor, lowres_input: torch.Tensor, cutoff_bin: int | None = None,
                            settings: UpsampleSettings | None = None, ratio_range: tuple[float, float] = (0.8, 1.2),
                            n_fft: int = ROLLOFF_N_FFT, hop: int = ROLLOFF_HOP) -> Replacement:
    """Output with bins below ``cutoff_bin`` (default: the input's roll-off bin) taken from the input, then
    the settings' level match and caps (``settings``: the post-processing part of it; default: the paper's).

    Both are (channels, samples) at the same rate and length (the input already
    resampled to 44.1 kHz); the result is on the output's device.
    """
    s = settings if settings is not None else UpsampleSettings()
    out = as_channels_first(output, "generated output").double()
    ref = as_channels_first(lowres_input, "low-res input").double().to(out.device)
    if out.shape != ref.shape:
        raise ValueError(f"low-frequency replacement needs equal shapes, got {tuple(out.shape)} and {tuple(ref.shape)}")
    if cutoff_bin is None:
        cutoff_bin = rolloff_bin(ref)
    spec_out, spec_ref = _stft(out, n_fft, hop), _stft(ref, n_fft, hop)
    ratio = float(level_ratio(spec_ref, spec_out, cutoff_bin, s.lfr_ratio_rule).clamp(*ratio_range))
    if s.lfr_ratio_rule == "output_to_input":
        spec_out[:, cutoff_bin:] *= ratio
        spec_out[:, :cutoff_bin] = spec_ref[:, :cutoff_bin]
    else:
        spec_out[:, :cutoff_bin] = spec_ref[:, :cutoff_bin] / ratio
    if s.envelope_margin_db is not None:
        match_added_band_envelope(spec_out, spec_ref, cutoff_bin, s.envelope_margin_db)
    if s.slope_cap_db is not None:
        cap_added_band_to_slope(spec_out, spec_ref, cutoff_bin, s.slope_cap_db, per_frame=s.slope_cap_per_frame)
    gain_db = 0.0
    if s.max_added_band_db is not None:
        added = spec_out[:, cutoff_bin:].abs().pow(2).sum()
        limit = spec_ref.abs().pow(2).sum() * 10 ** (s.max_added_band_db / 10)
        if added > limit:
            gain = float((limit / added).sqrt())
            spec_out[:, cutoff_bin:] *= gain
            gain_db = 20 * math.log10(max(gain, 1e-12))
    audio = torch.istft(spec_out, n_fft, hop, window=torch.hann_window(n_fft, dtype=out.dtype, device=out.device),
                        center=True, length=out.shape[-1])
    return Replacement(audio.to(output.dtype if torch.is_tensor(output) else torch.float32), cutoff_bin, ratio, gain_db)

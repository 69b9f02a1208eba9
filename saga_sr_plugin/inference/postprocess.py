"""Low-frequency replacement: the AudioSR post-processing SAGA-SR applies after the VAE decode.

Below the input's 98.5 % roll-off bin c (the same roll-off as the training condition)
the output's STFT is replaced by the input's, so the band the user already had comes
back untouched by the VAE. Level matching follows the authors (and AudioSR):
r = sum over time of |input STFT at bin c| / the same for the output, clamped to
[0.8, 1.2]; the output's bins below c become input bins / r, so the kept band joins the
generated band at the boundary (``ratio_rule="cutoff_magnitude"``). The earlier rule, an
energy ratio over the whole low band, remains as ``ratio_rule="band_energy"``, and
``ratio_rule="none"`` keeps the input's band exactly as it came (r = 1).
``ratio_rule="output_to_input"`` takes band_energy's r the other way round: the kept band
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

from ..data.simulation import ROLLOFF_HOP, ROLLOFF_N_FFT, as_channels_first, rolloff_bin


class Replacement(tp.NamedTuple):
    audio: torch.Tensor     # (channels, samples), same length as the output given
    cutoff_bin: int         # first bin kept from the generated output
    level_ratio: float      # clamped input/output level ratio r (the kept band is the input / r;
                            # output_to_input: the generated band is the output * r)
    band_gain_db: float     # gain applied to the generated band by the cap (0: not limited)


RATIO_RULES = ("cutoff_magnitude", "band_energy", "none", "output_to_input")


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
                            ratio_range: tuple[float, float] = (0.8, 1.2), n_fft: int = ROLLOFF_N_FFT,
                            hop: int = ROLLOFF_HOP, ratio_rule: str = "cutoff_magnitude",
                            max_added_band_db: float | None = 12.0) -> Replacement:
    """Output with bins below ``cutoff_bin`` (default: the input's roll-off bin) taken from the input.

    Both are (channels, samples) at the same rate and length (the input already
    resampled to 44.1 kHz); the result is on the output's device.
    """
    out = as_channels_first(output, "generated output").double()
    ref = as_channels_first(lowres_input, "low-res input").double().to(out.device)
    if out.shape != ref.shape:
        raise ValueError(f"low-frequency replacement needs equal shapes, got {tuple(out.shape)} and {tuple(ref.shape)}")
    if cutoff_bin is None:
        cutoff_bin = rolloff_bin(ref)
    spec_out, spec_ref = _stft(out, n_fft, hop), _stft(ref, n_fft, hop)
    ratio = float(level_ratio(spec_ref, spec_out, cutoff_bin, ratio_rule).clamp(*ratio_range))
    if ratio_rule == "output_to_input":
        spec_out[:, cutoff_bin:] *= ratio
        spec_out[:, :cutoff_bin] = spec_ref[:, :cutoff_bin]
    else:
        spec_out[:, :cutoff_bin] = spec_ref[:, :cutoff_bin] / ratio
    gain_db = 0.0
    if max_added_band_db is not None:
        added = spec_out[:, cutoff_bin:].abs().pow(2).sum()
        limit = spec_ref.abs().pow(2).sum() * 10 ** (max_added_band_db / 10)
        if added > limit:
            gain = float((limit / added).sqrt())
            spec_out[:, cutoff_bin:] *= gain
            gain_db = 20 * math.log10(max(gain, 1e-12))
    audio = torch.istft(spec_out, n_fft, hop, window=torch.hann_window(n_fft, dtype=out.dtype, device=out.device),
                        center=True, length=out.shape[-1])
    return Replacement(audio.to(output.dtype if torch.is_tensor(output) else torch.float32), cutoff_bin, ratio, gain_db)

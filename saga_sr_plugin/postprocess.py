"""Low-frequency replacement: the AudioSR post-processing SAGA-SR applies after the VAE decode.

Below the input's 98.5 % roll-off bin (the same roll-off as the training condition)
the output's STFT is replaced by the input's, so the band the user already had comes
back untouched by the VAE. The input band is scaled by the output/input energy ratio
of that band, clamped to [0.8, 1.2], so the level joins the generated high band.
"""
from __future__ import annotations

import typing as tp

import torch

from .simulation import ROLLOFF_HOP, ROLLOFF_N_FFT, as_channels_first, rolloff_bin


class Replacement(tp.NamedTuple):
    audio: torch.Tensor     # (channels, samples), same length as the output given
    cutoff_bin: int         # first bin kept from the generated output
    energy_ratio: float     # clamped output/input energy ratio of the low band


def _stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    return torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft, dtype=x.dtype, device=x.device),
                      center=True, return_complex=True)


def replace_low_frequencies(output: torch.Tensor, lowres_input: torch.Tensor, cutoff_bin: int | None = None,
                            ratio_range: tuple[float, float] = (0.8, 1.2), n_fft: int = ROLLOFF_N_FFT,
                            hop: int = ROLLOFF_HOP) -> Replacement:
    """Output with bins below ``cutoff_bin`` (default: the input's roll-off bin) taken from the input.

    Both are (channels, samples) at the same rate and length (the input already
    resampled to 44.1 kHz).
    """
    out = as_channels_first(output, "generated output").double()
    ref = as_channels_first(lowres_input, "low-res input").double().to(out.device)
    if out.shape != ref.shape:
        raise ValueError(f"low-frequency replacement needs equal shapes, got {tuple(out.shape)} and {tuple(ref.shape)}")
    if cutoff_bin is None:
        cutoff_bin = rolloff_bin(ref)
    spec_out, spec_ref = _stft(out, n_fft, hop), _stft(ref, n_fft, hop)
    low_out = spec_out[:, :cutoff_bin].abs().pow(2).sum()
    low_ref = spec_ref[:, :cutoff_bin].abs().pow(2).sum()
    ratio = float((low_out / low_ref).clamp(*ratio_range)) if low_ref > 0 else 1.0
    spec_out[:, :cutoff_bin] = spec_ref[:, :cutoff_bin] * ratio**0.5
    audio = torch.istft(spec_out, n_fft, hop, window=torch.hann_window(n_fft, dtype=out.dtype, device=out.device), center=True,
                        length=out.shape[-1])
    return Replacement(audio.to(output.dtype if torch.is_tensor(output) else torch.float32), cutoff_bin, ratio)

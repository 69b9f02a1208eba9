"""Log-spectral distance in the two conventions the super-resolution literature uses.

Absolute LSD values differ between conventions, so every number this package
prints names its convention:

- ``ssr`` (ssr_eval, used by NVSR and AudioSR): |STFT| with n_fft 2048, hop 10 ms
  (441 at 44.1 kHz), Hann; per frame sqrt(mean_f (log10(|R|^2 / (|E| + 1e-12)^2 + 1e-12))^2),
  mean over frames. Note the floors: a bin where both are exactly zero counts
  log10(1e-12)^2 = 144, so silence is finite but not 0.
- ``nuwave2`` (NU-Wave 2): power |STFT|^2 with n_fft 2048, hop 512, Hann;
  per frame sqrt(mean_f (log10 max(P_R, 1e-8) - log10 max(P_E, 1e-8))^2), mean over frames.

Both are also reported on the bins below (``lf``) and above (``hf``) the input's
cutoff. Stereo is scored per channel and averaged.

Energy-scaling pitfall (AudioSR authors, ``lsd_calculation_pitfall``): LSD(x, a*x) is
not 0, so a system whose output level differs slightly from the reference is
penalised everywhere, and more so in loud low bands than in the band it generated.
With ``energy_unify=True`` the estimate's spectrogram is scaled so that the energy
in its lowest 10 % of bins matches the reference's before scoring (AudioSR's remedy).
It is off by default, as in the published tables; the evaluate command reports both.
"""
from __future__ import annotations

import typing as tp

import torch

CONVENTIONS = ("ssr", "nuwave2")
_SPEC = {"ssr": (2048, 441), "nuwave2": (2048, 512)}
SSR_EPS = 1e-12
NUWAVE_FLOOR = 1e-8


def _magnitude(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """(channels, bins, frames) float64 magnitude."""
    x = torch.as_tensor(x, dtype=torch.float64)
    x = x.unsqueeze(0) if x.ndim == 1 else x
    return torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft, dtype=torch.float64),
                      center=True, return_complex=True).abs()


def _unify(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    low = max(1, est.shape[-2] // 10)
    e_est = est[..., :low, :].pow(2).sum()
    e_ref = ref[..., :low, :].pow(2).sum()
    return est * (e_ref / e_est).sqrt() if e_est > 0 else est


def _frame_lsd(ref_mag: torch.Tensor, est_mag: torch.Tensor, convention: str) -> torch.Tensor:
    """Per-bin squared log differences, (channels, bins, frames)."""
    if convention == "ssr":
        return torch.log10(ref_mag**2 / (est_mag + SSR_EPS) ** 2 + SSR_EPS) ** 2
    ref_p = ref_mag.pow(2).clamp(min=NUWAVE_FLOOR)
    est_p = est_mag.pow(2).clamp(min=NUWAVE_FLOOR)
    return (torch.log10(ref_p) - torch.log10(est_p)) ** 2


def _reduce(sq: torch.Tensor) -> float:
    """sqrt(mean over bins) per frame, then mean over frames and channels."""
    if sq.shape[-2] == 0:
        return float("nan")
    return float(sq.mean(dim=-2).sqrt().mean())


def _magnitudes(estimate: torch.Tensor, reference: torch.Tensor, sample_rate: int,
                convention: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Checked, length-matched (reference, estimate) magnitudes in one convention's STFT, and its n_fft."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown LSD convention {convention!r}; choose from {CONVENTIONS}")
    est, ref = torch.as_tensor(estimate), torch.as_tensor(reference)
    est = est.unsqueeze(0) if est.ndim == 1 else est
    ref = ref.unsqueeze(0) if ref.ndim == 1 else ref
    if est.shape[0] != ref.shape[0]:
        raise ValueError(f"channel counts differ: estimate {est.shape[0]}, reference {ref.shape[0]}")
    n = min(est.shape[-1], ref.shape[-1])
    n_fft, hop = _SPEC[convention]
    if convention == "ssr":
        hop = round(sample_rate * 0.01)
    return _magnitude(ref[..., :n], n_fft, hop), _magnitude(est[..., :n], n_fft, hop), n_fft


def _score(ref_mag: torch.Tensor, est_mag: torch.Tensor, convention: str, cut: int | None,
           energy_unify: bool) -> dict[str, float]:
    if energy_unify:
        est_mag = _unify(est_mag, ref_mag)
    sq = _frame_lsd(ref_mag, est_mag, convention)
    out = {"lsd": _reduce(sq), "lsd_lf": float("nan"), "lsd_hf": float("nan")}
    if cut is not None:
        out["lsd_lf"] = _reduce(sq[:, :cut])
        out["lsd_hf"] = _reduce(sq[:, cut:])
    return out


def _cutoff_bin(cutoff_hz: float | None, sample_rate: int, n_fft: int) -> int | None:
    return None if cutoff_hz is None else int(round(cutoff_hz / (sample_rate / n_fft)))


def lsd(estimate: torch.Tensor, reference: torch.Tensor, sample_rate: int = 44100, convention: str = "nuwave2",
        cutoff_hz: float | None = None, energy_unify: bool = False) -> dict[str, float]:
    """LSD of ``estimate`` against ``reference`` ((channels, samples) or (samples,), same rate).

    Returns ``{"lsd": ..., "lsd_lf": ..., "lsd_hf": ...}``; the band values need
    ``cutoff_hz`` (else NaN). Lengths may differ by a few samples (the longer is trimmed).
    """
    ref_mag, est_mag, n_fft = _magnitudes(estimate, reference, sample_rate, convention)
    return _score(ref_mag, est_mag, convention, _cutoff_bin(cutoff_hz, sample_rate, n_fft), energy_unify)


def all_lsd(estimate: torch.Tensor, reference: torch.Tensor, sample_rate: int = 44100,
            cutoff_hz: float | None = None) -> dict[str, float]:
    """Both conventions, raw and energy-unified, flattened: e.g. ``nuwave2/lsd_hf``, ``ssr_unified/lsd``.

    Each convention's two STFTs are computed once and scored both ways.
    """
    values: dict[str, float] = {}
    for convention in CONVENTIONS:
        ref_mag, est_mag, n_fft = _magnitudes(estimate, reference, sample_rate, convention)
        cut = _cutoff_bin(cutoff_hz, sample_rate, n_fft)
        for unify in (False, True):
            name = convention + ("_unified" if unify else "")
            for key, value in _score(ref_mag, est_mag, convention, cut, unify).items():
                values[f"{name}/{key}"] = value
    return values


def lsd_by_band(estimate: torch.Tensor, reference: torch.Tensor, edges_hz: tp.Sequence[float],
                sample_rate: int = 44100, convention: str = "nuwave2") -> list[dict[str, float]]:
    """LSD and level difference per band ``[edges_hz[i], edges_hz[i + 1])``: where an LSD comes from.

    ``level_db`` is 10 log10 of the estimate's band power over the reference's (all frames
    pooled, each floored at the convention's floor): + means the estimate is too loud there.
    """
    ref_mag, est_mag, n_fft = _magnitudes(estimate, reference, sample_rate, convention)
    sq = _frame_lsd(ref_mag, est_mag, convention)
    floor = NUWAVE_FLOOR if convention == "nuwave2" else SSR_EPS
    bins = [min(_cutoff_bin(f, sample_rate, n_fft), ref_mag.shape[-2]) for f in edges_hz]
    out = []
    for lo, hi in zip(bins, bins[1:]):
        power = [m[:, lo:hi].pow(2).clamp(min=floor).mean() for m in (est_mag, ref_mag)]
        out.append({"lsd": _reduce(sq[:, lo:hi]), "level_db": float(10 * torch.log10(power[0] / power[1]))})
    return out


def mean_std(values: tp.Iterable[float]) -> tuple[float, float]:
    t = torch.tensor([v for v in values if v == v], dtype=torch.float64)
    if len(t) == 0:
        return float("nan"), float("nan")
    return float(t.mean()), float(t.std(unbiased=False)) if len(t) > 1 else 0.0

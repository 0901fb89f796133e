"""Measuring a curve: the robust trend, its noise, spikes, the last third's fall and the validation rise."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ftlab.diagnose.read import LossHistory
from ftlab.diagnose.rules import (
    FLUCT_FLOOR,
    LEVEL_FLOOR,
    SPIKE_MIN,
    SPIKE_NOISE_MULT,
    VAL_EXACT,
    VAL_RISE_MIN,
)

__all__ = ["local_noise", "noise_level", "smooth", "theil_sen", "window_for"]

# --------------------------------------------------------------------------------------------
# Robust smoothing and the measures
# --------------------------------------------------------------------------------------------


def _odd(k: float) -> int:
    k = max(1, round(k))
    return k if k % 2 else k + 1


def window_for(n: int) -> int:
    """The running-median window for ``n`` logged points: about n/12, odd, from 3 (1 below 5 points) to 201.

    Example: ``window_for(24) == 3``, ``window_for(300) == 25``.
    """
    if n < 5:
        return 1
    return min(201, max(3, _odd(n / 12)))


def _rolling(y: np.ndarray, w: int, fn) -> np.ndarray:
    """Centered running statistic, truncated at the ends (like pandas ``rolling(center=True, min_periods=1)``)."""
    n, h = len(y), w // 2
    if w <= 1 or n == 0:
        return y.copy()
    out = np.empty(n)
    for i in range(min(h, n)):
        out[i] = fn(y[: i + h + 1])
    for i in range(max(h, n - h), n):
        out[i] = fn(y[i - h:])
    if n > 2 * h:
        view = np.lib.stride_tricks.sliding_window_view(y, w)
        for a in range(0, len(view), 20000):  # chunks bound the memory for very long runs
            out[h + a: h + a + len(view[a: a + 20000])] = fn(view[a: a + 20000], axis=-1)
    return out


_TS_MAX = 400


def theil_sen(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Robust straight line (slope, intercept): the median of all pairwise slopes.

    Example: ``theil_sen([0, 1, 2, 3, 4], [0, 1, 2, 30, 4])`` is ``(1.0, 0.0)``: the outlier is ignored.
    More than 400 points are first reduced to the medians of 400 equal bins.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2:
        return 0.0, float(y[0]) if len(y) else 0.0
    if len(x) > _TS_MAX:  # all pairs would be too many: use the medians of _TS_MAX equal bins
        bins = np.array_split(np.arange(len(x)), _TS_MAX)
        x = np.array([np.median(x[b]) for b in bins])
        y = np.array([np.median(y[b]) for b in bins])
    i, j = np.triu_indices(len(x), 1)
    dx = x[j] - x[i]
    ok = dx != 0
    slope = float(np.median((y[j] - y[i])[ok] / dx[ok])) if ok.any() else 0.0
    return slope, float(np.median(y - slope * x))


def smooth(y: Sequence[float], w: int | None = None, *, x: Sequence[float] | None = None) -> np.ndarray:
    """Robust trend: a running median over ``w`` points (default ``window_for(len(y))``), then a short running mean.

    At both ends, where a centred window does not fit, a robust straight line (Theil–Sen) through
    the first or last ``w`` points gives the trend, so a curve that is still falling at the end is
    not read as flattening. ``x`` (the steps) defaults to 0, 1, 2, ...

    Example: ``smooth([3, 2, 9, 1.5, 1.4, 1.3, 1.2])`` ignores the 9.
    """
    y = np.asarray(y, dtype=float)
    x = np.arange(len(y), dtype=float) if x is None else np.asarray(x, dtype=float)
    w = window_for(len(y)) if w is None else w
    med = _rolling(y, w, np.median)
    out = _rolling(med, _odd(w / 3) if w >= 5 else 1, np.mean)
    h = w // 2
    if w >= 3 and len(y) >= w:
        for sl, at in ((slice(0, w), slice(0, h)), (slice(len(y) - w, len(y)), slice(len(y) - h, len(y)))):
            slope, icpt = theil_sen(x[sl], y[sl])
            out[at] = icpt + slope * x[at]
    return out


def noise_level(x: Sequence[float], y: Sequence[float], level: Sequence[float] | float = 1.0) -> float:
    """Typical point-to-point fluctuation of a curve, relative to ``level``, robust to spikes and trends.

    Each point is compared with the straight line through its two neighbours (a second
    difference, blind to any straight trend); the robust spread (1.4826 × median absolute value) of
    those differences, rescaled to one point's noise, estimates the noise. A bend (the fast early
    drop, the bottom of an overfitting U) inflates second differences, so with 6 or more points
    third differences, blind to any parabola, give a second estimate and the smaller one is taken.
    A smooth curve gives about 0 even when it falls fast; a batch-size-1 curve gives 0.3 or more.

    Example: ``noise_level(range(7), [9, 4, 1, 0, 1, 4, 9])`` is 0.0 (a parabola has no noise);
    ``noise_level(range(7), [1, 1.1, 0.9, 1.1, 0.9, 1.1, 0.9])`` is about 0.24 (zig-zag is the worst case).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(y) < 3:
        return 0.0
    lev = np.broadcast_to(np.asarray(level, dtype=float), y.shape)
    a = (x[1:-1] - x[:-2]) / np.maximum(x[2:] - x[:-2], 1e-300)
    r = y[1:-1] - ((1 - a) * y[:-2] + a * y[2:])
    r = r / np.sqrt(1 + a**2 + (1 - a) ** 2)  # the difference's variance is (1 + a² + (1-a)²) σ²
    sigma = float(1.4826 * np.median(np.abs(r / lev[1:-1])))
    if len(y) >= 6:  # third differences (by index) have variance 20 σ²
        d3 = (y[3:] - 3 * y[2:-1] + 3 * y[1:-2] - y[:-3]) / math.sqrt(20)
        sigma = min(sigma, float(1.4826 * np.median(np.abs(d3 / (0.5 * (lev[1:-2] + lev[2:-1]))))))
    return sigma


_MED5_MAD = 0.4903  # median |x - median of 5 around it, itself included| for unit Gaussian noise


def local_noise(y: Sequence[float], level: Sequence[float] | float = 1.0) -> float:
    """Typical point-to-point fluctuation: how far a typical point sits from the median of the five around it.

    The median over the points of |y[i] - median(y[i-2..i+2])| / level[i], rescaled so that white noise of
    spread σ gives σ. A monotone run of values, however fast and however curved its fall, gives exactly 0
    (the median of five sorted values is the middle one), so unlike differences it does not read the
    bend of a fast early drop as noise. Fewer than 5 points give 0.

    Example: ``local_noise([5, 4, 3, 2.5, 2.2, 2.1, 2.05])`` is 0.0; 1 + 5 % Gaussian noise gives about 0.05.
    """
    y = np.asarray(y, dtype=float)
    if len(y) < 5:
        return 0.0
    lev = np.broadcast_to(np.asarray(level, dtype=float), y.shape)
    med = np.median(np.lib.stride_tricks.sliding_window_view(y, 5), axis=1)
    return float(np.median(np.abs(y[2:-2] - med) / lev[2:-2]) / _MED5_MAD)


def _at(steps: np.ndarray, values: np.ndarray, step: float) -> float:
    return float(np.interp(step, steps, values))


def _slope_per_100(steps: np.ndarray, values: np.ndarray, a: float, b: float) -> float:
    if b <= a:
        return 0.0
    return (_at(steps, values, b) - _at(steps, values, a)) / (b - a) * 100


@dataclass
class _Tail:
    """The last third of a curve, fitted with a robust line: where it ends and how much it still fell."""

    end: float        # the line's value at the last step
    recent: float     # how much the loss fell over the last third of the steps (loss units; < 0: rose)
    share: float      # that fall as a share of the whole improvement since the start
    se_recent: float  # standard error of ``recent`` from point noise (loss units)
    se_end: float     # standard error of ``end``
    points: int       # points in the last third


def _tail(x: np.ndarray, y: np.ndarray, s: np.ndarray, start: float, sigma_abs: float, *,
          best_so_far: bool = False, x0: float | None = None) -> _Tail:
    """Fit the last third of the steps with a Theil–Sen line (at least 3 points).

    With fewer than 7 points, or ``best_so_far`` (evaluations on a whole validation set, taken as
    they are), the points themselves are used: with ``best_so_far`` their running minimum, the best
    checkpoint so far, so one bumped evaluation does not hide a fall. The level two thirds in is
    interpolated (with ``best_so_far``: the best evaluation up to it) and the end is the last point.
    The last third is of the run's steps from ``x0`` (default the first point; for evaluations, the
    run's first training step, so that the eval interval does not move it).
    """
    x0, x1 = float(x[0]) if x0 is None else float(x0), float(x[-1])
    cut = x1 - (x1 - x0) / 3
    best = float(np.min(s))
    if len(y) < 7 or best_so_far:
        if best_so_far:
            s = np.minimum.accumulate(s)
            before = s[x <= cut]
            at_cut = float(before[-1]) if len(before) else float(s[0])
        else:
            at_cut = _at(x, s, cut)
        end = float(s[-1])
        recent = at_cut - end
        se_recent = se_end = 0.0
        points = int((x >= cut).sum())
    else:
        sel = x >= cut
        if sel.sum() < 3:
            sel = np.arange(len(x)) >= len(x) - 3
        slope, icpt = theil_sen(x[sel], y[sel])
        end = icpt + slope * x1
        recent = -slope * (x1 - cut)
        points = int(sel.sum())
        # a least-squares line through n even points: the fall over its span has variance 12σ²/n,
        # its end value 4σ²/n (Theil–Sen is nearly as precise and ignores spikes)
        se_recent, se_end = sigma_abs * math.sqrt(12 / points), sigma_abs * math.sqrt(4 / points)
        best = min(best, end)
    total = start - best
    share = recent / total if total > 0 else 0.0
    return _Tail(end, recent, share, se_recent, se_end, points)


@dataclass
class _Rise:
    """How far the validation loss ended above its lowest evaluation, and what noise could explain."""

    rise: float       # (end - minimum) / (minimum + floor)
    threshold: float  # a rise above this is real
    end: float        # the end level: a robust line through the evaluations from the minimum on
    noise_part: float = 0.0  # what noise alone could explain (the threshold is the larger of it and VAL_RISE_MIN)


def _rise(xv: np.ndarray, yv: np.ndarray, floor: float, sigma_all: float, i0: int,
          rise_min: float = VAL_RISE_MIN, sv: np.ndarray | None = None) -> _Rise:
    """Test "Val ↑": did the validation loss climb from its lowest evaluation (index ``i0``) and stay up?

    A rise is sustained, not one bumped evaluation: the end level is the lower of the last two
    (smoothed, ``sv``; evaluations on a whole validation set are taken as they are) evaluations,
    and with fewer than two evaluations after the lowest there is no rise to see. The noise is the
    larger of the curve's noise level and the evaluations' scatter around a Theil–Sen line through
    them from the lowest on. The lowest of m noisy evaluations sits about sqrt(2 ln m) noise widths
    below the level it came from, and the end has its own standard error (2σ/sqrt(n)): the rise
    must clear both, and 3 %.
    """
    m = len(yv)
    sv = yv if sv is None else sv
    vmin = float(yv[i0])
    lvl = abs(vmin) + floor
    after = slice(i0, m)
    n = m - i0
    sigma = sigma_all
    if n >= 3:
        end = float(min(sv[-2:]))
        if n >= 5:  # the scatter around the line, if larger than the curve-wide estimate
            slope, icpt = theil_sen(xv[after], yv[after])
            resid = yv[after] - (icpt + slope * xv[after])
            sigma = max(sigma, float(1.4826 * np.median(np.abs(resid)) * math.sqrt(n / (n - 2))) / lvl)
    else:
        end = vmin
    if sigma < VAL_EXACT and m < 7:
        sigma = 0.0
    rise = max(0.0, end - vmin) / lvl
    noise_part = (math.sqrt(2 * math.log(max(m, 2))) + 2 * math.sqrt(4 / max(n, 1))) * sigma
    return _Rise(rise, max(rise_min, noise_part), end, noise_part)


@dataclass
class _Analysis:
    """Everything measured on a history: arrays for plotting, numbers for the evidence."""

    history: LossHistory
    x: np.ndarray
    y: np.ndarray
    s: np.ndarray
    z: np.ndarray
    spikes: np.ndarray
    xv: np.ndarray
    yv: np.ndarray
    sv: np.ndarray
    pattern: str
    reason: str
    evidence: dict[str, Any]
    best_step: int | None
    warnings: list[str]
    measures: dict[str, Any] = field(default_factory=dict)  # what ``_decide`` reads


def _finite(steps: np.ndarray, loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(loss)
    return steps[ok], loss[ok]


def _int_step(step: float) -> int | float:
    return int(step) if float(step).is_integer() else float(step)


def _trailing_nonfinite(values: np.ndarray) -> int:
    """How many values at the end are NaN/inf (a run that diverged and stayed so)."""
    finite = np.isfinite(values)
    return len(values) - (int(np.flatnonzero(finite)[-1]) + 1 if finite.any() else 0)


@dataclass
class _Train:
    """The training curve's trend and features (``_train_features``); ``evidence`` is what a diagnosis shows."""

    s: np.ndarray       # the robust trend
    z: np.ndarray       # each loss's distance above the trend, relative to the level
    spikes: np.ndarray  # where z clears the spike threshold
    start: float        # the start level (median of the first sixth)
    end: float          # the end level (median of the last sixth)
    scale: float        # |start|, the scale of relative measures
    floor: float        # LEVEL_FLOOR of the scale
    drop: float         # (start - end) / scale
    noise: float
    spike_thr: float
    spike_count: int
    min_spikes: int
    rebound: float
    rebound_noise: float
    rebound_i: int
    overshoot: float
    overshoot_i: int
    tail: _Tail
    evidence: dict[str, Any]


def _train_features(x: np.ndarray, y: np.ndarray) -> _Train:
    """Smooth the training loss and measure its noise, spikes, rebound, overshoot, drop and last third."""
    n = len(y)
    w = window_for(n)
    s = smooth(y, w, x=x)
    k = max(3, round(n / 6))  # start level: median of the first sixth (robust to a noisy first batch)
    start = float(np.median(y[:k]))
    scale = max(abs(start), 1e-12)
    floor = LEVEL_FLOOR * scale  # relative measures divide by (level + floor): a loss near 0 does not blow them up
    # the fluctuation floor is 30 % of the untrained model's loss (the first logged losses), as on a plot of the
    # run: not of the first sixth's median, which falls as a fast-learning run gets longer
    initial = float(np.median(y[:3]))
    level = np.abs(s) + FLUCT_FLOOR * max(abs(initial), 1e-12)
    z = (y - s) / level
    noise = local_noise(y, level)
    spike_thr = max(SPIKE_MIN, SPIKE_NOISE_MULT * noise)
    spikes = z > spike_thr
    spike_count = int(spikes.sum())
    min_spikes = max(3, math.ceil(0.01 * n))
    # a rebound is judged where the running median is centred: the straight-line ends follow noise
    centred = s[w // 2: n - w // 2] if n > w else s
    run_min = np.minimum.accumulate(centred)
    rel_rise = (centred - run_min) / (np.abs(run_min) + floor)
    rebound_noise = 4 * noise * math.sqrt(1.6 / w)  # what noise moves a median of w
    rebound = float(np.max(rel_rise))
    rebound_i = int(np.argmax(rel_rise)) + (w // 2 if n > w else 0)
    # fine-tuning should never leave the loss clearly worse than the untrained model's: a too-high LR does
    med3 = np.median(np.lib.stride_tricks.sliding_window_view(y, 3), axis=1)
    overshoot_i = int(np.argmax(med3)) + 1
    overshoot = float(med3[overshoot_i - 1] / initial - 1) if initial > 0 else 0.0
    tail = _tail(x, y, s, start, noise * float(level[-1]))
    end = float(np.median(y[-k:]))
    drop = (start - end) / scale
    third = (x[-1] - x[0]) / 3
    ev = dict(
        steps=[_int_step(x[0]), _int_step(x[-1])],
        train_start=start, train_end=end, train_min=float(np.min(s)),
        train_drop=drop,
        train_slope_start=_slope_per_100(x, s, x[0], x[0] + third),
        train_slope_end=-tail.recent / third * 100 if third else 0.0,
        train_recent_share=tail.share,
        noise=noise,
        spike_size=float(max(0.0, np.max(z))),
        spike_count=spike_count,
        rebound=rebound,
        overshoot=overshoot,
    )
    return _Train(s, z, spikes, start, end, scale, floor, drop, noise, spike_thr, spike_count, min_spikes, rebound,
                  rebound_noise, rebound_i, overshoot, overshoot_i, tail, ev)


@dataclass
class _Val:
    """The validation curve's features (``_val_features``); ``evidence`` is what a diagnosis shows."""

    xv: np.ndarray
    yv: np.ndarray
    sv: np.ndarray  # smoothed when the evaluations are noisy, else as they are
    m: int          # finite evaluations
    val_min_step: int | float | None
    vmin: float
    vend: float
    val_rise: float = 0.0
    val_rise_noise: float = 0.0
    val_rise_end: float = math.nan
    val_share: float = 0.0
    val_recent_rel: float = 0.0
    val_se_rel: float = 0.0
    evidence: dict[str, Any] = field(default_factory=dict)


def _val_features(history: LossHistory, x: np.ndarray, s: np.ndarray, start: float, scale: float,
                  rise_min: float) -> _Val:
    """Find the validation loss's robust minimum, its rise since and its last third's fall."""
    xv, yv = _finite(history.val_steps, history.val_loss)
    vfloor = 1e-3 * scale  # validation losses (never near 0 in fine-tuning) are compared relative to themselves
    m = len(yv)
    v = _Val(xv, yv, yv.copy(), m, None, math.nan, math.nan)
    ev = v.evidence
    if m:
        # per-batch validation losses (OpenAI's valid_loss) are noisy and get smoothed; evaluations
        # on a whole validation set move only as the model does (under 1 %) and are taken as they are
        sigma_v = noise_level(xv, yv, np.abs(yv) + vfloor) if m >= 7 else 0.0
        if sigma_v < VAL_EXACT:
            sigma_v = 0.0
        wv = window_for(m) if sigma_v else 1
        v.sv = sv = smooth(yv, wv, x=xv)
        # the robust minimum: where the running median is lowest (looked for where it is centred);
        # the checkpoint to keep is the lowest evaluation inside that window
        ismooth = int(np.argmin(sv[: m - wv // 2]))
        lo, hi = max(0, ismooth - wv // 2), min(m, ismooth + wv // 2 + 1)
        imin = lo + int(np.argmin(yv[lo:hi]))
        v.vmin = vmin = float(yv[imin])
        v.val_min_step = _int_step(xv[imin])
        ev.update(val_start=float(sv[0]), val_min=vmin, val_min_step=v.val_min_step,
                  gap_start=float(sv[0] - _at(x, s, xv[0])))
    if m >= 2:
        lvl = abs(vmin) + vfloor
        # before training the validation loss is about the training loss: count the improvement from there
        vtail = _tail(xv, yv, sv, max(start, float(sv[0])), sigma_v * lvl, best_so_far=not sigma_v,
                      x0=float(x[0]))
        # where it ends: the last evaluation as it is, or (noisy) the robust line's end; vtail.end is the
        # best evaluation so far when evaluations are taken as they are
        v.vend = vtail.end if sigma_v else float(yv[-1])
        rise = _rise(xv, yv, vfloor, sigma_v, imin, rise_min, sv)
        v.val_rise, v.val_rise_noise, v.val_rise_end = rise.rise, rise.noise_part, rise.end
        v.val_share = vtail.share
        v.val_recent_rel = vtail.recent / (abs(vtail.end) + vfloor)
        v.val_se_rel = vtail.se_recent / (abs(vtail.end) + vfloor)
        ev.update(val_end=v.vend, gap_end=float(v.vend - _at(x, s, xv[-1])),
                  val_slope_end=-vtail.recent / ((xv[-1] - xv[0]) / 3) * 100,
                  val_recent_share=vtail.share, val_recent_drop=v.val_recent_rel, val_noise=sigma_v,
                  val_rise=v.val_rise, val_rise_threshold=rise.threshold, val_rise_end=rise.end)
    elif m == 1:
        ev.update(val_end=float(yv[0]), gap_end=ev["gap_start"])
    return v

"""Loss-curve diagnosis: name the articles' five training patterns from a loss log (notebook 05).

The articles' monitoring table, with the later article's wording::

    code         the curves show               what it means                            action
    healthy      Train ↓ · Val ↓ (parallel)    Healthy — model is learning              Continue training
    plateau      Train ↓ · Val flattens        Near-optimal, diminishing returns        Reduce LR or stop soon
    overfitting  Train ↓ · Val ↑ (diverges)    Overfitting — memorizing training data   Stop now; reduce epochs; ...
    flat         Train barely moves from start LR too low or data format issue          Raise LR 5-10×; ...
    unstable     Train spiky throughout        LR too high or batch too small           Halve LR; ...

``diagnose`` reads any of three loss logs, a Hugging Face ``trainer_state.json`` (or the
checkpoint/output folder that holds one), an OpenAI fine-tuning step-metrics CSV, or a plain
``step,train_loss,valid_loss`` CSV, and names the pattern with its evidence::

    >>> d = diagnose("outputs/checkpoint-300")                  # doctest: +SKIP
    >>> d.pattern, d.best_step
    ('overfitting', 120)
    >>> d.action
    'Stop now; reduce epochs; add more diverse data'

How it decides (every measure is relative, so it does not depend on the loss scale, the run
length or the eval interval):

1. The training loss is smoothed with a running median whose window grows with the number of
   logged points (about a twelfth of them), so single bad batches do not move the trend; at the
   ends a robust straight line (Theil–Sen) takes over.
2. ``noise`` is the typical step-to-step fluctuation: how far a typical logged loss sits from the
   median of the five around it (``local_noise``; a smooth fall of any speed and bend gives 0),
   relative to the loss level floored at 30 % of the first logged losses, so that it measures what a
   plot of the run shows and a loss near zero does not magnify tiny wiggles. A ``spike`` is a point
   far above the trend; ``rebound`` is how far the smoothed loss climbs back above its best so far;
   ``overshoot`` how far it climbs above where it started.
3. **unstable** when the training (or validation) loss ends in NaN/inf (for a Hugging Face log,
   also a NaN/inf gradient norm), the noise exceeds ``noise_unstable``, repeated spikes, a
   ``rebound_min`` rebound or a 25 % overshoot. **flat** when the loss fell by less than
   ``flat_drop`` of its start. Otherwise the validation loss decides:
4. **overfitting** when it rose from its lowest evaluation and stayed up: the lower of the last two
   evaluations (smoothed when they are noisy) is above the lowest by ``val_rise_min`` and by more
   than the noise of the evaluations allows (the lowest of m noisy values is low by chance); one
   bumped evaluation is not a rise. ``best_step`` is the lowest evaluation, the checkpoint to keep.
   **healthy** while it still falls at a useful rate, however much slower than at the start: over
   the last third of the run's steps the best evaluation so far improved by at least
   ``recent_rel_plateau`` of its level (noisy per-batch evaluations: a robust line through the last
   third, clear of the noise); **plateau** otherwise. Validation losses are compared relative to
   themselves (a fine-tune's validation loss does not approach 0), with no floor. Without validation data the
   training curve stands in, with a warning: you cannot detect overfitting without it.

The thresholds (``THRESHOLDS``) are fitted (``fit_thresholds``) on one half of a labelled set of
real curves, ``tests/data/curves/labelled.json``: toy fine-tunes at many learning rates, batch
sizes, lengths and eval intervals, and OpenAI-format step-metrics CSVs from the sandbox, each cut
at several points and labelled by a written rule (``tests/data/curves/make_labelled_set.py``).
The other half, other runs, scores them: ``tests/test_diagnose.py`` asserts it.

The package, by what a reader looks for:

- ``rules``: the articles' five patterns (``PATTERNS``) and the fitted ``THRESHOLDS``.
- ``read``: loading a curve (``load_history``, ``read_trainer_state``, ``read_metrics_csv``, ``as_history``).
- ``measure``: features of a curve (``smooth``, ``local_noise``, ``theil_sen``, the last third, the validation rise).
- ``verdict``: the decision (``diagnose``, ``Diagnosis``, ``apply_action``).
- ``fit``: fitting the thresholds on labelled curves (``measures``, ``decide_pattern``, ``fit_thresholds``).
- ``plot``: ``plot_diagnosis``, ``plot_diagnoses`` (a grid of them), both drawn by ``ftlab.show.loss_plot``.
- ``runs``: the toy trainings that cause each pattern (``pattern_runs``, ``train_for_pattern``,
  ``pattern_trainer``); the only module
  here that imports ``ftlab.train`` and ``ftlab.toymodel``.
"""

from __future__ import annotations

from ftlab.diagnose.fit import FIT_GRID, decide_pattern, fit_thresholds, measures
from ftlab.diagnose.measure import local_noise, noise_level, smooth, theil_sen, window_for
from ftlab.diagnose.plot import plot_diagnoses, plot_diagnosis
from ftlab.diagnose.read import (
    EXPECTED,
    LossHistory,
    as_history,
    find_trainer_state,
    history_from_log,
    load_history,
    read_metrics_csv,
    read_trainer_state,
)
from ftlab.diagnose.rules import (
    FALLING_SE_MULT,
    FLAT_DROP,
    FLUCT_FLOOR,
    LEVEL_FLOOR,
    MIN_TRAIN_POINTS,
    NO_VALIDATION_WARNING,
    NOISE_UNSTABLE,
    OVERSHOOT_MIN,
    PATTERNS,
    REBOUND_MIN,
    RECENT_REL_PLATEAU,
    RECENT_SHARE_PLATEAU,
    SPIKE_MIN,
    SPIKE_NOISE_MULT,
    THRESHOLDS,
    VAL_EXACT,
    VAL_NOISE_MULT,
    VAL_RISE_MIN,
    Pattern,
)
from ftlab.diagnose.runs import pattern_runs, pattern_trainer, train_for_pattern
from ftlab.diagnose.verdict import FLAT_LR_FACTOR, Diagnosis, apply_action, diagnose

__all__ = ["EXPECTED", "FALLING_SE_MULT", "FIT_GRID", "FLAT_DROP", "FLAT_LR_FACTOR", "FLUCT_FLOOR",
           "LEVEL_FLOOR", "MIN_TRAIN_POINTS", "NOISE_UNSTABLE", "NO_VALIDATION_WARNING", "OVERSHOOT_MIN",
           "PATTERNS", "REBOUND_MIN", "RECENT_REL_PLATEAU", "RECENT_SHARE_PLATEAU", "SPIKE_MIN",
           "SPIKE_NOISE_MULT", "THRESHOLDS", "VAL_EXACT", "VAL_NOISE_MULT", "VAL_RISE_MIN", "Diagnosis",
           "LossHistory", "Pattern", "apply_action", "as_history", "decide_pattern", "diagnose",
           "find_trainer_state", "fit_thresholds", "history_from_log", "load_history", "local_noise",
           "measures", "noise_level", "pattern_runs", "pattern_trainer", "plot_diagnoses", "plot_diagnosis", "read_metrics_csv",
           "read_trainer_state", "smooth", "theil_sen", "train_for_pattern", "window_for"]

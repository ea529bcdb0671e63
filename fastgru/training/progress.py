r"""A Keras-3-style progress bar for ``fit``/``evaluate``/``predict``.

``verbose=1``: ``12/32 ━━━━━━━━━━━━━━━━━━━━ 0s 2ms/step - accuracy: 0.5100 - loss: 0.6900``, redrawn
in place (``\r``) when stdout is a terminal; when it is not (a log file, a pipe) only the final
line of each epoch is written. ``verbose=2``: one line per epoch,
``32/32 - 0s - 2ms/step - accuracy: 0.5100 - loss: 0.6900``. :class:`fastgru.training.callbacks.ProgbarLogger` is the
callback that drives it from ``fit``/``evaluate``/``predict`` as Keras's does.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

_BOLD, _GREEN, _GREY, _RESET = "\x1b[1m", "\x1b[32m", "\x1b[37m", "\x1b[0m"


def _format_value(v) -> str:
    if isinstance(v, (list, tuple, np.ndarray)):
        v = float(np.mean(v))
    if isinstance(v, (int, float, np.floating, np.integer)):
        return f"{v:.4f}" if abs(v) > 1e-3 else f"{v:.4e}"
    return str(v)


def _format_time(time_per_unit: float, unit_name: str) -> str:
    if time_per_unit >= 1 or time_per_unit == 0:
        return f" {time_per_unit:.0f}s/{unit_name}"
    if time_per_unit >= 1e-3:
        return f" {time_per_unit * 1e3:.0f}ms/{unit_name}"
    return f" {time_per_unit * 1e6:.0f}us/{unit_name}"


def _format_eta(eta: float) -> str:
    if eta > 3600:
        return "%d:%02d:%02d" % (eta // 3600, (eta % 3600) // 60, eta % 60)
    if eta > 60:
        return "%d:%02d" % (eta // 60, eta % 60)
    return "%ds" % eta


class Progbar:
    """Progress bar over ``target`` steps (``None`` when unknown).

    Args:
        target: total number of steps, or None.
        width: bar width in characters.
        verbose: 0 silent, 1 bar, 2 one line at the end.
        interval: minimum seconds between redraws (the final update always draws).
        stateful_metrics: names whose values are shown as given; all other values are averaged
            over the steps seen (Keras's default). Mutually exclusive with ``stateless_metrics``.
        stateless_metrics: names to average; all others are shown as given (what ``fit`` uses,
            with an empty set, because its logs are already running means).
        unit_name: the unit in ``ms/step``.
    """

    def __init__(self, target: int | None, width: int = 20, verbose: int = 1, interval: float = 0.05,
                 stateful_metrics=None, stateless_metrics=None, unit_name: str = "step"):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError("Only one of `stateful_metrics` or `stateless_metrics` can be provided.")
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        if stateless_metrics is not None:
            self._averaged = lambda k: k in stateless_metrics
        else:
            stateful = set(stateful_metrics or ())
            self._averaged = lambda k: k not in stateful
        self._values: dict[str, list] = {}
        self._start = time.time()
        self._last_update = 0.0
        self._time_after_first_step: float | None = None
        self._seen_so_far = 0
        self._prev_total_width = 0

    @staticmethod
    def _dynamic() -> bool:
        return bool(getattr(sys.stdout, "isatty", lambda: False)())

    def update(self, current: int, values=None, finalize: bool | None = None) -> None:
        """Record step ``current`` (1-based) with ``values``, a list of ``(name, value)`` pairs."""
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        for k, v in values or []:
            if isinstance(v, (list, tuple)):  # (a metric of one value per threshold or class: averaged as arrays)
                v = np.asarray(v, dtype=np.float64)
            if not self._averaged(k):
                self._values[k] = [v, 1]
            elif finalize:
                self._values[k] = [v, 1]
            else:
                n = max(current - self._seen_so_far, 1)
                total, count = self._values.get(k, [0.0, 0])
                self._values[k] = [total + v * n, count + n]
        self._seen_so_far = current
        now = time.time()
        time_per_unit = self._estimate_step_duration(current, now)
        if self.verbose == 1:
            dynamic = self._dynamic()
            if not finalize and (not dynamic or now - self._last_update < self.interval):
                return
            self._write(self._line(current, now, time_per_unit, finalize, color=dynamic), dynamic, finalize)
        elif self.verbose == 2 and finalize:
            line = ""
            if self.target is not None and self.target > 0:
                numdigits = int(math.log10(self.target)) + 1
                line = f"%{numdigits}d/%d" % (current, self.target) + " - "
            line += f"{now - self._start:.0f}s -{_format_time(time_per_unit, self.unit_name)}"
            sys.stdout.write(line + self._metrics_text() + "\n")
            sys.stdout.flush()
        self._last_update = now

    def add(self, n: int, values=None) -> None:
        """Advance by ``n`` steps."""
        self.update(self._seen_so_far + n, values)

    # -- internals ----------------------------------------------------------------------------
    def _metrics_text(self) -> str:
        return "".join(f" - {k}: {_format_value(total / max(1, count))}"
                       for k, (total, count) in self._values.items())

    def _line(self, current, now, time_per_unit, finalize, color):
        """The bar line and its visible width (without escape codes)."""
        bold = (lambda s: f"{_BOLD}{s}{_RESET}") if color else (lambda s: s)
        if self.target is not None and self.target > 0:
            numdigits = int(math.log10(self.target)) + 1
            count = f"%{numdigits}d/%d" % (current, self.target)
            filled = min(int(self.width * current / self.target), self.width)
            done, todo = "━" * filled, "━" * (self.width - filled)
            if color:
                bar = bold(count) + " " + (f"{_GREEN}{done}{_RESET}" if filled else "") + f"{_GREY}{todo}{_RESET}"
            else:
                bar = f"{count} {done}{todo}"
            plain = len(count) + 1 + self.width
        else:
            bar = "%7d/Unknown" % current
            plain = len(bar)
        if self.target is not None and self.target > 0 and not finalize:
            elapsed = _format_eta(time_per_unit * (self.target - current))
        else:
            elapsed = f"{now - self._start:.0f}s"
        info = " " + bold(elapsed) + _format_time(time_per_unit, self.unit_name) + self._metrics_text()
        plain += 1 + len(elapsed) + len(_format_time(time_per_unit, self.unit_name)) + len(self._metrics_text())
        return bar + info, plain

    def _write(self, line_and_width, dynamic, finalize):
        line, width = line_and_width
        if dynamic:
            pad = " " * max(self._prev_total_width - width, 0)
            message = "\r" + line + pad
        else:
            message = line
        if finalize or not dynamic:
            message += "\n"
        sys.stdout.write(message)
        sys.stdout.flush()
        self._prev_total_width = width

    def _estimate_step_duration(self, current, now):
        if not current:
            return 0.0
        if self._time_after_first_step is not None and current > 1:
            per_unit = (now - self._time_after_first_step) / (current - 1)
        else:
            per_unit = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per_unit

"""Progress of the training phases, driven by ``verbose``.

Every phase reports through a :class:`ProgressTrack`: ``verbose=1`` shows a
tqdm progress bar per phase with the phase's current values when tqdm is
installed (the ``progress`` extra), and about ten plain lines per phase
otherwise; ``verbose=2`` prints a plain line at every report.
"""


def _tqdm_class():
    """tqdm's progress bar class, or None when tqdm is not importable."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


class ProgressPrinter:
    """The progress output of one fit, according to ``verbose``.

    Parameters
    ----------
    verbose : int
        0 prints nothing; 1 shows a progress bar per phase when tqdm is
        installed, else about ten lines per phase; 2 prints a line at
        every report.
    name : str
        Prefix of every line and bar, the estimator's class name.
    """

    def __init__(self, verbose, name):
        self.verbose = verbose
        self.name = name
        self._tqdm = _tqdm_class() if verbose == 1 else None
        self._open = None

    def track(self, title, total, unit):
        """Start reporting a phase; return its :class:`ProgressTrack`.

        Parameters
        ----------
        title : str
            The phase, e.g. ``"pretraining"``.
        total : int
            Where the phase ends, in ``unit``.
        unit : str
            What the phase counts, e.g. ``"epoch"``.

        Returns
        -------
        ProgressTrack
        """
        self.close()
        self._open = ProgressTrack(self, title, total, unit)
        return self._open

    def close(self):
        """End the open phase's report, if any; safe to call any number of times."""
        if self._open is not None:
            self._open.close()
        self._open = None

    def message(self, text):
        """Print a one-off line, after closing any open progress bar.

        Parameters
        ----------
        text : str
        """
        if self.verbose >= 1:
            self.close()
            self.print(text)

    def print(self, text):
        """Print ``text`` as a line of this fit.

        Parameters
        ----------
        text : str
        """
        print(f"[{self.name}] {text}", flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class ProgressTrack:
    """The report of one phase: a progress bar or plain lines.

    Made by :meth:`ProgressPrinter.track`, which documents the parameters.
    """

    def __init__(self, printer, title, total, unit):
        self.printer = printer
        self.title = title
        self.total = max(int(total), 1)
        self.unit = unit
        self._bar = None
        self._last_tenth = -1
        if printer._tqdm is not None:
            self._bar = printer._tqdm(
                total=self.total,
                desc=f"[{printer.name}] {title}",
                unit=unit,
                leave=True,
                dynamic_ncols=True,
            )

    def advance(self, done, values):
        """Report that the phase has reached ``done`` units, with ``values``.

        Parameters
        ----------
        done : int
            Units done since the phase started.
        values : dict of str to str
            What to show, e.g. ``{"loss": "0.01234"}``.
        """
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=False)
            if done > self._bar.n:
                self._bar.update(done - self._bar.n)
            else:
                self._bar.refresh()
            return
        tenth = done * 10 // self.total
        due = self.printer.verbose >= 2 or (
            self.printer.verbose >= 1 and (tenth > self._last_tenth or done >= self.total)
        )
        if due:
            self._last_tenth = tenth
            shown = ", ".join(f"{name} {value}" for name, value in values.items())
            self.printer.print(
                f"{self.title} {self.unit} {done}/{self.total}: {shown}"
            )

    def close(self):
        """Close the progress bar, if any."""
        if self._bar is not None:
            self._bar.close()
        self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

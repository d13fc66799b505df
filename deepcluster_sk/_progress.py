"""Progress of long training phases, driven by ``verbose``.

``verbose=1`` shows a tqdm progress bar per phase (pretraining epochs,
self-training steps) with the current loss when tqdm is installed (the
``progress`` extra), and about ten plain lines per phase otherwise.
``verbose=2`` prints a plain line for every epoch and target update.
"""


def _tqdm_class():
    """tqdm's progress bar class, or None when tqdm is not importable."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


class ProgressPrinter:
    """Report training progress according to ``verbose``.

    Parameters
    ----------
    verbose : int
        0 prints nothing; 1 shows a progress bar per phase when tqdm is
        installed, else about ten lines per phase; 2 prints every epoch and
        every target update.
    name : str
        Prefix of every line and bar, the estimator's class name.
    """

    def __init__(self, verbose, name):
        self.verbose = verbose
        self.name = name
        self._bar = None
        self._phase = None
        self._tqdm = _tqdm_class() if verbose == 1 else None

    # -- progress bars -------------------------------------------------------

    def _bar_for(self, phase, total, unit):
        """The open bar of ``phase``, opening it (and closing another) first."""
        if self._phase != phase:
            self.close()
            self._bar = self._tqdm(
                total=total,
                desc=f"[{self.name}] {phase}",
                unit=unit,
                leave=True,
                dynamic_ncols=True,
            )
            self._phase = phase
        return self._bar

    def close(self):
        """Close the open progress bar, if any; the end of a phase.

        Safe to call any number of times, and at any verbosity.
        """
        if self._bar is not None:
            self._bar.close()
        self._bar = None
        self._phase = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- plain lines ---------------------------------------------------------

    def _due(self, done, total):
        if self.verbose >= 2:
            return True
        return self.verbose >= 1 and (
            done == total or done % max(1, total // 10) == 0
        )

    def _print(self, text):
        print(f"[{self.name}] {text}", flush=True)

    # -- the interface the estimators call -----------------------------------

    def epoch(self, epoch, n_epochs, loss):
        """Report a finished pretraining epoch (``epoch`` counts from 0).

        Parameters
        ----------
        epoch : int
            Index of the finished epoch, from 0.
        n_epochs : int
            Epochs in the phase.
        loss : float
            Mean reconstruction loss of the epoch.
        """
        if self._tqdm is not None:
            bar = self._bar_for("pretraining", n_epochs, "epoch")
            bar.set_postfix(loss=f"{loss:.5f}", refresh=False)
            bar.update(epoch + 1 - bar.n)
            if epoch + 1 >= n_epochs:
                self.close()
        elif self._due(epoch + 1, n_epochs):
            self._print(
                f"pretraining epoch {epoch + 1}/{n_epochs}: "
                f"reconstruction loss {loss:.5f}"
            )

    def update(self, iteration, max_iter, kl, label_change):
        """Report a target-distribution update of self-training.

        Parameters
        ----------
        iteration : int
            Self-training steps taken so far.
        max_iter : int
            Maximum number of steps.
        kl : float
            ``KL(P||Q)`` per sample over the training data.
        label_change : float
            Fraction of hard assignments changed since the previous update
            (NaN at the first).
        """
        if self._tqdm is not None:
            bar = self._bar_for("self-training", max_iter, "step")
            bar.set_postfix(
                kl=f"{kl:.5f}", changed=f"{label_change:.4%}", refresh=False
            )
            if iteration > bar.n:
                bar.update(iteration - bar.n)
            else:
                bar.refresh()
        elif self.verbose >= 1:
            self._print(
                f"self-training iteration {iteration}/{max_iter}: "
                f"KL {kl:.5f}, labels changed {label_change:.4%}"
            )

    def message(self, text):
        """Print a one-off line, after closing any open progress bar.

        Parameters
        ----------
        text : str
        """
        if self.verbose >= 1:
            self.close()
            self._print(text)

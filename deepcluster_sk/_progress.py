"""Plain progress lines for long training phases, driven by ``verbose``."""


class ProgressPrinter:
    """Print about ten lines per phase when ``verbose >= 1``, every step at 2.

    Parameters
    ----------
    verbose : int
        0 prints nothing.
    name : str
        Prefix of every line, the estimator's class name.
    """

    def __init__(self, verbose, name):
        self.verbose = verbose
        self.name = name

    def _due(self, done, total):
        if self.verbose >= 2:
            return True
        return self.verbose >= 1 and (
            done == total or done % max(1, total // 10) == 0
        )

    def epoch(self, epoch, n_epochs, loss):
        """Report a finished pretraining epoch (``epoch`` counts from 0)."""
        if self._due(epoch + 1, n_epochs):
            print(
                f"[{self.name}] pretraining epoch {epoch + 1}/{n_epochs}: "
                f"reconstruction loss {loss:.5f}",
                flush=True,
            )

    def update(self, iteration, max_iter, kl, label_change):
        """Report a target-distribution update of self-training."""
        if self.verbose >= 1:
            print(
                f"[{self.name}] self-training iteration {iteration}/{max_iter}: "
                f"KL {kl:.5f}, labels changed {label_change:.4%}",
                flush=True,
            )

    def message(self, text):
        """Print a one-off line."""
        if self.verbose >= 1:
            print(f"[{self.name}] {text}", flush=True)

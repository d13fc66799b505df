"""The order of the gallery: from the first fit to the specialised tools."""

#: Example scripts in reading order; any other example follows, by name.
EXAMPLE_ORDER = (
    "quickstart.py",
    "compare_family.py",
    "n2d_manifold.py",
    "embedding_tsne.py",
    "training_curves.py",
    "own_network.py",
    "choose_k.py",
    "large_data.py",
    "distributed_training.py",
    "mnist_clusters.py",
)


class ReadingOrder:
    """Sort key of sphinx-gallery's ``within_subsection_order``.

    Parameters
    ----------
    src_dir : str or path-like
        The gallery's source folder (unused; sphinx-gallery passes it).
    """

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        """Return the key of ``filename``: its place in the reading order."""
        if filename in EXAMPLE_ORDER:
            return (EXAMPLE_ORDER.index(filename), filename)
        return (len(EXAMPLE_ORDER), filename)

"""What the plotting examples share: the data.

Run the examples from the repository root (``python examples/NAME.py``);
Python then finds this module next to them.
"""

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

def load(data_dir=None, subset=None):
    """Digits, or MNIST from ``data_dir`` (a stratified subset if asked).

    Returns
    -------
    X, y : ndarray
        Pixels scaled to [0, 1] and the digit labels.
    image_shape : tuple of int
        Height and width of one image.
    """
    if data_dir is None:
        X, y = load_digits(return_X_y=True)
        return X / 16.0, y, (8, 8)
    from deepcluster_sk.datasets import load_mnist

    X, y = load_mnist(data_dir)
    if subset:
        X, _, y, _ = train_test_split(X, y, train_size=subset, stratify=y, random_state=0)
    return X, y, (28, 28)

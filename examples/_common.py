"""What the plotting examples share: the data and DEC's small-data setting.

Run the examples from the repository root (``python examples/NAME.py``);
Python then finds this module next to them.
"""

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

#: DECClusterer's small-data setting, measured in benchmarks/digits.py.
SMALL_DATA = dict(hidden_dims=(128, 128, 256), batch_size=64, pretrain_learning_rate=3e-3)


def load(data_dir=None, subset=None):
    """Digits, or MNIST from ``data_dir`` (a stratified subset if asked).

    Returns
    -------
    X, y : ndarray
        Pixels scaled to [0, 1] and the digit labels.
    image_shape : tuple of int
        Height and width of one image.
    params : dict
        DECClusterer parameters suited to the data's size.
    """
    if data_dir is None:
        X, y = load_digits(return_X_y=True)
        return X / 16.0, y, (8, 8), SMALL_DATA
    from deepcluster_sk.datasets import load_mnist

    X, y = load_mnist(data_dir)
    if subset:
        X, _, y, _ = train_test_split(X, y, train_size=subset, stratify=y, random_state=0)
    return X, y, (28, 28), {}

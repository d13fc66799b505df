"""Deep clustering estimators that drop into scikit-learn."""

from ._ae_kmeans import AutoencoderKMeans
from ._dec import DECClusterer

__all__ = ["AutoencoderKMeans", "DECClusterer"]
__version__ = "0.1.0"

"""Deep clustering estimators that drop into scikit-learn."""

from ._ae_kmeans import AutoencoderKMeans
from ._dac import DACClusterer
from ._dec import DECClusterer
from ._imsat import IMSATClusterer

__all__ = ["AutoencoderKMeans", "DACClusterer", "DECClusterer", "IMSATClusterer"]
__version__ = "0.1.0"

"""Deep clustering estimators that drop into scikit-learn."""

from . import nn
from ._estimators._ae_kmeans import AutoencoderKMeans
from ._estimators._dac import DACClusterer
from ._estimators._dec import DECClusterer
from ._estimators._imsat import IMSATClusterer

__all__ = ["AutoencoderKMeans", "DACClusterer", "DECClusterer", "IMSATClusterer", "nn"]
__version__ = "0.1.0"

"""Deep clustering estimators that drop into scikit-learn."""

from . import nn
from ._estimators._ae_kmeans import AutoencoderKMeans
from ._estimators._dac import DACClusterer
from ._estimators._dec import DECClusterer
from ._estimators._imsat import IMSATClusterer
from ._estimators._n2d import N2DClusterer
from ._row_chunks import RowChunks

__all__ = ["AutoencoderKMeans", "DACClusterer", "DECClusterer", "IMSATClusterer", "N2DClusterer", "RowChunks", "nn"]
__version__ = "0.1.0"

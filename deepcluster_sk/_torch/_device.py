"""Resolve the ``device`` parameter of the estimators to a :class:`torch.device`."""

import warnings

import torch


def resolve_device(device):
    """Turn a user-facing device specification into a usable torch device.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or
        ``"cuda:N"``.

    Returns
    -------
    torch.device
        The device to train on.

    Raises
    ------
    ValueError
        If the string is not a device name, names a device type other than
        CPU or CUDA, or asks for CUDA on a machine where it is not available.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a valid device; use 'auto', 'cpu', "
            "'cuda' or 'cuda:N'."
        ) from exc
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(
            f"device={device!r} is not supported; use 'auto', 'cpu', 'cuda' or "
            "'cuda:N'."
        )
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on "
                "this machine; use device='cpu' or device='auto'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but only "
                f"{torch.cuda.device_count()} CUDA device(s) are available."
            )
    return resolved


def inference_device(device):
    """The device to predict on after unpickling: like fitting, but never fails.

    A model fitted on a GPU and unpickled on a machine without one predicts
    on the CPU instead of raising.
    """
    try:
        return resolve_device(device)
    except ValueError:
        warnings.warn(
            f"device={device!r} is not available on this machine; the model "
            "was loaded on the CPU and predicts there.",
            UserWarning,
            stacklevel=3,
        )
        return torch.device("cpu")

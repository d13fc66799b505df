"""Estimator parameters declared once, with their defaults and constraints.

scikit-learn finds an estimator's parameters in the signature of its
``__init__``, which must store each argument unchanged. Writing that
``__init__`` by hand in every estimator repeats every shared parameter in
every class; here a class declares each of its parameters once, as a class
attribute ``name = Param(default, *constraints)``, and
:func:`declare_parameters` writes the ``__init__`` (with a real signature,
so ``get_params``, ``clone``, ``help()`` and the documentation see it) and
the ``_parameter_constraints`` that ``fit`` validates. A subclass inherits
its bases' declarations; ``name = Default(value)`` changes a default.

An estimator with ``_routed_prefix = "autoencoder"`` also takes keyword
arguments ``autoencoder__<name>=value``, skorch's convention for the
parameters of a module class; they are stored as they are, returned by
``get_params`` and set by ``set_params``, so ``clone`` and
``GridSearchCV`` handle them like any parameter. As scikit-learn requires,
``__init__`` checks nothing: ``fit`` rejects any other keyword.
"""

from sklearn.utils._param_validation import InvalidParameterError

#: The parameter that may be passed positionally, as in ``KMeans(8)``.
POSITIONAL = ("n_clusters",)


class Param:
    """The declaration of one estimator parameter.

    Parameters
    ----------
    default : object
        The default value: an immutable value, as scikit-learn requires.
    *constraints
        scikit-learn's parameter constraints (``Interval``, ``StrOptions``,
        types, ``None``, ...), any of which a valid value satisfies.
    trailing : bool, default=False
        Place the parameter after the others in the signature (``device``,
        ``random_state``, ``verbose``, ``memory``), whichever class declares
        it.
    """

    __slots__ = ("default", "constraints", "trailing")

    def __init__(self, default, *constraints, trailing=False):
        self.default = default
        self.constraints = list(constraints)
        self.trailing = trailing

    def replace(self, default):
        """The same declaration with another default."""
        return Param(default, *self.constraints, trailing=self.trailing)


class Default:
    """A new default for a parameter that a base class declares.

    ``n_clusters = Default(10)`` in a class body keeps the base's
    constraints and place in the signature.

    Parameters
    ----------
    value : object
        The new default.
    """

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def declare_parameters(cls):
    """Collect the ``Param`` declarations of ``cls``; write its ``__init__``.

    Declarations are taken from the class body (and removed from it) and
    appended to those of the bases; a redeclared name, or one given a new
    :class:`Default`, keeps its place.
    Sets ``cls._params`` (name to :class:`Param`, in signature order) and
    ``cls._parameter_constraints``, and ``cls.__init__`` unless the class
    defines its own.

    Parameters
    ----------
    cls : type

    Returns
    -------
    cls : type
    """
    params = dict(getattr(cls, "_params", {}))
    for name, value in list(vars(cls).items()):
        if isinstance(value, Default):
            if name not in params:
                raise TypeError(
                    f"{cls.__name__}.{name} = Default(...) needs a base class that "
                    "declares the parameter."
                )
            params[name] = params[name].replace(value.value)
            delattr(cls, name)
        elif isinstance(value, Param):
            params[name] = value
            delattr(cls, name)
    params = {
        **{n: p for n, p in params.items() if not p.trailing},
        **{n: p for n, p in params.items() if p.trailing},
    }
    cls._params = params
    cls._parameter_constraints = {n: p.constraints for n, p in params.items()}
    if "__doc__" in vars(cls) and cls.__doc__:
        cls.__doc__ = fill_shared_docs(cls.__doc__)
    if "__init__" not in vars(cls):
        cls.__init__ = _make_init(cls, params, getattr(cls, "_routed_prefix", None))
    return cls


#: Entries of the Parameters sections that every estimator shares, written
#: once: a line ``    <name>`` in a class docstring becomes the entry.
SHARED_PARAMETER_DOCS = {
    "device": """\
    device : {"auto", "cpu", "cuda"} or str, default="auto"
        Where to train: ``"auto"`` uses CUDA when available. ``"cuda:N"``
        selects a GPU.
""",
    "precision": """\
    precision : {"auto", "float32", "bfloat16"}, default="auto"
        The precision of the network's matrix products. ``"bfloat16"`` runs
        them in bfloat16 under :func:`torch.autocast`, with float32 weights,
        optimizer state and losses; outputs stay float32. ``"auto"`` picks
        bfloat16 where the device has bfloat16 units (AVX-512 BF16 or AMX
        CPUs, recent GPUs) and a training step is large enough to gain, and
        float32 elsewhere; ``precision_`` holds the choice. A GPU without
        bfloat16 support refuses ``"bfloat16"`` with a ``ValueError``.
""",
    "distributed": """\
    distributed : {"auto", True, False}, default="auto"
        Train one model across the processes of a ``torchrun`` launch
        (``torchrun --nproc-per-node=N script.py``) or of a
        :mod:`torch.distributed` process group: each process trains on its
        share of every batch under DistributedDataParallel (gloo on CPUs,
        NCCL on GPUs, one GPU per process) and every process ends with the
        same fitted model. ``"auto"`` does so when such a launch or group of
        two processes or more is found, ``True`` requires one, ``False``
        trains in this process alone.
""",
}


def fill_shared_docs(doc):
    """``doc`` with each ``    <name>`` line replaced by its shared entry."""
    for name, entry in SHARED_PARAMETER_DOCS.items():
        doc = doc.replace(f"    <{name}>\n", entry)
    return doc


def _make_init(cls, params, routed_prefix):
    """An ``__init__`` that stores every parameter of ``params`` unchanged."""
    positional = [n for n in params if n in POSITIONAL]
    keyword = [n for n in params if n not in POSITIONAL]
    signature = ["self", *(f"{n}=_defaults[{n!r}]" for n in positional)]
    if keyword:
        signature += ["*", *(f"{n}=_defaults[{n!r}]" for n in keyword)]
    body = [f"self.{n} = {n}" for n in params]
    if routed_prefix is not None:
        routed = f"{routed_prefix}_params"
        signature.append(f"**{routed}")
        body.append(f"_store_routed(self, {routed})")
    source = (
        f"def __init__({', '.join(signature)}):\n"
        + "\n".join(f"    {line}" for line in body or ["pass"])
        + "\n"
    )
    namespace = {
        "_defaults": {n: p.default for n, p in params.items()},
        "_store_routed": store_routed,
    }
    exec(source, namespace)  # noqa: S102 - the source is built from names above
    init = namespace["__init__"]
    init.__module__ = cls.__module__
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def store_routed(estimator, routed):
    """Store the keyword arguments beyond the signature as they are.

    Nothing is checked here, as scikit-learn requires of ``__init__``;
    :func:`check_routed_params` rejects, at ``fit``, those without the
    ``<prefix>__`` of the module's parameters.
    """
    for key, value in routed.items():
        setattr(estimator, key, value)


def extra_params(estimator):
    """The parameters stored beyond the signature (``autoencoder__*`` ones).

    Every public attribute of ``estimator`` that is neither a declared
    parameter nor a fitted attribute (``name_``).
    """
    declared = type(estimator)._params
    return {
        key: value
        for key, value in vars(estimator).items()
        if key not in declared and not key.startswith("_") and not key.endswith("_")
    }


def routed_params(estimator, prefix):
    """The ``<prefix>__<name>`` parameters of ``estimator``, keyed by ``<name>``."""
    start = f"{prefix}__"
    return {
        key[len(start):]: value
        for key, value in extra_params(estimator).items()
        if key.startswith(start) and len(key) > len(start)
    }


def check_routed_params(estimator, prefix):
    """Raise a ``ValueError`` for a parameter beyond the signature without ``prefix__``.

    Raises
    ------
    sklearn.utils._param_validation.InvalidParameterError
        Naming the unexpected parameters, as ``fit`` does for invalid values.
    """
    unexpected = sorted(
        key
        for key in extra_params(estimator)
        if prefix is None or not key.startswith(f"{prefix}__") or key == f"{prefix}__"
    )
    if unexpected:
        where = (
            f"; parameters of the {prefix} class are given as {prefix}__<name>"
            if prefix is not None
            else ""
        )
        raise InvalidParameterError(
            f"{type(estimator).__name__} got unexpected parameter(s) "
            f"{', '.join(map(repr, unexpected))}{where}."
        )

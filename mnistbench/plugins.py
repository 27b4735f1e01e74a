"""The plugin manager: loads entry points one at a time and calls each hook through typed methods.

Every plugin, the three reference architectures included, is found through the
entry-point group ``mnistbench``. A plugin that fails to import, or raises in a
hook, fails alone: mnistbench logs a warning naming it and carries on with the
others. Set ``MNISTBENCH_STRICT_PLUGINS=1`` to make such failures fatal while
writing a plugin.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from mnistbench import hookspecs
from mnistbench.errors import ConfigError, PluginError
from mnistbench.record import frame

GROUP = "mnistbench"
#: Comma-separated entry-point names to load; set but empty loads none; unset loads all.
PLUGINS_ENV = "MNISTBENCH_PLUGINS"
#: Comma-separated entry-point names never to load.
BLOCK_ENV = "MNISTBENCH_BLOCK_PLUGINS"
#: "1" makes a plugin that fails to load or raises in a hook a fatal error.
STRICT_ENV = "MNISTBENCH_STRICT_PLUGINS"

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

log = logging.getLogger("mnistbench")


@dataclass(frozen=True)
class _Origin:
    """The plugin a registration comes from."""

    plugin: str
    distribution: str
    version: str


@dataclass(frozen=True)
class Registered:
    """One executor or output format a plugin registered, and the plugin."""

    name: str
    value: Any
    plugin: str
    distribution: str


@dataclass(frozen=True)
class Architecture:
    """One registered architecture and where it comes from."""

    name: str
    description: str
    plugin: str  # the plugin's registered name (its entry-point name)
    distribution: str  # the installed distribution that ships it, or "" if none
    version: str  # that distribution's version, or ""


def _env_names(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def strict_from_env() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def make_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager with mnistbench's hook specifications and no plugins."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    return pm


class _InvalidName(PluginError):
    """A plugin registered a name that cannot be used: that plugin fails alone."""


class Plugins:
    """The loaded plugins, their architectures, and one typed method per hook.

    The rest of mnistbench calls these methods rather than ``pm.hook.*`` so
    that failure isolation and result checks live in one place.
    """

    def __init__(self, pm: pluggy.PluginManager, *, strict: bool = False) -> None:
        self.pm = pm
        self.strict = strict
        self.architectures: dict[str, Architecture] = {}
        #: Executors and output formats by name.
        self.executors: dict[str, Registered] = {}
        self.formats: dict[str, Registered] = {}
        #: Results stores by URL scheme.
        self.stores: dict[str, Registered] = {}
        self._register_architectures()
        self._register_named(
            "mnistbench_register_executors", "executor", self.executors, lambda c: [c.name]
        )
        self._register_named(
            "mnistbench_register_output_formats", "output format", self.formats, lambda f: [f.name]
        )
        self._register_named(
            "mnistbench_register_stores", "results store", self.stores, lambda s: list(s.schemes)
        )

    def executor(self, name: str):
        """The executor class registered as ``name``; ConfigError naming the known ones."""
        return self._lookup(self.executors, "executor", name)

    def output_format(self, name: str):
        """The output format registered as ``name``; ConfigError naming the known ones."""
        return self._lookup(self.formats, "output format", name)

    @staticmethod
    def _lookup(registry: dict[str, Registered], what: str, name: str):
        if name not in registry:
            known = ", ".join(sorted(registry)) or "none"
            raise ConfigError(f"unknown {what} {name!r} (known: {known})")
        return registry[name].value

    # -- plugin identity -------------------------------------------------

    def _distribution(self, plugin: object) -> tuple[str, str]:
        for candidate, dist in self.pm.list_plugin_distinfo():
            if candidate is plugin:
                return dist.metadata["name"], dist.version
        return "", ""

    def _fail(self, message: str) -> None:
        """A plugin misbehaved: fatal in strict mode, else a warning."""
        if self.strict:
            raise PluginError(message)
        log.warning(message)

    def _impls(self, hook_name: str) -> list[pluggy.HookImpl]:
        # pluggy's call order: last registered first.
        return list(reversed(getattr(self.pm.hook, hook_name).get_hookimpls()))

    @staticmethod
    def _call(impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> Any:
        # Pass only the arguments the implementation asks for, as pluggy does,
        # so plugins written against an older, shorter spec keep working.
        return impl.function(*(kwargs[name] for name in impl.argnames))

    # -- registration ----------------------------------------------------

    def _register_architectures(self) -> None:
        def architecture(name: str, description: str = "", *, _origin: _Origin) -> None:
            if not isinstance(name, str) or not NAME_PATTERN.match(name):
                raise _InvalidName(
                    f"plugin {_origin.plugin!r} registered an invalid architecture name "
                    f"{name!r}: use lower-case letters, digits, '-' and '_'"
                )
            self._claim(self.architectures, "architecture", name, _origin)
            self.architectures[name] = Architecture(
                name, str(description), _origin.plugin, _origin.distribution, _origin.version
            )

        self._registrations("mnistbench_register_architectures", architecture)

    def _register_named(self, hook_name: str, what: str, registry: dict, keys) -> None:
        """Registrations of things other than architectures: ``register(thing)``, keyed by
        ``keys(thing)`` (its name)."""

        def register(thing: Any, *, _origin: _Origin) -> None:
            try:
                names = list(keys(thing))
            except (AttributeError, TypeError):
                names = []
            if not names or not all(isinstance(n, str) and NAME_PATTERN.match(n) for n in names):
                raise _InvalidName(
                    f"plugin {_origin.plugin!r} registered {what} {thing!r} without a valid "
                    "name: use lower-case letters, digits, '-' and '_'"
                )
            for name in names:
                self._claim(registry, what, name, _origin)
            for name in names:
                registry[name] = Registered(name, thing, _origin.plugin, _origin.distribution)

        self._registrations(hook_name, register)

    def _claim(self, registry: dict, what: str, name: str, origin: _Origin) -> None:
        if name in registry:
            other = registry[name]
            raise PluginError(
                f"{what} {name!r} is registered twice: by plugin {other.plugin!r} "
                f"({other.distribution or 'no distribution'}) and by plugin {origin.plugin!r} "
                f"({origin.distribution or 'no distribution'}); uninstall or block one "
                f"with {BLOCK_ENV}"
            )

    def _registrations(self, hook_name: str, register) -> None:
        """Call every implementation of a ``mnistbench_register_*`` hook with a ``register``
        callback that knows which plugin registers; a plugin that misbehaves fails alone."""
        for impl in self._impls(hook_name):
            distribution, version = self._distribution(impl.plugin)
            origin = _Origin(impl.plugin_name, distribution, version)

            def bound(*args: Any, _origin: _Origin = origin, **kwargs: Any) -> None:
                register(*args, _origin=_origin, **kwargs)

            try:
                self._call(impl, {"register": bound})
            except _InvalidName as error:
                self._fail(str(error))
            except PluginError:
                raise
            except Exception as error:  # a plugin's bug must not take the others down
                self._fail(
                    f"plugin {impl.plugin_name!r} failed in {hook_name}: "
                    f"{type(error).__name__}: {error}"
                )

    # -- typed hook calls ----------------------------------------------

    def _first_result(self, hook_name: str, **kwargs: Any) -> tuple[Any, str | None]:
        """Call implementations in order until one returns non-None: (result, plugin name).

        An implementation that raises is reported and skipped; if none answers and
        some raised, the first error is re-raised as a PluginError naming its plugin.
        """
        errors: list[str] = []
        for impl in self._impls(hook_name):
            try:
                result = self._call(impl, kwargs)
            except Exception as error:
                message = (
                    f"plugin {impl.plugin_name!r} failed in {hook_name}: "
                    f"{type(error).__name__}: {error}"
                )
                if self.strict:
                    raise PluginError(message) from error
                errors.append(message)
                continue
            if result is not None:
                for message in errors:
                    log.warning(message)
                return result, impl.plugin_name
        if errors:
            raise PluginError(errors[0])
        return None, None

    def prepare_data(self, architecture: str, x, split: str):
        """Prepared array for ``architecture``; x / 255 as float32 if no plugin answers."""
        import numpy as np

        result, plugin = self._first_result(
            "mnistbench_prepare_data", architecture=architecture, x=x, split=split
        )
        if result is None:
            return (x / 255.0).astype(np.float32)
        if not isinstance(result, np.ndarray) or len(result) != len(x):
            raise PluginError(
                f"plugin {plugin!r} returned {type(result).__name__} from mnistbench_prepare_data "
                f"for {architecture!r}: expected a numpy array with {len(x)} rows"
            )
        return result

    def build_model(self, architecture: str, input_shape: tuple[int, ...], num_classes: int):
        """The compiled Keras model for ``architecture``; PluginError if no plugin builds one."""
        model, plugin = self._first_result(
            "mnistbench_build_model",
            architecture=architecture,
            input_shape=tuple(input_shape),
            num_classes=num_classes,
        )
        if model is None:
            raise PluginError(
                f"no plugin built a model for architecture {architecture!r} "
                "(every mnistbench_build_model returned None)"
            )
        import keras

        if not isinstance(model, keras.Model):
            raise PluginError(
                f"plugin {plugin!r} returned {type(model).__name__} from mnistbench_build_model "
                f"for {architecture!r}: expected a compiled keras.Model"
            )
        try:
            output_shape = tuple(model.output_shape)
        except (AttributeError, ValueError, TypeError):  # not built yet: checked after predict
            output_shape = None
        if output_shape is not None and output_shape[1:] != (num_classes,):
            raise PluginError(
                f"plugin {plugin!r} returned a model from mnistbench_build_model for "
                f"{architecture!r} whose output shape is {output_shape}, expected "
                f"(None, {num_classes})"
            )
        return model

    def model_flops(self, architecture: str, model) -> tuple[float, float] | None:
        """A plugin's (inference, train) FLOPs per sample for ``model``, or None."""
        result, plugin = self._first_result(
            "mnistbench_model_flops", architecture=architecture, model=model
        )
        if result is None:
            return None
        try:
            inference, train = (float(value) for value in result)
        except (TypeError, ValueError):
            raise PluginError(
                f"plugin {plugin!r} returned {result!r} from mnistbench_model_flops: "
                "expected (inference_flops_per_sample, train_flops_per_sample)"
            ) from None
        return inference, train

    def _call_all(self, hook_name: str, **kwargs: Any) -> list[Any]:
        results = []
        for impl in self._impls(hook_name):
            try:
                results.append(self._call(impl, kwargs))
            except Exception as error:
                self._fail(
                    f"plugin {impl.plugin_name!r} failed in {hook_name}: "
                    f"{type(error).__name__}: {error}"
                )
        return results

    def record_run(self, run, output_dir: Path) -> None:
        """Hand a finished run (a :class:`mnistbench.record.Run`) to every
        ``mnistbench_record_run`` implementation."""
        self._call_all("mnistbench_record_run", row=run.values(), output_dir=output_dir, run=run)

    def write_report(self, records, output_dir: Path) -> list[Path]:
        """Let every reporter write its files for ``records`` (the directory's runs);
        returns the paths they report."""
        written: list[Path] = []
        calls = self._call_all(
            "mnistbench_write_report",
            runs=frame(records),
            output_dir=output_dir,
            records=tuple(records),
        )
        for paths in calls:
            if isinstance(paths, str | Path):  # one path rather than a list: accept it
                paths = [paths]
            written.extend(Path(p) for p in paths or [])
        return written


def _load_entry_points(pm: pluggy.PluginManager, strict: bool) -> None:
    allowed = _env_names(PLUGINS_ENV)
    blocked = _env_names(BLOCK_ENV) or set()
    for name in blocked:
        pm.set_blocked(name)
    names = sorted({ep.name for ep in importlib.metadata.entry_points(group=GROUP)})
    for name in names:
        if (allowed is not None and name not in allowed) or name in blocked:
            continue
        try:
            # One entry point at a time, so one broken plugin cannot hide the rest.
            pm.load_setuptools_entrypoints(GROUP, name=name)
            plugin = pm.get_plugin(name)
            if plugin is not None:
                # A misspelled hook is that plugin's error, not every command's.
                try:
                    pm.check_pending()
                except pluggy.PluginValidationError:
                    pm.unregister(plugin)
                    raise
        except Exception as error:
            message = f"plugin {name!r} failed to load: {type(error).__name__}: {error}"
            if strict:
                raise PluginError(message) from error
            log.warning(message)


def load_plugins(
    *,
    strict: bool | None = None,
    builtins: Iterable[object] = (),
    extra: Iterable[object] = (),
    entry_points: bool = True,
) -> Plugins:
    """Load the installed plugins (filtered by the environment) beside ``builtins``.

    :param strict: make plugin failures fatal; default from ``MNISTBENCH_STRICT_PLUGINS``.
    :param builtins: mnistbench's own plugin modules (its executors, output formats and
        reporters, :mod:`mnistbench.builtins`): always on, so restricting
        plugins never loses them; registered first, under their module names.
    :param extra: plugin objects to register as well (tests use this).
    :param entry_points: load installed entry points; tests turn it off for isolation.
    """
    strict = strict_from_env() if strict is None else strict
    pm = make_plugin_manager()
    for module in builtins:
        pm.register(module, name=module.__name__)
    if entry_points:
        _load_entry_points(pm, strict)
    for plugin in extra:
        # Name objects by their class so messages say which plugin misbehaved.
        base = name = getattr(plugin, "__name__", type(plugin).__name__)
        suffix = 1
        while pm.has_plugin(name):
            suffix += 1
            name = f"{base}-{suffix}"
        pm.register(plugin, name=name)
    pm.check_pending()
    return Plugins(pm, strict=strict)

"""The host's capabilities: logging (always), secrets and the cache (granted in
the link's config: ``secrets: [NAME]``; the cache is private to the link)."""

from wit_world.imports import cache as _cache
from wit_world.imports import log as _log
from wit_world.imports import secrets as _secrets
from componentize_py_types import Err


def _write(level, message):
    _log.write(level, str(message))


def debug(message):
    _write(_log.Level.DEBUG, message)


def info(message):
    _write(_log.Level.INFO, message)


def warn(message):
    _write(_log.Level.WARN, message)


def error(message):
    _write(_log.Level.ERROR, message)


def secret(name):
    """The value of a granted secret, or ``None`` when it is not granted or not set."""
    try:
        return _secrets.get(name)
    except Err:
        return None


def cache_get(key):
    """The bytes stored under ``key``, or ``None``."""
    return _cache.get(key)


def cache_set(key, value, ttl_secs=0):
    """Store bytes (or text) under ``key`` for ``ttl_secs`` seconds (0: one day)."""
    data = value.encode() if isinstance(value, str) else bytes(value)
    try:
        _cache.set(key, data, ttl_secs)
    except Err as refused:
        raise ValueError(f"the cache refused `{key}`: {refused.value}")


def cache_delete(key):
    _cache.delete(key)

"""The link protocol: the ``Link`` base class that the generated ``Processor``
export calls, the call context with the link's options, and what ``run`` may
answer."""

import json
import traceback

from wit_world import exports
from wit_world.imports import types
from componentize_py_types import Err

from .vcon import Vcon


class LinkError(Exception):
    """Fail the vCon (it goes to the DLQ with ``message`` as the reason).
    ``retryable`` says whether trying again later may succeed."""

    def __init__(self, message, retryable=False):
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class Context:
    """Where the link runs: ``link_name``, ``chain_name``, ``vcon_uuid``,
    ``ingress_list``, and ``options`` (the config's options over the link's
    ``defaults``)."""

    def __init__(self, context, defaults):
        self.link_name = context.link_name
        self.chain_name = context.chain_name
        self.vcon_uuid = context.vcon_uuid
        self.ingress_list = context.ingress_list
        given = json.loads(context.options or "{}") or {}
        if not isinstance(given, dict):
            raise LinkError(f"the options of link `{context.link_name}` must be a mapping")
        self.options = {**defaults, **given}


class _Unchanged:
    pass


_UNCHANGED = _Unchanged()


def unchanged():
    """Answer from ``run``: go on without rewriting the vCon."""
    return _UNCHANGED


class Outcome:
    """Answer from ``run`` with requests for the host: ``vcon`` (or ``None`` to
    halt), ``route_to`` (lists to push the uuid to once the vCon is saved) and
    ``expire_after`` (seconds the vCon document lives)."""

    def __init__(self, vcon, route_to=None, expire_after=None):
        self.vcon = vcon
        self.route_to = list(route_to or [])
        self.expire_after = expire_after


def _action(answer):
    if answer is None:
        return types.Action_Halt()
    if answer is _UNCHANGED:
        return types.Action_Proceed(None)
    if isinstance(answer, Vcon):
        return types.Action_Proceed(answer.to_json())
    if isinstance(answer, dict):
        return types.Action_Proceed(Vcon(answer).to_json())
    if isinstance(answer, str):
        # A uuid, as a Python conserver link returns one: go on unchanged.
        return types.Action_Proceed(None)
    raise LinkError(f"run() answered {type(answer).__name__}: return the vCon, None, unchanged() or an Outcome")


def _verdict(answer):
    directives = []
    if isinstance(answer, Outcome):
        if answer.route_to:
            directives.append(types.Directive_RouteTo(answer.route_to))
        if answer.expire_after is not None:
            directives.append(types.Directive_ExpireAfterSecs(int(answer.expire_after)))
        answer = answer.vcon
    return types.Verdict(_action(answer), directives)


class Link(exports.Processor):
    """Subclass as ``Processor`` and implement ``run(ctx, vcon)``."""

    #: Options used when the config does not set them.
    defaults = {}

    def run(self, ctx, vcon):
        raise NotImplementedError("implement run(ctx, vcon) in your Processor")

    def process(self, context, vcon):
        try:
            ctx = Context(context, self.defaults)
            return _verdict(self.run(ctx, Vcon.from_json(vcon)))
        except LinkError as error:
            raise Err(types.LinkError(error.message, error.retryable))
        except Exception as error:  # a bug in the link: report it, do not trap
            where = traceback.extract_tb(error.__traceback__)[-1:]
            at = f" (at {where[0].filename}:{where[0].lineno})" if where else ""
            raise Err(types.LinkError(f"{type(error).__name__}: {error}{at}", False))

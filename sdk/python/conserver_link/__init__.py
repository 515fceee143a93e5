"""conserver_link: write conserver links in Python.

A link is a class called ``Processor`` in your ``app.py`` that subclasses
:class:`Link` and implements ``run(ctx, vcon)``; ``componentize-py`` turns it into
a WebAssembly component the conserver runs in its sandbox::

    from conserver_link import Link

    class Processor(Link):
        defaults = {"tags": ["iron", "maiden"]}

        def run(self, ctx, vcon):
            for tag in ctx.options["tags"]:
                vcon.add_tag(tag, tag)
            return vcon

``run`` answers as a Python conserver link does: the vCon (changed or not) to go
on, ``None`` to halt the chain quietly, or an exception to send the vCon to the
dead-letter queue (:class:`LinkError` says whether a retry may help). Return
:func:`unchanged` to go on without rewriting the vCon, or :class:`Outcome` to add
routing and expiry requests.

Built with: ``componentize-py -d wit/link.wit -w link componentize app -o link.wasm``.
"""

from .vcon import Vcon
from .link import Context, Link, LinkError, Outcome, unchanged
from . import host

__all__ = ["Context", "Link", "LinkError", "Outcome", "Vcon", "host", "unchanged"]

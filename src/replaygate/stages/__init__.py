"""Pipeline stages: what happens to each exchange between a source and a sink.

One implementation serves capture, proxy, convert, replay, shadow and worker; the CLI builds
the list with :func:`replaygate.stages.defaults.default_stages`, in this order::

    filter -> sample -> random sample -> mask -> rewrite -> middleware -> plugins

* :mod:`~replaygate.stages.filter`: allow/deny by URL, method, header, basic-auth user.
* :mod:`~replaygate.stages.sample`: consistent (hash of a key) and random sampling.
* :mod:`~replaygate.stages.mask`: secrets and personal data masked before storage.
* :mod:`~replaygate.stages.rewrite`: URL, header and query-parameter rewrites.
* :mod:`~replaygate.stages.middleware`: external programs speaking GoReplay's protocol.
* :mod:`~replaygate.stages.plugins`: in-process Python hooks.

Modules are imported on demand (nothing here imports them), so a command pays only for the
stages it uses.
"""

"""Sans-I/O protocol code: link layers, TCP reassembly, HTTP/1 and HTTP/2, TLS, pcap records.

``compiled`` says whether the capture hot path runs as the optional mypyc build (``make
accel``) or as the pure-Python modules; see :mod:`replaygate.protocol._accel`.
"""

from ._accel import select_build

compiled = select_build()

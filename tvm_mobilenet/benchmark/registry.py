"""The peers `--peers` can name, in the order the table lists them."""

from __future__ import annotations

from .litert import LiteRT
from .openvino_cpu import OpenVino
from .ort import OnnxRuntime
from .peer import Peer
from .pytorch import PyTorch

PEERS: dict[str, type[Peer]] = {peer.name: peer for peer in (OnnxRuntime, OpenVino, LiteRT, PyTorch)}

"""The peers `--peers` can name, in the order the table lists them."""

from __future__ import annotations

from tvm_mobilenet.bench.peer import Peer
from tvm_mobilenet.bench.peers.litert import LiteRT
from tvm_mobilenet.bench.peers.openvino import OpenVino
from tvm_mobilenet.bench.peers.ort import OnnxRuntime
from tvm_mobilenet.bench.peers.pytorch import PyTorch

PEERS: dict[str, type[Peer]] = {
    peer.name: peer for peer in (OnnxRuntime, OpenVino, LiteRT, PyTorch)
}

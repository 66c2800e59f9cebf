"""The device farm: an RPC tracker and emulated aarch64 devices (qemu) on this machine."""

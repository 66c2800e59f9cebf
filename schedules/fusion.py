"""Block structure shared by every template: one convolution between inlined producers and an
epilogue."""

from __future__ import annotations

from tvm import s_tir

SPATIAL, COMM_REDUCE = 0, 2  # IterVar.iter_type of data-parallel and reduction axes


def inline_prologue_and_epilogue(sch: s_tir.Schedule, conv):
    """Inline what precedes the convolution (padding, layout changes) into it, and every
    elementwise op after it (bias, BatchNorm, ReLU / ReLU6 ...) into the last one; return that
    last block, the epilogue the templates compute at the register tile."""
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    names = [sch.get(block).name_hint for block in blocks]
    position = names.index(sch.get(conv).name_hint)
    for block in blocks[:position]:
        sch.compute_inline(block)
    after = blocks[position + 1 :]
    if not after:  # a bare convolution: give it an epilogue that copies the result out
        return sch.cache_write(conv, 0, "global")
    for block in after[:-1]:
        sch.compute_inline(block)
    return after[-1]

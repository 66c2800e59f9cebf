"""tvm_mobilenet: tune MobileNet with TVM 0.27 (Relax + MetaSchedule) for x86, ARM and Mali, ship it
as a .so.

The flow, one folder per stage: model/ -> tasks/ -> schedules/ -> tune/ -> compile/ -> run/, plus
farm/ (RPC devices) and bench/ (peers, evidence); cli/ parses arguments for every command.
"""

__version__ = "0.1.0"

from tvm_mobilenet._startup import import_tvm_without_torch

import_tvm_without_torch()

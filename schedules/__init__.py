"""Schedule templates per target family: depthwise and convolution (pointwise and full).

`FAMILIES[family]` is a module with `TEMPLATES` (template kind -> function
`(sch, params, tuning)`) and `params_for(target)`. Shared logic lives in `cpu.py` (and `knobs.py`);
each family's module holds only what differs.
"""

from __future__ import annotations

from . import arm_cpu, mali, x86

FAMILIES = {"x86": x86, "arm_cpu": arm_cpu, "mali": mali}

"""The heuristic score of one pair, part by part, as text for a person reading why a reply scored what it did.

Shared by `python stages/reward.py score` and `replyrl suggest --explain`.
"""

from __future__ import annotations

from collections.abc import Mapping

from replyrl.configs.reward import HeuristicRewardConfig


def component_lines(components: Mapping[str, float], config: HeuristicRewardConfig, indent: str = "  ") -> list[str]:
    """One line per entry of `HeuristicReward.components` for one pair (all but ``total``): its name, its
    value and, for the weighted components, its weight (the multipliers have none).

    >>> from replyrl.configs.reward import HeuristicRewardConfig
    >>> component_lines({"length": 1.0, "echo_multiplier": 0.5, "total": 0.4}, HeuristicRewardConfig())
    ['  length             1.0000  x 0.15', '  echo_multiplier    0.5000']
    """
    lines = []
    for name, value in components.items():
        if name == "total":
            continue
        weight = getattr(config, f"{name}_weight", None)
        lines.append(f"{indent}{name:<19}{value:.4f}" + (f"  x {weight:.2f}" if weight is not None else ""))
    return lines

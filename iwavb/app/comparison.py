"""The verdict of the Compare page: who wins, by how much, and which of the two changes (K, q) did it.

The four methods differ along two axes (docs/background.md): more importance samples (VAE -> IWAE,
AVB -> IWAVB) and a more flexible q (VAE -> AVB, IWAE -> IWAVB). With a score for each, the effect of
each axis is a difference of two scores, which is what a class should see. Pure text, no models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..core.config import MethodName, QKind, method_grid_point
from ..data.toy import TOY_BEST_LOG_PX, TOY_COLLAPSE_LOG_PX

AXES = (("more samples K", (("vae", "iwae"), ("avb", "iwavb"))), ("an implicit q", (("vae", "avb"), ("iwae", "iwavb"))))
TIE_NATS = 0.005  # differences below this are noise in these estimates


@dataclass(frozen=True)
class MethodScore:
    """A model's score as the Compare page shows it: in the verdict and as a bar of `plots.score_figure`."""

    method: MethodName
    name: str  # as shown: "IWAVB (K = 10)"
    score: float  # log p(x) or its estimate (higher is better); -NLL
    bound: float | None = None  # the model's own bound, or objective (uses T), on the images of `score`

    @property
    def implicit(self) -> bool:
        return method_grid_point(self.method)[0] == "implicit"


def _signed(delta: float) -> str:
    return f"+{delta:.3f}" if delta >= 0 else f"−{abs(delta):.3f}"


def axis_effects(results: Sequence[MethodScore]) -> list[str]:
    """One sentence per axis with both of its pairs, e.g. 'more samples K: +0.170 (VAE -> IWAE), ...'."""
    by_method = {r.method: r for r in results}
    sentences = []
    for axis, pairs in AXES:
        parts = [
            f"{_signed(by_method[b].score - by_method[a].score)} nats ({a.upper()} → {b.upper()})"
            for a, b in pairs
            if a in by_method and b in by_method
        ]
        if parts:
            sentences.append(f"**{axis}**: " + ", ".join(parts))
    return sentences


def bound_note(result: MethodScore) -> str | None:
    """How far the training value sits from the score, and what that means for this kind of q."""
    if result.bound is None:
        return None
    gap = result.bound - result.score
    side = "above" if gap > 0 else "below"
    if not result.implicit:
        why = "the price of q not being the posterior" if gap <= 0 else "a true bound is not: noise in the estimates"
        return f"{result.name}: its bound is {abs(gap):.3f} nats {side} log p(x) ({why})"
    warning = ": no true bound can do that, T underestimates log q − log p" if gap > TIE_NATS else ""
    return f"{result.name}: its objective (uses T) reads {abs(gap):.3f} nats {side} log p(x){warning}"


@dataclass(frozen=True)
class Gap:
    """The distance between a model's own bound (objective) and its log p(x) on the same images, named."""

    name: str  # "bound gap", "T's error" or "gap"
    nats: float  # >= 0 as the name reads it (a Gaussian q's bound above log p(x) by noise: < 0)
    meaning: str  # one sentence for a tooltip


def named_gap(q: QKind, log_px: float, bound: float) -> Gap:
    """ "bound gap" for a Gaussian q; "T's error" where an implicit q's objective reads above log p(x); else
    a plain "gap", in which the bound's own gap and T's error cannot be told apart."""
    if q == "gaussian":
        return Gap("bound gap", log_px - bound, "log p(x) − bound: what q not being the posterior costs (K narrows it)")
    if bound - log_px > TIE_NATS:
        return Gap(
            "T's error",
            bound - log_px,
            "the objective reads this far above log p(x), which no true bound can: T underestimates log q − log p",
        )
    return Gap(
        "gap",
        log_px - bound,
        "log p(x) − objective: the bound's own gap, shifted by T's error in either direction",
    )


def verdict(results: Sequence[MethodScore], score_name: str, toy: bool) -> list[str]:
    """Markdown lines: the winner and its margin, the landmarks (toy), the effect of each axis, the bound gaps."""
    if not results:
        return []
    ranked = sorted(results, key=lambda r: r.score, reverse=True)
    best = ranked[0]
    lines = [
        f":material/emoji_events: **{best.name} wins** with {score_name} = **{best.score:.3f}** nats"
        + (f", {best.score - ranked[1].score:.3f} ahead of {ranked[1].name}." if len(ranked) > 1 else ".")
    ]
    if toy:
        span = TOY_BEST_LOG_PX - TOY_COLLAPSE_LOG_PX
        share = ", ".join(f"{r.name} {(r.score - TOY_COLLAPSE_LOG_PX) / span:.0%}" for r in ranked)
        lines.append(
            f"On the toy data the best possible is **{TOY_BEST_LOG_PX:.3f}** and a decoder that ignores z "
            f"(posterior collapse) gets **{TOY_COLLAPSE_LOG_PX:.3f}**. Of the way from collapse to the best: "
            f"{share}."
        )
    effects = axis_effects(results)
    if effects:
        lines.append("What each change bought: " + "; ".join(effects) + ".")
    notes = [n for n in (bound_note(r) for r in ranked) if n]
    if notes:
        lines.append("Bound against " + score_name + ": " + "; ".join(notes) + ".")
    return lines

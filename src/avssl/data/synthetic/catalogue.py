"""The demo world's object classes: each ties a shape and a colour to one sound timbre."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ObjectClass:
    """One kind of object. `sound` names its impact timbre (see sound.py) and its ESC-style category."""

    name: str  # CamelCase: also the first half of the UCF-style action class names
    shape: str
    colour: tuple[int, int, int]
    sound: str


# Order matters: a config with n_object_classes = k uses the first k.
OBJECT_CLASSES: tuple[ObjectClass, ...] = (
    ObjectClass("RedCircle", "circle", (230, 60, 50), "marimba"),
    ObjectClass("BlueSquare", "square", (60, 110, 245), "buzzer"),
    ObjectClass("GreenTriangle", "triangle", (70, 205, 80), "bell"),
    ObjectClass("YellowDiamond", "diamond", (245, 215, 50), "woodblock"),
    ObjectClass("MagentaRing", "ring", (225, 70, 225), "gong"),
    ObjectClass("CyanCross", "cross", (60, 225, 225), "drum"),
    ObjectClass("OrangeHexagon", "hexagon", (250, 140, 30), "pluck"),
    ObjectClass("WhiteBar", "bar", (238, 238, 238), "snare"),
)

# How an object enters and moves; the UCF-style classes are object class x motion.
MOTIONS: tuple[str, ...] = ("Bounce", "Throw")


def action_classes(n_object_classes: int) -> list[tuple[str, int, str]]:
    """[(action class name, object class id, motion)] in classInd order."""
    return [
        (f"{OBJECT_CLASSES[k].name}{motion}", k, motion)
        for k in range(n_object_classes)
        for motion in MOTIONS
    ]

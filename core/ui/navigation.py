"""No dead ends: the selection a page can draw when the current one is of the wrong kind.

Maps draw space datasets and Timelines time datasets. Opened on a selection of the other
kind (a first visit clicks Timelines while the default world_places is selected), a page
switches to a dataset of its kind, keeping the model, the prompt and the layer where
the new results have them; when the visitor picked the selection on that page, it
offers the same switch as a button instead. Pure functions over the results catalog.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.results import catalog as cat

# which dataset of a kind a page switches to first (then the others, alphabetically)
PREFERRED: dict[str, tuple[str, ...]] = {
    "space": ("world_places", "us_places", "nyc_places"),
    "time": ("historical_figures", "artworks", "dated_events"),
}
PAGE_OF_KIND = {"space": "Maps", "time": "Timelines"}


@dataclass(frozen=True)
class Switch:
    """A selection of the wanted kind: what changes, and what is kept."""

    model: str
    dataset: str
    prompt: str
    layer: int | None  # None: the new results' own best layer
    kind: str

    def fields(self) -> dict[str, str]:
        """The view-state fields to set (``core.ui.view_state`` field names)."""
        return {
            "model": self.model,
            "dataset": self.dataset,
            "prompt": self.prompt,
            "layer": "" if self.layer is None else str(self.layer),
            "color": "",  # the new dataset's default colour column
        }


def _order(datasets: set[str], kind: str) -> list[str]:
    preferred = [d for d in PREFERRED.get(kind, ()) if d in datasets]
    return preferred + sorted(datasets - set(preferred))


def switch_to_kind(
    catalog: cat.Catalog, model: str, prompt: str, layer: int | None, kind: str
) -> Switch | None:
    """The selection to switch to for a page that draws `kind`: a dataset of that kind
    with results for `model` (the preferred one first), on `prompt` where it has
    results for it (else its first prompt), at `layer` where those results have it;
    another model's only when `model` has none of that kind. None when no results of
    `kind` exist at all."""
    for mid in [model, *[m for m in catalog.models() if m != model]]:
        datasets = {e.dataset for e in catalog.entries if e.model_id == mid and e.kind == kind}
        for dataset in _order(datasets, kind):
            prompts = catalog.prompts(mid, dataset)
            chosen = prompt if prompt in prompts else (prompts[0] if prompts else None)
            if chosen is None:
                continue
            entry = catalog.find(mid, dataset, chosen)
            if entry is None:
                continue
            kept = layer if layer is not None and layer in entry.layers else None
            return Switch(mid, dataset, chosen, kept, kind)
    return None


def switch_note(switch: Switch, was: str, was_kind: str) -> str:
    """What an automatic switch tells the visitor."""
    page = PAGE_OF_KIND.get(switch.kind, "This page")
    text = f"{page} draws {switch.kind} datasets, and {was} is a {was_kind} dataset: "
    text += f"showing {switch.dataset}"
    if switch.layer is not None:
        text += f" at layer {switch.layer}"
    return text + " (the sidebar switches back)."

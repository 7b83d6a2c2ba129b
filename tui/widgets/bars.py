"""Static bar widgets: an endpoint's stacked traffic bar and a capacity bar."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.widget import Widget

from ..format import capacity_bar, traffic_bar


class TrafficBar(Widget):
    """The live traffic split of one endpoint, as one stacked bar."""

    DEFAULT_CSS = "TrafficBar { height: 1; width: 1fr; }"

    def __init__(self, traffic: Mapping[str, int] | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._traffic: dict[str, int] = dict(traffic or {})

    def set_traffic(self, traffic: Mapping[str, int]) -> None:
        if dict(traffic) != self._traffic:
            self._traffic = dict(traffic)
            self.refresh()

    def render(self) -> Text:
        # the bar gives way (down to 10 cells) before a name is abbreviated
        full_label = len(traffic_bar(self._traffic, 0).plain)
        bar = max(4, min(40, max(10, self.size.width - full_label)))
        return traffic_bar(self._traffic, bar, label_width=self.size.width - bar - 1)


class CapacityBar(Widget):
    DEFAULT_CSS = "CapacityBar { height: 1; width: 1fr; }"

    def __init__(
        self, label: str, used: float = 0, total: float = 0, unit: str = "", **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.label = label
        self.used = used
        self.total = total
        self.unit = unit

    def set_values(self, used: float, total: float) -> None:
        if (used, total) != (self.used, self.total):
            self.used, self.total = used, total
            self.refresh()

    def render(self) -> Text:
        text = Text(f"{self.label:<8}")
        text.append_text(
            capacity_bar(self.used, self.total, max(4, self.size.width - 24), self.unit)
        )
        return text

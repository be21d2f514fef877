"""What the console's browser tests share: the server they talk to, and the screenshots they save."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from console_world import Seeded
from playwright.sync_api import Page


@dataclass
class Server:
    """The console under test: its address and what the world holds."""

    url: str
    seeded: Seeded


class Screens:
    """Saves a full-page screenshot of each page visited, named after the test and the step."""

    def __init__(self, folder: Path, test: str) -> None:
        self.folder, self.test, self.count = folder, re.sub(r"\W+", "-", test).strip("-"), 0

    def __call__(self, page: Page, step: str) -> None:
        self.count += 1
        name = f"{self.test}-{self.count:02d}-{re.sub(r'[^a-z0-9]+', '-', step.lower())}.png"
        page.screenshot(path=str(self.folder / name), full_page=True)

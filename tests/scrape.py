"""Reading a Prometheus /metrics endpoint in tests: scrape it, then sum the samples that match."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
OBSERVABILITY = ROOT / "deploy" / "observability"


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


class Scrape:
    """One scrape: every sample, by sample name (``x_total``, ``x_bucket``, ``x_count``...)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: list[Sample] = []
        self.families: dict[str, str] = {}  # family name -> type
        for family in text_string_to_metric_families(text):
            self.families[family.name] = family.type
            self.samples += [Sample(s.name, dict(s.labels), float(s.value)) for s in family.samples]

    @property
    def names(self) -> set[str]:
        """Every name a query could use: sample names and family names."""
        return {s.name for s in self.samples} | set(self.families)

    def value(self, name: str, **labels: str) -> float:
        """Sum of the samples called ``name`` whose labels include ``labels`` (0 if none)."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def label_values(self, name: str, label: str) -> set[str]:
        return {s.labels[label] for s in self.samples if s.name == name and label in s.labels}


def scrape(url: str) -> Scrape:
    resp = httpx.get(url, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain"), resp.headers
    return Scrape(resp.text)


_METRIC = re.compile(r"\bkonspekt_\w+")


def referenced_metrics(text: str) -> set[str]:
    """Every ``konspekt_*`` name in PromQL (or anything else), read loosely."""
    return set(_METRIC.findall(text))

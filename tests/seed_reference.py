"""The seed's client-side filter loops, verbatim (shared/seed/000_d4af64e0fec590be.txt).

The reference that runlens's vectorized filters are checked against (property tests,
live CLI tests) and the baseline the benchmarks time. Kept literal on purpose: typing
style and all, so that any difference is the seed's, not a transcription's.
"""

from typing import Dict, List, Optional  # noqa: UP035


def _filter_events_by_type(events: List[Dict], event_type: Optional[str]) -> List[Dict]:  # noqa: UP006, UP045
    """Client-side filtering logic for event types."""
    if not event_type:
        return events

    # Split comma-separated types and normalize to uppercase
    types = [t.strip().upper() for t in event_type.split(",")]

    filtered = []
    for event in events:
        event_type_val = event.get("eventType")
        if event_type_val and event_type_val.upper() in types:
            filtered.append(event)

    return filtered


def _filter_events_by_step(events: List[Dict], step_key: Optional[str]) -> List[Dict]:  # noqa: UP006, UP045
    """Client-side filtering logic for step keys."""
    if not step_key:
        return events

    filtered = []
    for event in events:
        event_step = event.get("stepKey", "")
        if event_step and step_key.lower() in event_step.lower():
            filtered.append(event)

    return filtered


def seed_filter(events: List[Dict], event_type: Optional[str], step_key: Optional[str]) -> List[Dict]:  # noqa: UP006, UP045
    """Both filters, in the seed's order (type, then step)."""
    return _filter_events_by_step(_filter_events_by_type(events, event_type), step_key)

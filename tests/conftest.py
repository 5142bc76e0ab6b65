"""Shared fixtures: a private PulseAudio server with a virtual speaker and a virtual microphone
(:mod:`voiceguide.rig`)."""

from __future__ import annotations

import pytest

from voiceguide.errors import AudioDeviceUnavailable
from voiceguide.rig import private_pulse


@pytest.fixture(scope="session")
def pulse():
    try:
        with private_pulse() as server:
            yield server
    except AudioDeviceUnavailable as exc:
        pytest.skip(str(exc))

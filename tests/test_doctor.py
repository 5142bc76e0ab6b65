"""voiceguide doctor: one plain line per part, what to install when something is missing."""

from __future__ import annotations

import os
import subprocess
import sys


def doctor(*args, env=None):
    return subprocess.run([sys.executable, "-m", "voiceguide", "doctor", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_doctor_reports_every_part_on_its_own_line():
    proc = doctor()
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert any(l.startswith("OK: espeak-ng speech engine") for l in lines)
    assert any(l.startswith("OK: pocketsphinx speech recognition") for l in lines)
    assert any(l.startswith("OK: ffmpeg") for l in lines)
    assert all(l.startswith(("OK: ", "MISSING: ")) for l in lines[:-1])


def test_doctor_explains_missing_devices_and_tools(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path), VOICEGUIDE_AUDIO="none")
    proc = doctor(env=env)
    assert proc.returncode == 0
    out = proc.stdout
    assert "MISSING: espeak-ng speech engine. apt-get install espeak-ng." in out
    assert "MISSING: ffmpeg, for podcast export. apt-get install ffmpeg." in out
    assert "MISSING: audio output (speaker)." in out and "use --text" in out
    assert "without a speaker or microphone it uses text and the keyboard" in out
    assert doctor("--strict", env=env).returncode == 1


def test_doctor_without_devices_names_no_python_error_and_suggests_nothing_installed():
    """No audio server and no sound card (PULSE_SERVER nowhere): PortAudio's own noise stays out,
    and with PortAudio installed the advice is to connect a device, not to install PortAudio."""
    import ctypes.util

    env = dict(os.environ, PULSE_SERVER="unix:/nonexistent", AUDIODEV="null")
    env.pop("VOICEGUIDE_AUDIO", None)
    proc = doctor(env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0
    assert "Error querying device" not in out and "PortAudioError" not in out and "Traceback" not in out
    if ctypes.util.find_library("portaudio"):
        assert "apt-get install libportaudio2" not in out
    if "MISSING: audio output" in out:  # a machine with a sound card has a speaker even without PulseAudio
        assert "MISSING: audio output (speaker). No audio output device found. Check that a device is connected" in out

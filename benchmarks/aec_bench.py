"""Echo cancellation on the PulseAudio rig: in-process linear canceller vs module-echo-cancel (WebRTC) vs none.

One live run per condition on a private PulseAudio server (voiceguide/rig.py): the guide's sentences
(espeak-ng, full volume, one clip per sentence as the speaker plays them) go through PulseAudio's
``module-echo-cancel`` (aec_method=webrtc) sink to the rig's speaker; ``echo_path`` loops the speaker
back into the microphone 50 ms late, at the commands' mean level (0 dB) or 6 dB above; the listener's
commands (espeak or Piper, 10 dB below full level) are played into the microphone mid-sentence, in a
quiet room or with babble 10 dB below them. Recorded at once: the raw microphone (``vg_mic``) and
WebRTC's output (its source); the player's reference tap (:class:`voiceguide.audio.Played`) is kept and
the in-process canceller (:mod:`voiceguide.aec`) is run on the raw recording afterwards, frame by
frame with the frames' capture times, exactly as the microphone would feed it.

Ways: raw / webrtc / in-process linear only with the player's tap (inprocess) or the sink monitor
(monitor) as reference / the same with the residual echo suppressor after the linear filter (inprocess_rs,
monitor_rs). Per condition and way:
- ERLE: raw power over cleaned power on the echo frames away from any command (guide audible,
  quiet room), after the first 2 s, and over the first 2 s;
- listener kept: the gain of the clean command in the output (least-squares projection onto the
  command, located by cross-correlation), relative to the raw microphone's; 0 dB = untouched;
- recognised: the command's stretch (0.3 s either side) through the hybrid recogniser
  (voiceguide.asr, the shipped default) and the intent parser: right intent or not.
Usage: python benchmarks/aec_bench.py [--voices espeak,piper] [--echo 0,6] [--rooms quiet,babble]
       [--commands N] [--keep DIR [--record-only]] [--replay DIR] [--ways raw,monitor,...] [--no-record]
Record the rig once (``--keep DIR --record-only``: about 1.3 min per condition), then evaluate as often as
needed with ``--replay DIR`` (the recogniser's passes are most of its time: choose ``--ways``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, record  # noqa: E402

import numpy as np  # noqa: E402

from voiceguide import audio as A  # noqa: E402
from voiceguide.aec import FRAME, RATE, EchoCanceller  # noqa: E402
from voiceguide.protocols import Audio  # noqa: E402
from voiceguide.rig import Recorder, frame_rms, private_pulse, room_noise  # noqa: E402

COMMANDS = [("pause", "pause"), ("stop talking", "pause"), ("wait", "pause"), ("next", "next"),
            ("number two", "number"), ("skip", "skip"), ("repeat", "repeat"), ("main menu", "menu"),
            ("hold on", "pause"), ("faster", "faster"), ("stop", "stop")]
SENTENCES = ["Chemotherapy uses strong medicines to kill leukaemia cells.",
             "Most people have it in hospital, in cycles of treatment with rest in between.",
             "Your team checks your blood often, because the treatment lowers the number of healthy blood cells too.",
             "Tell them at once if you get a fever or feel unwell.",
             "A stem cell transplant replaces the blood making cells with healthy ones from a donor.",
             "It is the only treatment that may cure this leukaemia, for some people."]
COMMAND_GAIN = 0.3
WAYS = ("raw", "webrtc", "inprocess", "monitor", "inprocess_rs", "monitor_rs")
"""raw microphone; PulseAudio's WebRTC module; in-process (linear only) with the player's tap; with the sink
monitor; the same two with the residual echo suppressor after the linear filter."""
INPROCESS = {"inprocess": ("tap", False), "monitor": ("monitor", False), "inprocess_rs": ("tap", True),
             "monitor_rs": ("monitor", True)}
"""In-process ways: (reference, residual echo suppressor on)."""


def level_db(audio: Audio) -> float:
    rms = frame_rms(audio)
    return float(20 * np.log10(np.sqrt(np.mean(rms[rms > 30] ** 2))))


def x16(audio: Audio) -> np.ndarray:
    return np.frombuffer(A.resample(audio, RATE).pcm, "<i2").astype(np.float64)


def record_condition(pulse, sentences, commands, echo_gain_db, babble, out_dir: Path, seed: int) -> dict:
    """Play the guide with commands over it; returns the recordings and the reference blocks."""
    from voiceguide.mic import PulseEchoCancel

    echo = pulse.echo_path(gain_db=echo_gain_db, latency_ms=50)
    ec = PulseEchoCancel.load()
    if ec is None:
        raise SystemExit("aec_bench: PulseAudio module-echo-cancel did not load")
    noise_proc = pulse.play_into_mic(babble, wait=False) if babble is not None else None
    blocks, monitor_blocks = [], []
    monitor = A.SinkMonitor("vg_speaker")  # what the speaker really plays
    monitor.add_listener(monitor_blocks.append)
    player = A.Player(backend="pulse")
    player.device = ec.sink
    player.add_listener(blocks.append)
    raw_rec, web_rec = pulse.record_mic(), Recorder(ec.source)
    rng = np.random.default_rng(seed)
    placed = []
    try:
        time.sleep(0.8)
        names = list(commands)
        k = 0
        for rep in range(1 + len(names) // len(sentences)):
            for s in sentences:
                player.play(s)
                if k < len(names):
                    time.sleep(0.6 + 1.2 * rng.random())
                    placed.append((names[k], time.monotonic()))
                    pulse.play_into_mic(commands[names[k]])
                    k += 1
                player.wait()
                time.sleep(0.25)
        time.sleep(0.5)
    finally:
        player.stop()
        raw, web = raw_rec.stop(), web_rec.stop()
        monitor.close()
        if noise_proc:
            noise_proc.kill()
        ec.close()
        pulse.remove_echo_path(echo)
    data = {"raw": raw, "raw_t0": raw_rec.t0, "webrtc": web, "webrtc_t0": web_rec.t0, "blocks": blocks,
            "monitor": monitor_blocks, "placed": placed}
    if out_dir:
        (out_dir).mkdir(parents=True, exist_ok=True)
        with open(out_dir / "rec.pkl", "wb") as f:
            pickle.dump(data, f)
    return data


def run_inprocess(data: dict, source: str = "tap", **kw) -> tuple[np.ndarray, float, EchoCanceller]:
    """The in-process canceller over the raw recording, frame by frame, as the microphone would feed it;
    the reference from the player's tap (blocks arrive up to 1 s ahead, as the player writes them) or
    from the sink monitor (a block arrives 30 ms after its last sample was played). Returns the output
    and the processing time per frame (s)."""
    aec = EchoCanceller(**kw)
    raw = np.frombuffer(data["raw"].pcm, "<i2")
    t0 = data["raw_t0"]
    blocks = sorted(data["blocks"] if source == "tap" else data["monitor"], key=lambda b: b.t)
    ahead = 1.0 if source == "tap" else -0.03
    out, bi, spent = [], 0, 0.0
    n = len(raw) // FRAME * FRAME
    for i in range(0, n, FRAME):
        t = t0 + i / RATE
        while bi < len(blocks) and blocks[bi].t + len(blocks[bi].pcm) / 2 / blocks[bi].sample_rate < t + FRAME / RATE + ahead:
            aec.add_reference(blocks[bi])
            bi += 1
        start = time.perf_counter()
        out.append(np.frombuffer(aec.process(raw[i:i + FRAME].tobytes(), t), "<i2"))
        spent += time.perf_counter() - start
    return np.concatenate(out).astype(np.float64), spent / max(1, n // FRAME), aec


def locate(x: np.ndarray, cmd: np.ndarray, near: int, span: int = 16000) -> int:
    """Where ``cmd`` starts in ``x``, searched within ``span`` samples of ``near``."""
    lo, hi = max(0, near - span), min(len(x), near + span + len(cmd))
    seg = x[lo:hi]
    if len(seg) < len(cmd):
        return near
    n = 1 << int(np.ceil(np.log2(len(seg) + len(cmd))))
    cc = np.fft.irfft(np.fft.rfft(seg, n) * np.conj(np.fft.rfft(cmd, n)), n)[:len(seg) - len(cmd) + 1]
    return lo + int(np.argmax(cc))


def gain_db(x: np.ndarray, at: int, cmd: np.ndarray) -> float:
    seg = x[at:at + len(cmd)]
    if len(seg) < len(cmd):
        return float("nan")
    g = float(np.dot(seg, cmd) / np.dot(cmd, cmd))
    return 20 * np.log10(max(abs(g), 1e-6))


def evaluate(data: dict, commands: dict, want: dict, recognizer, parser, quiet: bool, ways_wanted=WAYS,
             **kw) -> dict:
    raw = np.frombuffer(data["raw"].pcm, "<i2").astype(np.float64)
    web = np.frombuffer(data["webrtc"].pcm, "<i2").astype(np.float64)
    n_out = len(raw) // FRAME * FRAME
    ways = {"raw": (raw[:n_out], data["raw_t0"])}
    if "webrtc" in ways_wanted:
        ways["webrtc"] = (web, data["webrtc_t0"])
    res: dict = {}
    for w in ways_wanted:
        if w not in INPROCESS or (INPROCESS[w][0] == "monitor" and not data.get("monitor")):
            continue
        source, suppress = INPROCESS[w]
        out, per_frame, aec = run_inprocess(data, source, suppress=suppress, **kw)
        ways[w] = (out, data["raw_t0"])
        res[f"per_frame_ms_{w}"] = per_frame * 1000
        res[f"delay_ms_{w}"] = aec.delay_ms
    raw = raw[:n_out]
    res.update({w: {"right": 0, "heard": [], "kept": []} for w in ways})
    cmd_mask = np.zeros(len(raw), bool)
    for name, t in data["placed"]:
        cmd = x16(commands[name])
        for w, (x, t0) in ways.items():
            at = locate(x, cmd, int((t - t0) * RATE))
            if w == "raw":
                cmd_mask[max(0, at - 4800):at + len(cmd) + 4800] = True
                g_raw = gain_db(x, at, cmd)
            res[w]["kept"].append(gain_db(x, at, cmd) - g_raw if w != "raw" else 0.0)
            if w not in ways_wanted:
                continue
            clip = x[max(0, at - 4800):at + len(cmd) + 4800]
            audio = Audio(np.clip(np.round(clip), -32768, 32767).astype("<i2").tobytes(), RATE)
            try:
                heard = recognizer.recognize(audio)
                text = heard.text
            except Exception as exc:  # counted as missed
                text = f"<{type(exc).__name__}>"
            ok = parser.parse(text).intent == want[name] if not text.startswith("<") else False
            res[w]["right"] += ok
            res[w]["heard"].append((name, text))
    if "raw" not in ways_wanted:
        del res["raw"]
    # echo frames: guide audible on the raw microphone, no command near
    f = len(raw) // FRAME
    fr = lambda x: (x[:f * FRAME].reshape(f, FRAME) ** 2).mean(axis=1)  # noqa: E731
    p_raw = fr(raw)
    loud = (p_raw > 300.0 ** 2) & ~cmd_mask[:f * FRAME].reshape(f, FRAME).any(axis=1)
    first = min(b.t for b in data["blocks"]) if data["blocks"] else data["raw_t0"]
    t_frames = data["raw_t0"] + np.arange(f) * FRAME / RATE
    early = loud & (t_frames < first + 2.0)
    late = loud & (t_frames >= first + 2.0)
    erle = lambda m, po: 10 * np.log10(p_raw[m].sum() / max(po[m].sum(), 1e-9)) if m.any() else float("nan")  # noqa: E731
    for w in INPROCESS:
        if w in ways:
            p_w = fr(ways[w][0])
            res[w]["erle"], res[w]["erle_first2s"] = erle(late, p_w), erle(early, p_w)
    if "webrtc" in ways:
        # the module adds its own latency: align by cross-correlation over the whole recording
        shift = int(round((data["raw_t0"] - data["webrtc_t0"]) * RATE))
        lag = locate(web, raw[16000:16000 + 32000], 16000 + shift, 8000) - 16000
        web_al = np.zeros(len(raw))
        src = web[max(0, lag):max(0, lag) + len(raw)]
        web_al[:len(src)] = src
        res["webrtc"]["erle"] = erle(late, fr(web_al))
        res["webrtc"]["erle_first2s"] = erle(early, fr(web_al))
    if "raw" in res:
        res["raw"]["erle"] = res["raw"]["erle_first2s"] = 0.0
    res["n"] = len(data["placed"])
    res["quiet"] = quiet
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voices", default="espeak,piper")
    ap.add_argument("--echo", default="0,6")
    ap.add_argument("--rooms", default="quiet,babble")
    ap.add_argument("--commands", type=int, default=len(COMMANDS), help="commands per condition")
    ap.add_argument("--keep", type=Path, help="keep the recordings here (rec.pkl per condition)")
    ap.add_argument("--replay", type=Path, help="evaluate recordings kept by --keep instead of recording")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--record-only", action="store_true", help="with --keep: record the rig runs, evaluate later")
    ap.add_argument("--ways", default=",".join(WAYS), help="ways evaluated: " + ", ".join(WAYS))
    args = ap.parse_args()
    ways = [w.strip() for w in args.ways.split(",") if w.strip()]
    bad = [w for w in ways if w not in WAYS]
    if bad:
        ap.error(f"unknown way(s) {', '.join(bad)}; choose from {', '.join(WAYS)}")

    from voiceguide.asr import get_recognizer
    from voiceguide.content import load_guide
    from voiceguide.intents import IntentParser
    from voiceguide.tts import PiperEngine, get_engine, render, scale

    guide = load_guide()
    parser = IntentParser(guide)
    want = dict(COMMANDS)
    chosen = [p for p, _ in COMMANDS][:args.commands]
    espeak = get_engine("espeak")
    engines = {"espeak": espeak, "piper": None}
    load = os.getloadavg()
    rows = []
    with private_pulse() as pulse:
        recognizer = get_recognizer(guide, "auto")
        sentences = [render(s, engine=espeak, rate=175, lexicon=guide.lexicon) for s in SENTENCES]
        guide_db = float(np.mean([level_db(s) for s in sentences]))
        for voice in args.voices.split(","):
            if voice == "piper" and engines["piper"] is None:
                engines["piper"] = PiperEngine(variation=0.0)
            commands = {p: scale(render(p, engine=engines[voice], lexicon=guide.lexicon), COMMAND_GAIN)
                        for p in chosen}
            cmd_db = float(np.mean([level_db(a) for a in commands.values()]))
            for echo_db in [float(e) for e in args.echo.split(",")]:
                for room in args.rooms.split(","):
                    key = f"{voice}_{echo_db:+.0f}_{room}"
                    if args.replay:
                        with open(args.replay / key / "rec.pkl", "rb") as f:
                            data = pickle.load(f)
                    else:
                        babble = (room_noise("babble", 10.0, list(commands.values()), [espeak], seconds=120)
                                  if room == "babble" else None)
                        data = record_condition(pulse, sentences, commands, cmd_db + echo_db - guide_db, babble,
                                                args.keep / key if args.keep else None, seed=len(rows))
                        if args.record_only:
                            rows.append(None)
                            print(f"{key}: recorded, load {os.getloadavg()[0]:.1f}", flush=True)
                            continue
                    r = evaluate(data, commands, want, recognizer, parser, room == "quiet", ways_wanted=ways)
                    rows.append((voice, echo_db, room, r))
                    n = len(data["placed"])
                    cost = ", ".join(f"{w} {r['per_frame_ms_' + w]:.2f}" for w in INPROCESS if "per_frame_ms_" + w in r)
                    print(f"{key}: load {os.getloadavg()[0]:.1f}; ms/frame {cost}; " + "; ".join(
                        f"{w} right {r[w]['right']}/{n} ERLE {r[w]['erle']:.1f} dB (first 2 s {r[w]['erle_first2s']:.1f}) "
                        f"kept {np.nanmedian(r[w]['kept']):+.1f} dB (worst {np.nanmin(r[w]['kept']):+.1f})"
                        for w in WAYS if w in r), flush=True)
                    for w in WAYS:
                        if w not in r:
                            continue
                        print(f"   {w}: {r[w]['heard']}", flush=True)
    if args.record_only:
        return 0
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    names = {"raw": "raw microphone", "webrtc": "PulseAudio module-echo-cancel (webrtc)",
             "inprocess": "in-process linear, player's tap", "monitor": "in-process linear, sink monitor",
             "inprocess_rs": "in-process + suppressor, player's tap",
             "monitor_rs": "in-process + suppressor, sink monitor"}
    lines = [f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC. Load before: {load[0]:.1f} {load[1]:.1f} "
             f"{load[2]:.1f}; after: {uptime}. In-process canceller (voiceguide/aec.py): tail 160 ms, linear only "
             "or with its residual echo suppressor (_rs). Guide espeak-ng 175 wpm, full volume, one clip per sentence; commands 10 dB "
             "below full, one per sentence, 0.6-1.8 s into it; echo: rig echo_path, 50 ms loopback. ERLE: raw "
             "power over output power on the echo frames of the run away from commands, after the first 2 s "
             "(the first 2 s in brackets). Kept: the command's gain in the output against the raw microphone "
             "(median, worst; 0 dB = untouched). Right: the hybrid recogniser's intent on the command's "
             "stretch (+-0.3 s).", "",
             "| voice | echo | room | way | right | ERLE | kept |", "|---|---|---|---|---|---|---|"]
    for voice, echo_db, room, r in rows:
        n = r["n"]
        for w in WAYS:
            if w not in r:
                continue
            erle = "-" if w == "raw" else f"{r[w]['erle']:.1f} ({r[w]['erle_first2s']:.1f}) dB"
            kept = "-" if w == "raw" else f"{np.nanmedian(r[w]['kept']):+.1f} ({np.nanmin(r[w]['kept']):+.1f}) dB"
            lines.append(f"| {voice} | {echo_db:+.0f} dB | {room} | {names[w]} | {r[w]['right']}/{n} | {erle} | {kept} |")
    n_all = sum(r["n"] for *_, r in rows)
    tot = ", ".join(f"{names[w]} {sum(r[w]['right'] for *_, r in rows if w in r)}/{n_all}" for w in WAYS
                    if any(w in r for *_, r in rows))
    cost = "; ".join(f"{names[w]} median {np.median(c):.2f} ms, worst {max(c):.2f} ms" for w in INPROCESS
                     if (c := [r["per_frame_ms_" + w] for *_, r in rows if "per_frame_ms_" + w in r]))
    lines += ["", f"Commands recognised right, all conditions: {tot}. In-process cost per 20 ms frame: {cost} "
              f"(one NumPy thread, beside the others' jobs; load as above). Machine: {machine()}."]
    body = "\n".join(lines)
    if args.no_record:
        print(body)
    else:
        record("Echo cancellation, in-process linear canceller vs WebRTC module (issue 15)", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())

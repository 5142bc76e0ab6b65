"""Barge-in: commands said while the guide talks, over its echo, on virtual audio devices.

A private PulseAudio server (voiceguide/rig.py) with an echo path: the speaker's output reaches the
microphone 50 ms late, at the commands' mean level (0 dB) or 6 dB above it. The guide (AudioSpeaker,
espeak-ng, full volume) reads a long passage; the microphone side is the real :class:`voiceguide.mic.MicListener`
(the session's echo cancellation, endpointer and recogniser; ``on_barge_in`` stops the speaker, as in a
session). Per condition (command voice espeak or Piper, echo 0 or +6 dB, room quiet or babble 10 dB
below the commands):
- acted on: a command played into the microphone 1.5-3.5 s into the passage is taken as a barge-in
  with the intent it has (pause for "pause", "stop talking", "wait"...), scored by what the guide does with it:
  a bare "stop" said while it talks is a pause (so "stop talking" heard as "stop" is acted on);
- time to silence: from the end of the command (the moment its last loud sample went into the
  microphone: the end of the feed less the command's trailing quiet) to the guide's last loud frame on
  the speaker recording;
- false barge-ins: the guide reads with no command (same echo and room) and every barge-in is false;
  reported per 10 minutes of guide speech.
Usage: python benchmarks/bargein_bench.py [--trials N] [--quiet-seconds S] [--aec auto|pulse|inprocess|off]
       [--no-record] [--ceiling] [--keep DIR]
With ``--ceiling``: no rig; the same commands and room straight into the recogniser (:func:`ceiling`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

import numpy as np  # noqa: E402

from voiceguide.asr import get_recognizer  # noqa: E402
from voiceguide.content import load_guide  # noqa: E402
from voiceguide.intents import IntentParser  # noqa: E402
from voiceguide.mic import AEC_WARMUP, FALLBACK_KEYWORDS, MicListener  # noqa: E402
from voiceguide.rig import RATE, frame_rms, private_pulse, room_noise  # noqa: E402
from voiceguide.tts import AudioSpeaker, PiperEngine, get_engine, render, scale  # noqa: E402

COMMANDS = [("pause", "pause"), ("stop talking", "pause"), ("wait", "pause"), ("next", "next"),
            ("number two", "number"), ("skip", "skip"), ("repeat", "repeat"), ("main menu", "menu"),
            ("hold on", "pause"), ("faster", "faster"), ("stop", "stop")]
PASSAGE = ("Chemotherapy uses strong medicines to kill leukaemia cells. Most people have it in hospital, in cycles "
           "of treatment with rest in between. Your team checks your blood often, because the treatment lowers "
           "the number of healthy blood cells too. Tell them at once if you get a fever or feel unwell. ")
LOUD = 30.0
"""A speaker frame above this RMS is sound (the rig's speaker is digital silence otherwise): a lowered guide
(-20 dB, :meth:`voiceguide.audio.Player.duck`) is not yet silent."""
COMMAND_GAIN = 0.3
AGAIN_AFTER = 1.5
"""With ``--tries 2``: seconds after the end of a command that did not stop the guide before it is said again."""  # 10 dB below the voices' full level: the echo 6 dB above never clips


def acts_as(parser, text: str) -> str | None:
    """What the guide does with ``text`` said while it talks: its intent, except that a bare "stop" ("stop it",
    "stop that", "stop please") then means stop talking, a pause (voiceguide.dialog: Dialog._on_stop with
    during_speech, _bare_stop)."""
    import re

    intent = parser.parse(text).intent
    words = re.sub(r"[^a-z ]", "", text.lower()).split()
    if intent == "stop" and words and words[0] == "stop" and words[1:] in ([], ["it"], ["that"], ["please"]):
        return "pause"
    return intent


def reading(guide):
    """The dialog and its state while the guide reads the chemotherapy section (the passage's subject): how a
    session judges a phrase over the guide (``Dialog.takes``, handed to the microphone by ``run_session``) and what
    it then does with it (``Dialog.judge``)."""
    from voiceguide.dialog import Dialog, Heard as Said, Start
    from voiceguide.intents import Intent
    from voiceguide.state import State

    dialog = Dialog(guide)
    state, _ = dialog.step(State(), Start())
    state, _ = dialog.step(state, Said(Intent("open", "chemotherapy", "chemotherapy", 1.0)))
    assert dialog.position(state).section == "chemotherapy", state
    return dialog, state


def verdict(dialog, state, parser, heard) -> str:
    """What the guide does with a barge-in: ``act`` at once (a pause always), ``confirm``/``choose`` (asks), or
    ``miss`` (cut, then "not understood")."""
    from voiceguide.session import to_event

    event = to_event(heard, parser, state)
    if getattr(event, "intent", None) is not None and acts_as(parser, heard.text) == "pause":
        return "act"
    return dialog.judge(state, event)[0] if hasattr(event, "readings") else "miss"


def level_db(audio) -> float:
    rms = frame_rms(audio)
    return float(20 * np.log10(np.sqrt(np.mean(rms[rms > 30] ** 2))))


def trailing_quiet(audio) -> float:
    rms = frame_rms(audio)
    loud = np.flatnonzero(rms > 100)
    return (len(rms) - 1 - loud[-1]) * 0.02 if len(loud) else 0.0


class Rig:
    def __init__(self, pulse, guide, recognizer, aec: str, keep: str | None = None):
        self.pulse, self.guide, self.recognizer, self.aec = pulse, guide, recognizer, aec
        self.keep = Path(keep) if keep else None
        """``--keep DIR``: every phrase the microphone found is saved there as the recogniser got it (after the
        canceller), named by row, number, what became of it and its reading, to recognise again offline."""
        self.row, self.n = "", 0
        self.judge = True
        """``--judge on``: the microphone asks the dialog before a phrase cuts the guide (``MicListener.judge_with``)."""
        self.ends: dict[int, int] = {}
        """The capture frame at which each phrase seen (by the id of its reading) ended."""

    def listener(self):
        speaker = AudioSpeaker.create(self.guide, engine="espeak", rate=175)
        mic = MicListener(self.recognizer, speaker, guide=self.guide, echo_cancel=self.aec)
        mic.on_barge_in = speaker.stop
        events = []
        trace = os.environ.get("VOICEGUIDE_MIC_TRACE")

        def seen(kind, heard, a, b):
            events.append((time.monotonic(), kind, heard))
            self.ends[id(heard)] = b
            if self.keep is not None:
                import re
                import wave

                self.keep.mkdir(parents=True, exist_ok=True)
                self.n += 1
                name = re.sub(r"[^a-z0-9]+", "_", f"{self.row} {self.n:03d} {kind} {heard.text}".lower()).strip("_")
                with wave.open(str(self.keep / f"{name[:80]}.wav"), "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(16000)
                    w.writeframes(mic.capture.audio(a, b).pcm)
                if mic.aec is not None:  # what the canceller said the guide's echo alone leaves in each frame
                    n = mic._talked
                    np.save(self.keep / f"{name[:80]}.echo.npy", np.array(
                        [mic._echo[i % len(mic._echo)] if n - len(mic._echo) < i < n else 0.0 for i in range(a, b)]))
            if trace:
                aec = mic.aec
                print(f"  {kind} {heard.text!r} conf {heard.confidence:.2f} {a * 0.02:.2f}-{b * 0.02:.2f}s "
                      f"lowered {speaker.player.ducked}"
                      + (f" converged {aec.converged} erle {aec.erle_db:.1f} learned {aec.learned}" if aec is not None
                         else ""),
                      file=sys.stderr, flush=True)

        mic.on_segment = seen
        if self.judge:  # as in a session: a phrase the guide would not understand, not lowered for, does not cut it
            from voiceguide.session import to_event

            dialog, state = reading(self.guide)
            parser = IntentParser(self.guide)
            mic.judge_with(lambda heard: dialog.takes(state, to_event(heard, parser, state)))
        return speaker, mic, events


def run_condition(rig: Rig, commands: dict, voice: str, echo_db: float, room: str, trials: int,
                  quiet_seconds: float, guide_db: float, rng, tries: int = 1) -> dict:
    pulse = rig.pulse
    cmd_db = float(np.mean([level_db(a) for a in commands.values()]))
    echo = pulse.echo_path(gain_db=cmd_db + echo_db - guide_db, latency_ms=50)
    noise_proc = None
    if room == "babble":
        noise = room_noise("babble", 10.0, list(commands.values()), [get_engine("espeak")], seconds=600)
        noise_proc = pulse.play_into_mic(noise, wait=False)
    speaker, mic, events = rig.listener()
    parser = IntentParser(rig.guide)
    dialog, state = reading(rig.guide)
    out = {"verdicts": {}, "second": 0, "acted": 0, "trials": 0, "latencies": [], "false": 0, "speech_seconds": 0.0, "misses": [],
           "early": [], "warm_acted": 0, "warm_trials": 0}
    talked = 0.0  # seconds the guide has talked in this session before the trial going on
    try:
        time.sleep(1.0)
        names = list(commands)
        for k in range(trials):
            phrase = names[k % len(names)]
            want = dict(COMMANDS)[phrase]
            rec = pulse.record_speaker()
            first_frame = mic.capture.count
            before = len(events)
            talk = threading.Thread(target=speaker.speak, args=(PASSAGE,), daemon=True)
            talk_from = time.monotonic()
            talk.start()
            time.sleep(1.5 + 2.0 * rng.random())
            # the guide had talked mic.AEC_WARMUP s in this session (the canceller has heard the room)
            warm = talked + time.monotonic() - talk_from >= AEC_WARMUP
            ducks = mic.ducks
            rig.row = f"{voice} {echo_db:+.0f} {room} {k:02d} {phrase}"
            if os.environ.get("VOICEGUIDE_MIC_TRACE"):
                print(f"-- {phrase} at {mic.capture.count * 0.02:.2f}s", file=sys.stderr, flush=True)
            played = mic.capture.count
            pulse.play_into_mic(commands[phrase])
            end = time.monotonic() - trailing_quiet(commands[phrase])
            said = 1
            while True:
                deadline = time.monotonic() + (6 if said == tries else AGAIN_AFTER)
                while time.monotonic() < deadline and not any(kind == "barge-in" for _, kind, _ in events[before:]):
                    time.sleep(0.05)
                if said == tries or any(kind == "barge-in" for _, kind, _ in events[before:]) \
                        or not speaker.player.is_playing:
                    break
                # not understood and the guide talks on: the listener says it again, as people do
                pulse.play_into_mic(commands[phrase])
                end = time.monotonic() - trailing_quiet(commands[phrase])
                said += 1
            out["second"] += said > 1
            speaker.stop()
            talk.join(10)
            talked += time.monotonic() - talk_from
            time.sleep(0.3)
            audio = rec.stop()
            if rig.keep is not None:  # the whole trial after the canceller, for the endpointer's view offline
                import wave

                rig.keep.mkdir(parents=True, exist_ok=True)
                with wave.open(str(rig.keep / f"{rig.row.replace(' ', '_')}_trial_from_{first_frame}.wav"), "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(16000)
                    w.writeframes(mic.capture.audio(first_frame, mic.capture.count).pcm)
            barges = [(t, h) for t, kind, h in events[before:] if kind == "barge-in"]
            # a barge-in on a phrase that ended before the command began to play is the guide's own voice cutting
            # it: a false barge-in during the trial (scored as before; listed)
            out["early"] += [f"{phrase}: {h.text}" for _, h in barges if rig.ends.get(id(h), played) <= played]
            out["trials"] += 1
            heard_ok = barges and acts_as(parser, barges[0][1].text) == ("pause" if want == "stop" else want)
            out["warm_trials"] += warm
            if heard_ok:
                done = verdict(dialog, state, parser, barges[0][1])
                out["verdicts"][done] = out["verdicts"].get(done, 0) + 1
                out["acted"] += 1
                out["warm_acted"] += warm
                rms = frame_rms(audio)
                t = rec.t0 + np.arange(len(rms)) * 0.02
                loud = np.flatnonzero((rms > LOUD) & (t < barges[0][0] + 1.0))
                if len(loud):
                    out["latencies"].append(max(0.0, t[loud[-1]] + 0.02 - end))
            else:
                out["misses"].append((phrase + (" (lowered)" if mic.ducks > ducks else ""), [h.text for _, h in barges] or
                                      [f"{kind}: {h.text}" for _, kind, h in events[before:] if h.text or kind != "gated"]))
            while mic.barged_in():
                mic.hear(0)
        # the guide talking, no command: every barge-in is false
        rig.row = f"{voice} {echo_db:+.0f} {room} quiet"
        before = len(events)
        ducks_before = mic.ducks
        start = time.monotonic()
        while time.monotonic() - start < quiet_seconds:
            t0 = time.monotonic()
            speaker.speak(PASSAGE)
            out["speech_seconds"] += time.monotonic() - t0
            while mic.barged_in():
                mic.hear(0)
        out["false"] = sum(1 for _, kind, _ in events[before:] if kind == "barge-in")
        out["false_texts"] = [h.text for _, kind, h in events[before:] if kind == "barge-in"]
        out["false_ducks"] = mic.ducks - ducks_before
    finally:
        mic.close()
        speaker.close()
        if noise_proc:
            noise_proc.kill()
        pulse.remove_echo_path(echo)
    return out


def _command_intent(parser, text: str) -> str | None:
    """What a reading would do over the guide (mic.MicListener._is_barge_in's checks on the text, with any
    command allowed): the intent, or None when it would not cut the guide."""
    import re

    from voiceguide.mic import BARGE_INTENTS_EXCLUDED

    text = text.strip()
    if not text:
        return None
    intent = parser.parse(text).intent
    if intent in BARGE_INTENTS_EXCLUDED:
        return None
    if intent == "number" and not re.search(r"[a-z]", re.sub(r"\d", "", text.lower())):
        return None
    return intent


def ceiling(args, guide, chosen, voices) -> int:
    """The recogniser alone (``--ceiling``): each row's commands, the same voices at the same level, straight
    into the hybrid recogniser with the row's room (quiet, or the bench's babble 10 dB below the commands, a
    different stretch of it for each saying) and no guide speech and no echo at all; the phrase as the
    endpointer hands it over the guide (``--pre-roll``, 0.15 s, of the room before its first loud frame, 0.1 s
    after its last). Two
    tries: a saying read as no command that would cut the guide is said again; one read as another
    command is a miss (it would have cut the guide with the wrong command)."""
    from voiceguide.mic import BARGE_PRE_ROLL, FRAME_S, TAIL
    from voiceguide.protocols import Audio

    recognizer = get_recognizer(guide, "auto")
    parser = IntentParser(guide)
    rng = np.random.default_rng(15)
    pre_roll = BARGE_PRE_ROLL if args.pre_roll is None else args.pre_roll
    lines = ["| command voice | echo | room | acted on within two tries | right at the first saying | misses |",
             "|---|---|---|---|---|---|"]
    total = [0, 0, 0]
    for voice in args.voices.split(","):
        commands = {p: scale(render(p, engine=voices[voice], lexicon=guide.lexicon), COMMAND_GAIN)
                    for p, _ in chosen}
        babble = samples_of(room_noise("babble", 10.0, list(commands.values()), [get_engine("espeak")], seconds=600))
        for echo_db in [float(e) for e in args.echo.split(",")]:
            for room in args.rooms.split(","):
                names = list(commands)
                acted = first = 0
                misses = []
                for k in range(args.trials):
                    phrase = names[k % len(names)]
                    want = dict(COMMANDS)[phrase]
                    x = samples_of(commands[phrase])
                    loud = np.flatnonzero(frame_rms(commands[phrase]) > 100)
                    a, b = int(loud[0] * FRAME_S * RATE), int((loud[-1] + 1 + TAIL) * FRAME_S * RATE)
                    x = np.concatenate([np.zeros(int(pre_roll * RATE)), x[a:b],
                                        np.zeros(max(0, b - len(x)))])  # the room before the first loud frame
                    got = []
                    for attempt in range(args.tries):
                        y = x.copy()
                        if room == "babble":
                            at = int(rng.integers(0, len(babble) - len(y)))
                            y = y + babble[at:at + len(y)]
                        pcm = np.clip(y, -32768, 32767).astype("<i2").tobytes()
                        heard = recognizer.recognize(Audio(pcm, RATE))
                        intent = _command_intent(parser, heard.text)
                        got.append(heard.text)
                        if intent is not None:
                            break
                    ok = intent is not None and acts_as(parser, heard.text) == ("pause" if want == "stop" else want)
                    acted += ok
                    first += ok and len(got) == 1
                    if not ok:
                        misses.append(f"{phrase}: {' / '.join(repr(g) for g in got)}")
                total[0] += acted
                total[1] += first
                total[2] += args.trials
                print(f"{voice:6} echo {echo_db:+.0f} dB {room:6}: right within two tries {acted}/{args.trials}, "
                      f"first saying {first}; misses {misses}", flush=True)
                lines.append(f"| {voice} | none (no guide speech; row of {echo_db:+.0f} dB) | {room} | "
                             f"{acted}/{args.trials} ({100 * acted / max(1, args.trials):.0f}%) | {first}/{args.trials} | "
                             f"{'; '.join(misses)} |")
    lines.append(f"| all | none | both | {total[0]}/{total[2]} ({100 * total[0] / max(1, total[2]):.0f}%) | "
                 f"{total[1]}/{total[2]} | |")
    print("\n".join(lines))
    return 0


def samples_of(audio) -> np.ndarray:
    """At the rig's rate (16 kHz: espeak-ng and Piper render at 22,050 Hz), as floats."""
    from voiceguide.rig import samples

    return samples(audio)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10, help="commands per condition (default 10)")
    ap.add_argument("--quiet-seconds", type=float, default=60.0, help="guide speech with no command per condition")
    ap.add_argument("--aec", default="auto", choices=["auto", "pulse", "inprocess", "off"],
                    help="echo cancellation: auto (mic.AEC_DEFAULT), pulse (PulseAudio's module-echo-cancel), "
                         "inprocess (voiceguide.aec on the microphone frames, reference from the sink monitor) or off")
    ap.add_argument("--voices", default="espeak,piper")
    ap.add_argument("--echo", default="0,6")
    ap.add_argument("--rooms", default="quiet,babble")
    ap.add_argument("--commands", choices=["keywords", "all"], default="keywords",
                    help="keywords: the phrases that cut the guide by default (mic.FALLBACK_KEYWORDS); all: every "
                         "command, with VOICEGUIDE_BARGE=any")
    ap.add_argument("--tries", type=int, choices=[1, 2], default=1,
                    help="2: a command that has not stopped the guide 1.5 s after it ended is said again "
                         "(acted on within two tries; time to silence from the end of the last one)")
    ap.add_argument("--duck", choices=["on", "off"], default="on",
                    help="lower the guide's voice while a phrase is said over it (VOICEGUIDE_DUCK)")
    ap.add_argument("--judge", choices=["on", "off"], default="on",
                    help="on (as in a session): a phrase the guide would not understand (Dialog.takes), heard while "
                         "the canceller heard no one but the guide, does not cut it; off: any command may")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--keep", metavar="DIR", help="save every phrase the microphone found (after the canceller) "
                    "as a WAV in DIR, named by row, trial, what became of it and its reading")
    ap.add_argument("--ceiling", action="store_true",
                    help="no rig, no guide speech, no echo: the commands and the room straight into the recogniser "
                         "(what it gets right at best; printed, not recorded)")
    ap.add_argument("--pre-roll", type=float, default=None,
                    help="with --ceiling: seconds kept before the command's first loud frame (default "
                         "mic.BARGE_PRE_ROLL, as over the guide; mic.PRE_ROLL is 0.5, as in a turn)")
    args = ap.parse_args()
    os.environ["VOICEGUIDE_DUCK"] = args.duck
    if args.commands == "all":
        os.environ["VOICEGUIDE_BARGE"] = "any"
    chosen = [(p, i) for p, i in COMMANDS if args.commands == "all" or p in FALLBACK_KEYWORDS]
    guide = load_guide()
    rng = np.random.default_rng(15)
    voices = {"espeak": get_engine("espeak"), "piper": PiperEngine(variation=0.0)}
    if args.ceiling:
        return ceiling(args, guide, chosen, voices)
    rows = []
    with private_pulse() as pulse:
        recognizer = get_recognizer(guide, "auto")
        rig = Rig(pulse, guide, recognizer, args.aec, args.keep)
        rig.judge = args.judge == "on"
        guide_db = level_db(render(PASSAGE, engine=get_engine("espeak"), rate=175))
        for voice in args.voices.split(","):
            commands = {p: scale(render(p, engine=voices[voice], lexicon=guide.lexicon), COMMAND_GAIN)
                        for p, _ in chosen}
            for echo_db in [float(e) for e in args.echo.split(",")]:
                for room in args.rooms.split(","):
                    r = run_condition(rig, commands, voice, echo_db, room, args.trials, args.quiet_seconds,
                                      guide_db, rng, args.tries)
                    lat = r["latencies"]
                    row = (voice, echo_db, room, r["acted"], r["trials"],
                           statistics.median(lat) * 1000 if lat else float("nan"),
                           max(lat) * 1000 if lat else float("nan"),
                           r["false"], r["speech_seconds"], r["misses"], r.get("false_texts", []),
                           r.get("false_ducks", 0), len(r["early"]), r["warm_acted"], r["warm_trials"],
                           r["verdicts"])
                    rows.append(row)
                    print(f"{voice:6} echo {echo_db:+.0f} dB {room:6}: acted {r['acted']}/{r['trials']} "
                          f"({r['warm_acted']}/{r['warm_trials']} after the warm-up; then {r['verdicts']}), "
                          f"silence after {row[5]:.0f} ms median ({row[6]:.0f} worst), false {r['false']} in "
                          f"{r['speech_seconds']:.0f} s, lowered {row[11]} times; said twice {r['second']}; misses {r['misses']}; false {row[10]}; "
                          f"cut before the command {r['early']}",
                          flush=True)
    mode = {"auto": "auto (mic.AEC_DEFAULT)", "pulse": "PulseAudio module-echo-cancel (webrtc)",
            "inprocess": "in-process linear canceller (voiceguide/aec.py)", "off": "none (keyword fallback)"}[args.aec]
    lines = [f"Echo cancellation: {mode}; commands: {args.commands}; lowering the guide while the listener talks: "
             f"{args.duck}; the guide's judgement before it is cut (Dialog.takes): {args.judge}. Guide: espeak-ng 175 wpm at full volume; commands 10 dB below "
             "their voice's full level; echo 50 ms late. Command placed 1.5-3.5 s into the passage. \"After the "
             f"warm-up\": commands said once the guide had talked {AEC_WARMUP:.0f} s in the session (mic.AEC_WARMUP: "
             "before that the canceller is still learning the room, the guide's first words come through it, and only "
             "the keywords may cut it; the first trial of each row, a \"pause\", falls there). \"Then\": of the commands acted "
             "on, what the guide reading the chemotherapy section does with the reading (Dialog.judge; a pause is always "
             "done): at once, asks about it (\"Faster?\"), or says it did not understand.", "",
             "| command voice | echo | room | acted on while talking | after the warm-up | then: at once / asks / not "
             "understood | end of command to silence, "
             "median (worst) | false barge-ins per 10 min of guide speech | lowered with no command, per min |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (voice, echo_db, room, acted, trials, med, worst, false, secs, _, _, ducks, early, wacted, wtrials,
         verdicts) in rows:
        then = (f"{verdicts.get('act', 0)} / {verdicts.get('confirm', 0) + verdicts.get('choose', 0)} / "
                f"{verdicts.get('miss', 0)}")
        per10 = false * 600 / secs if secs else float("nan")
        lines.append(f"| {voice} | {echo_db:+.0f} dB | {room} | {acted}/{trials} ({100 * acted / max(1, trials):.0f}%) | "
                     f"{wacted}/{wtrials} | {then} | {med:.0f} ms ({worst:.0f}) | {per10:.1f} ({false} in {secs:.0f} s"
                     f"{f'; {early} more in trials, before the command' if early else ''}) | "
                     f"{ducks * 60 / secs if secs else float('nan'):.1f} |")
    body = "\n".join(lines)
    if not args.no_record:
        label = {"auto": "echo cancelled", "pulse": "echo cancelled", "inprocess": "echo cancelled in process",
                 "off": "no echo cancellation"}[args.aec]
        record(f"Barge-in ({label}, {args.commands})", body)
    else:
        print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())

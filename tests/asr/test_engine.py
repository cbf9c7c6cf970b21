"""The faster-whisper transcriber and audio loading, on real models and real recordings."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from faster_whisper import decode_audio
from pydantic import ValidationError

from konspekt.errors import InvalidInput
from konspekt_asr.engine import (
    SAMPLE_RATE,
    WhisperTranscriber,
    as_float,
    cut_points,
    is_hallucination,
    load_audio,
    load_transcriber,
    read_wav,
)
from konspekt_asr.settings import AsrSettings
from tests.asr.conftest import WavMaker, asr_settings


def words(text: str) -> str:
    """Lower case, punctuation removed: what "contains" checks compare."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def transcribe(transcriber: WhisperTranscriber, path: Path, language: str | None = None):
    info, segments = transcriber.transcribe(load_audio(path), language)
    return info, list(segments)


def test_english_on_tiny_en(tiny_en: WhisperTranscriber, wav: WavMaker) -> None:
    info, segments = transcribe(tiny_en, wav("audio/jfk.flac"))
    text = words(" ".join(s.text for s in segments))
    assert "ask not what your country can do for you" in text
    assert info.language == "en"
    assert info.duration == pytest.approx(11.0, abs=0.1)
    assert all(s.text == s.text.strip() and s.text for s in segments)
    assert all(0 <= s.start < s.end <= info.duration + 0.5 for s in segments)
    assert [s.start for s in segments] == sorted(s.start for s in segments)


def test_batched_pipeline_keeps_sentence_timestamps(tiny_en_model: Path, wav: WavMaker) -> None:
    """Batched decoding (KONSPEKT_ASR_BATCH_SIZE > 1) gives the same kind of segments as the
    sequential path: sentence-sized with their own times, not one per 30 s VAD chunk."""
    batched = load_transcriber(asr_settings(tiny_en_model, batch_size=4))
    assert batched._batched is not None
    info, segments = transcribe(batched, wav("video/lecture_en_60s.webm"))
    text = words(" ".join(s.text for s in segments))
    assert "dublin" in text
    assert "political philosophy" in text
    assert len(segments) >= 8
    assert max(s.end - s.start for s in segments) <= 15.0
    assert all(0 <= s.start < s.end <= info.duration + 0.5 for s in segments)
    assert [s.start for s in segments] == sorted(s.start for s in segments)


def test_batch_size_one_is_sequential(tiny_en_model: Path) -> None:
    settings = asr_settings(tiny_en_model, batch_size=1, vad=False)  # no VAD needed without batching
    assert load_transcriber(settings)._batched is None


@pytest.mark.slow
def test_russian_on_base_is_detected(base: WhisperTranscriber, wav: WavMaker) -> None:
    info, segments = transcribe(base, wav("video/short_ru_6s.mov"))
    assert info.language == "ru"
    assert info.language_probability > 0.5
    assert "бригада" in words(" ".join(s.text for s in segments))


@pytest.mark.slow
def test_silence_gives_no_segments(base: WhisperTranscriber, wav: WavMaker) -> None:
    info, segments = transcribe(base, wav("bad/silence_20s.mp4"))
    assert segments == []
    assert info.speech_duration == 0.0
    assert info.duration == pytest.approx(20.0, abs=0.1)


def test_long_audio_is_cut_in_pauses() -> None:
    rng = np.random.default_rng(7)
    audio = (0.3 * rng.standard_normal(SAMPLE_RATE * 100)).astype(np.float32)  # 100 s of "speech"
    for pause in (22.0, 48.0, 75.0):  # 0.6 s pauses, one inside each search stretch
        audio[int(pause * SAMPLE_RATE) : int((pause + 0.6) * SAMPLE_RATE)] = 0.0
    cuts = cut_points(audio, 30)
    assert len(cuts) == 5 and cuts[0] == 0 and cuts[-1] == audio.size
    for cut, pause in zip(cuts[1:-1], (22.0, 48.0, 75.0), strict=True):
        assert pause <= cut / SAMPLE_RATE <= pause + 0.6
    assert all(b - a <= 30 * SAMPLE_RATE for a, b in itertools.pairwise(cuts[:-1]))
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)  # a WAV's samples, as read
    assert cut_points(pcm, 30) == cuts
    assert cut_points(audio, 0) == [0, audio.size]
    assert cut_points(audio, 90) == [0, audio.size]  # the last piece would be short: not cut
    assert cut_points(audio[: SAMPLE_RATE * 5], 30) == [0, SAMPLE_RATE * 5]


def test_a_recording_in_pieces_gives_the_words_and_times_of_a_whole(
    tiny_en_model: Path, tiny_en: WhisperTranscriber, wav: WavMaker
) -> None:
    """The 60 s lecture in pieces of about 20 s: the same words as at once, times from the start
    of the recording, not of the piece."""
    path = wav("video/lecture_en_60s.webm")
    _, whole = transcribe(tiny_en, path)
    pieces = load_transcriber(asr_settings(tiny_en_model, piece_seconds=20))
    info, segments = transcribe(pieces, path)
    assert info.duration == pytest.approx(60.0, abs=1.0)
    assert [s.start for s in segments] == sorted(s.start for s in segments)
    assert segments[-1].end > 45.0 and all(0 <= s.start < s.end <= info.duration + 0.5 for s in segments)
    said, heard = words(" ".join(s.text for s in whole)).split(), words(" ".join(s.text for s in segments))
    assert sum(w in heard.split() for w in said) >= 0.9 * len(said)
    assert "political philosophy" in heard and "dublin" in heard
    # where a phrase of the whole is said, the pieces put it at the same time
    dublin = [s.start for s in segments if "dublin" in words(s.text)]
    assert any(abs(d - s.start) < 2.0 for d in dublin for s in whole if "dublin" in words(s.text))


@pytest.mark.slow
def test_the_language_comes_from_the_first_piece_with_speech(base_model: Path, wav: WavMaker) -> None:
    """25 s of silence, then the Russian clip, in pieces of about 10 s: the silent pieces say
    nothing about the language."""
    speech = load_audio(wav("video/short_ru_6s.mov"))
    audio = np.concatenate([np.zeros(25 * SAMPLE_RATE, dtype=speech.dtype), speech])
    pieces = load_transcriber(asr_settings(base_model, piece_seconds=10))
    info, found = pieces.transcribe(audio, None)
    segments = list(found)
    assert info.language == "ru" and info.duration == pytest.approx(25 + speech.size / SAMPLE_RATE)
    assert "бригада" in words(" ".join(s.text for s in segments))
    assert all(s.start >= 24.0 for s in segments)


def test_tones_give_no_segments(tiny_en: WhisperTranscriber, wav: WavMaker) -> None:
    _, segments = transcribe(tiny_en, wav("bad/tones_only_20s.mp4"))
    assert segments == []


def test_wav_reader_and_decoder_agree(wav: WavMaker) -> None:
    path = wav("audio/jfk.flac")
    pcm = read_wav(path)
    assert pcm is not None
    assert pcm.dtype == np.int16  # kept as read: half the memory of float32
    fast = as_float(pcm)
    decoded = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    assert fast.dtype == np.float32
    assert fast.shape == decoded.shape
    assert np.abs(fast - decoded).max() < 1e-4
    assert as_float(decoded) is decoded  # float32 passes as it is
    assert np.array_equal(read_wav(path.read_bytes()), pcm)  # type: ignore[arg-type]


def test_other_formats_are_decoded_to_16k_mono(testdata: Path) -> None:
    eight_khz = testdata / "audio" / "silero_aepyx_8k.wav"
    assert read_wav(eight_khz) is None  # not our format: goes through the decoder
    audio = load_audio(eight_khz)
    assert audio.shape[0] / SAMPLE_RATE == pytest.approx(169.2, abs=0.2)
    inline = load_audio((testdata / "video" / "short_ru_6s.mov").read_bytes())
    assert inline.shape[0] / SAMPLE_RATE == pytest.approx(6.4, abs=0.1)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.mp4", "empty"),
        ("text_renamed.mp4", "cannot decode"),
        ("truncated_30pct.mp4", "cannot decode"),
        ("no_audio_10s.mp4", "no audio track"),
    ],
)
def test_undecodable_files_are_invalid_input(testdata: Path, name: str, message: str) -> None:
    path = testdata / "bad" / name
    for source in (path, path.read_bytes()):
        with pytest.raises(InvalidInput, match=message):
            load_audio(source)


def test_unknown_language_is_invalid_input(tiny_en: WhisperTranscriber, base: WhisperTranscriber) -> None:
    audio = np.zeros(SAMPLE_RATE, dtype=np.float32)
    with pytest.raises(InvalidInput, match="'xx' is not supported"):
        base.transcribe(audio, "xx")
    with pytest.raises(InvalidInput, match="English-only"):
        tiny_en.transcribe(audio, "ru")
    info, _ = base.transcribe(audio, " RU ")  # normalised, accepted
    assert info.language == "ru"


def test_empty_audio_is_invalid_input(tiny_en: WhisperTranscriber) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        tiny_en.transcribe(np.zeros(0, dtype=np.float32), None)


@pytest.mark.parametrize(
    ("text", "dropped"),
    [
        ("$%$%$%$%", True),
        ("...", True),
        ("Продолжение следует...", True),
        ("Thank you for watching!", True),
        ("Субтитры создавал DimaTorzok", True),
        ("And so my fellow Americans", False),
        ("Ну, сейчас у тебя приедет бригада.", False),
        ("Thank you for watching the demo, now the numbers.", False),
        ("4%", False),
    ],
)
def test_hallucination_filter(text: str, dropped: bool) -> None:
    assert is_hallucination(text) is dropped


def test_short_segments_the_model_doubts_are_dropped() -> None:
    def seg(text: str, no_speech: float, logprob: float) -> SimpleNamespace:
        return SimpleNamespace(start=0.0, end=1.0, text=text, no_speech_prob=no_speech, avg_logprob=logprob)

    kept = WhisperTranscriber._kept(
        [
            seg(" You", 0.92, -0.95),  # tiny.en on 20 s of tones
            seg(" Yes.", 0.05, -0.3),  # a confident short answer
            seg(" You", 0.92, -0.4),  # doubtful speech, but the words are likely
            seg(" And so my fellow Americans", 0.8, -0.9),  # longer: left to faster-whisper's rule
        ]
    )
    assert [s.text for s in kept] == ["Yes.", "You", "And so my fellow Americans"]


def test_settings_need_a_local_model_folder(tmp_path: Path, tiny_en_model: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        AsrSettings.model_validate({"model": "base"})
    with pytest.raises(ValidationError, match=r"no model\.bin"):
        AsrSettings.model_validate({"model": str(tmp_path)})
    with pytest.raises(ValidationError, match="needs vad"):
        asr_settings(tiny_en_model, batch_size=4, vad=False)
    settings = asr_settings(tiny_en_model, cpu_threads=0)
    assert settings.port == 0
    assert settings.threads >= 1
    assert settings.model_name == "whisper-tiny-en"
    assert AsrSettings.model_fields["port"].default == 50052

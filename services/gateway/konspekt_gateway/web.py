"""The web page's texts (English and Russian), picked by Accept-Language."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "konspekt",
        "tagline": "Upload a recorded meeting or lecture and get its konspekt and transcript.",
        "upload_heading": "New recording",
        "file_label": "Video or audio file",
        "language_label": "Language",
        "lang_auto": "Detect automatically",
        "lang_ru": "Russian",
        "lang_en": "English",
        "style_label": "Kind of recording",
        "style_meeting": "Meeting",
        "style_lecture": "Lecture",
        "submit": "Upload",
        "uploading": "Uploading…",
        "uploaded": "Uploaded. Processing has started.",
        "upload_failed": "Upload failed",
        "choose_file": "Choose a file first.",
        "jobs_heading": "Recordings",
        "no_jobs": "Nothing uploaded yet.",
        "col_id": "ID",
        "col_file": "File",
        "col_status": "Status",
        "col_progress": "Progress",
        "in_queue": "place in queue: {n}",
        "failed_at": "Failed at {stage}",
        "downloads": "Download",
        "delete": "Delete",
        "confirm_delete": "Delete this recording and all its files?",
        "files_expire": "Uploads and results are deleted after 24 hours.",
        "state_queued": "Waiting in the queue",
        "state_extracting_audio": "Extracting audio",
        "state_transcribing": "Transcribing speech",
        "state_summarizing": "Writing the konspekt",
        "state_rendering": "Preparing documents",
        "state_done": "Done",
        "state_failed": "Failed",
        "stage_audio": "audio extraction",
        "stage_asr": "speech recognition",
        "stage_summarizer": "summarizing",
        "stage_renderer": "document rendering",
        "file_konspekt.docx": "Konspekt (DOCX)",
        "file_konspekt.txt": "Konspekt (TXT)",
        "file_transcript.txt": "Transcript (TXT)",
        "file_transcript.srt": "Subtitles (SRT)",
        "file_transcript.vtt": "Subtitles (VTT)",
        "file_transcript.json": "Transcript (JSON)",
        "no_speech": "No speech was found in the recording.",
    },
    "ru": {
        "title": "konspekt",
        "tagline": "Загрузите запись совещания или лекции и получите конспект и расшифровку.",
        "upload_heading": "Новая запись",
        "file_label": "Видео- или аудиофайл",
        "language_label": "Язык",
        "lang_auto": "Определить автоматически",
        "lang_ru": "Русский",
        "lang_en": "Английский",
        "style_label": "Тип записи",
        "style_meeting": "Совещание",
        "style_lecture": "Лекция",
        "submit": "Загрузить",
        "uploading": "Загрузка…",
        "uploaded": "Загружено. Обработка началась.",
        "upload_failed": "Не удалось загрузить",
        "choose_file": "Сначала выберите файл.",
        "jobs_heading": "Записи",
        "no_jobs": "Пока ничего не загружено.",
        "col_id": "ID",
        "col_file": "Файл",
        "col_status": "Статус",
        "col_progress": "Ход",
        "in_queue": "место в очереди: {n}",
        "failed_at": "Ошибка на этапе «{stage}»",
        "downloads": "Скачать",
        "delete": "Удалить",
        "confirm_delete": "Удалить эту запись и все её файлы?",
        "files_expire": "Загрузки и результаты удаляются через 24 часа.",
        "state_queued": "В очереди",
        "state_extracting_audio": "Извлечение звука",
        "state_transcribing": "Распознавание речи",
        "state_summarizing": "Составление конспекта",
        "state_rendering": "Подготовка документов",
        "state_done": "Готово",
        "state_failed": "Ошибка",
        "stage_audio": "извлечение звука",
        "stage_asr": "распознавание речи",
        "stage_summarizer": "составление конспекта",
        "stage_renderer": "подготовка документов",
        "file_konspekt.docx": "Конспект (DOCX)",
        "file_konspekt.txt": "Конспект (TXT)",
        "file_transcript.txt": "Расшифровка (TXT)",
        "file_transcript.srt": "Субтитры (SRT)",
        "file_transcript.vtt": "Субтитры (VTT)",
        "file_transcript.json": "Расшифровка (JSON)",
        "no_speech": "В записи не найдено речи.",
    },
}
DEFAULT_LANGUAGE = "en"


def pick_language(accept_language: str | None, override: str | None = None) -> str:
    """The best of TEXTS' languages for an Accept-Language header (q-values respected)."""
    if override in TEXTS:
        return str(override)
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranked.append((-quality, index, tag.strip().lower().split("-")[0]))
    for negative_q, _index, lang in sorted(ranked):
        if negative_q < 0 and lang in TEXTS:
            return lang
    return DEFAULT_LANGUAGE

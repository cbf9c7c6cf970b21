"""The web page: its texts (English and Russian; job states, stage names and failure reasons
come translated in the API's JSON, see i18n), the headers every response carries (a strict
Content-Security-Policy: no inline script or style anywhere), the Swagger UI at ``/docs``
served from the gateway's own files, and links that never come from the Host header."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from konspekt_gateway.i18n import DEFAULT_LANGUAGE, pick_language

__all__ = ["DEFAULT_LANGUAGE", "SECURITY_HEADERS", "TEXTS", "install_web", "link_base", "pick_language"]

#: Swagger UI's files (swagger-ui-bundle.js, swagger-ui.css, favicon.png) as the fastapi-offline
#: package ships them; served at DOCS_ASSETS instead of being loaded from a CDN.
SWAGGER_UI_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_ASSETS = "/docs-assets"

#: Only the gateway's own files: no inline script or style (the page and /docs load theirs from
#: /static), no framing, no plug-ins, forms and fetches to this origin only. ``data:`` images are
#: Bootstrap's and Swagger UI's icons inside their CSS.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP response, and rewrites every absolute ``Location``
    onto the configured public URL, or to a bare path when there is none. The gateway never
    redirects to another site; absolute ones are built by Starlette from the request's Host
    header (the trailing-slash redirect), which anyone can set."""

    def __init__(self, app: ASGIApp, public_url: str = "") -> None:
        self.app = app
        self.public_url = public_url.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                location = headers.get("location")
                if location:
                    headers["location"] = self.location(location, scope)
            await send(message)

        await self.app(scope, receive, send_secured)

    def location(self, location: str, scope: Scope) -> str:
        parsed = urllib.parse.urlsplit(location)
        if not parsed.scheme and not parsed.netloc:
            return location
        path = parsed.path or "/"
        root = str(scope.get("root_path", "")).rstrip("/")
        if root and path.startswith(root + "/"):
            path = path[len(root) :]
        rest = path + (f"?{parsed.query}" if parsed.query else "")
        return self.public_url + rest if self.public_url else rest


def link_base(public_url: str) -> str:
    """What page links start with: the public URL when configured, else nothing (root-relative
    links such as ``/static/...``); never anything taken from the request."""
    return public_url.rstrip("/")


def install_web(app: FastAPI, public_url: str, templates: Jinja2Templates) -> None:
    """The security headers on every response, and ``/docs`` (Swagger UI from the gateway's
    own files, started by /static/docs.js: the page has no inline script)."""
    app.add_middleware(SecurityHeaders, public_url=public_url)
    app.mount(DOCS_ASSETS, StaticFiles(directory=SWAGGER_UI_DIR), name="docs-assets")
    base = link_base(public_url)

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs(request: Request) -> Response:
        return templates.TemplateResponse(
            request,
            "docs.html",
            {"base": base, "title": app.title, "openapi": base + (app.openapi_url or "/openapi.json")},
        )


TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "konspekt",
        "tagline": "Upload recorded meetings or lectures and get their konspekt and transcript.",
        "switch_language": "Language of the page",
        "upload_heading": "New recordings",
        "file_label": "Video or audio files",
        "drop_here": "Drop video or audio files here, or",
        "browse": "choose files",
        "chosen": "Chosen: {n}",
        "language_label": "Language of the recording",
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
        "not_media": "{name}: not a video or audio file",
        "too_big": "{name}: larger than the limit of {mb} MB",
        "network_error": "the connection was lost",
        "jobs_heading": "Your recordings",
        "no_jobs": "Nothing uploaded yet.",
        "uploaded_at": "Uploaded",
        "expires_at": "Files deleted",
        "in_queue": "Place in queue: {n}",
        "eta": "about {t} left",
        "failed_reason": "Failed at the stage “{stage}”: {reason}",
        "downloads": "Download",
        "delete": "Delete",
        "confirm_delete": "Delete this recording and all its files?",
        "files_expire": "Uploads and results are deleted after 24 hours.",
        "stage_pending": "waiting",
        "stage_running": "running",
        "stage_done": "done",
        "stage_failed": "failed",
        "file_konspekt.docx": "Konspekt (DOCX)",
        "file_konspekt.txt": "Konspekt (TXT)",
        "file_transcript.txt": "Transcript (TXT)",
        "file_transcript.srt": "Subtitles (SRT)",
        "file_transcript.vtt": "Subtitles (VTT)",
        "file_transcript.json": "Transcript (JSON)",
        "summary": "Summary",
        "key_points": "Key points",
        "decisions": "Decisions",
        "action_items": "Action items",
        "owner": "who",
        "unconfirmed": "unconfirmed",
        "due": "due",
        "nothing": "none",
        "seconds": "{n} s",
        "minutes": "{n} min",
        "api_hint": "Programs: the same API with a bearer token, see",
        "notes": "Notes on this konspekt: {n}",
        "file_konspekt.md": "Konspekt (Markdown)",
        "open": "Open",
        "back": "All recordings",
        "recording": "Recording",
        "konspekt": "Konspekt",
        "transcript": "Transcript",
        "search_label": "Search in the transcript",
        "search_placeholder": "Search…",
        "found": "Found: {n}",
        "not_found": "Nothing found",
        "play_from": "Play from {t}",
        "loading": "Loading…",
        "not_ready": "The transcript and the konspekt appear here when they are ready.",
        "no_speech": "No speech was found in the recording.",
        "copy_konspekt": "Copy konspekt",
        "copied": "Copied to the clipboard.",
        "copy_failed": "Could not copy.",
        "player_hint": "Every time mark plays the recording from that moment.",
        "edit": "Edit",
        "save": "Save",
        "saving": "Saving…",
        "cancel": "Cancel",
        "saved": "Saved: the documents were made again from the edited konspekt.",
        "save_failed": "Not saved",
        "title_label": "Title",
        "item_text": "Text",
        "task_label": "Task",
        "who_label": "Who",
        "due_label": "Due",
        "add_at": "Add at {t}",
        "remove": "Remove",
        "again": "Summarize again",
        "again_heading": "Write the konspekt again from the transcript",
        "again_language": "Language of the konspekt",
        "again_lang_auto": "The recording's",
        "again_instruction": "Your instruction (optional)",
        "again_placeholder": "e.g. focus on the budget",
        "again_hint": (
            "Speech is not recognised again: only the konspekt is written anew. The previous one is kept."
        ),
        "again_chars": "{n} of {max} characters",
        "again_submit": "Summarize again",
        "again_sending": "Starting…",
        "again_failed": "Not started",
        "again_running": "Summarizing again: {message}",
    },
    "ru": {
        "title": "konspekt",
        "tagline": "Загрузите записи совещаний или лекций и получите конспект и расшифровку.",
        "switch_language": "Язык страницы",
        "upload_heading": "Новые записи",
        "file_label": "Видео- или аудиофайлы",
        "drop_here": "Перетащите сюда видео- или аудиофайлы или",
        "browse": "выберите файлы",
        "chosen": "Выбрано: {n}",
        "language_label": "Язык записи",
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
        "not_media": "{name}: это не видео- и не аудиофайл",
        "too_big": "{name}: больше допустимых {mb} МБ",
        "network_error": "соединение прервалось",
        "jobs_heading": "Ваши записи",
        "no_jobs": "Пока ничего не загружено.",
        "uploaded_at": "Загружено",
        "expires_at": "Файлы будут удалены",
        "in_queue": "Место в очереди: {n}",
        "eta": "осталось около {t}",
        "failed_reason": "Ошибка на этапе «{stage}»: {reason}",
        "downloads": "Скачать",
        "delete": "Удалить",
        "confirm_delete": "Удалить эту запись и все её файлы?",
        "files_expire": "Загрузки и результаты удаляются через 24 часа.",
        "stage_pending": "ожидает",
        "stage_running": "идёт",
        "stage_done": "готово",
        "stage_failed": "ошибка",
        "file_konspekt.docx": "Конспект (DOCX)",
        "file_konspekt.txt": "Конспект (TXT)",
        "file_transcript.txt": "Расшифровка (TXT)",
        "file_transcript.srt": "Субтитры (SRT)",
        "file_transcript.vtt": "Субтитры (VTT)",
        "file_transcript.json": "Расшифровка (JSON)",
        "summary": "Кратко",
        "key_points": "Главное",
        "decisions": "Решения",
        "action_items": "Задачи",
        "owner": "кто",
        "unconfirmed": "не подтверждён",
        "due": "срок",
        "nothing": "нет",
        "seconds": "{n} с",
        "minutes": "{n} мин",
        "api_hint": "Для программ: тот же API с токеном (Bearer), см.",
        "notes": "Замечания к конспекту: {n}",
        "file_konspekt.md": "Конспект (Markdown)",
        "open": "Открыть",
        "back": "Все записи",
        "recording": "Запись",
        "konspekt": "Конспект",
        "transcript": "Расшифровка",
        "search_label": "Поиск по расшифровке",
        "search_placeholder": "Поиск…",
        "found": "Найдено: {n}",
        "not_found": "Ничего не найдено",
        "play_from": "Воспроизвести с {t}",
        "loading": "Загрузка…",
        "not_ready": "Расшифровка и конспект появятся здесь, когда будут готовы.",
        "no_speech": "В записи не найдено речи.",
        "copy_konspekt": "Скопировать конспект",
        "copied": "Скопировано в буфер обмена.",
        "copy_failed": "Не удалось скопировать.",
        "player_hint": "Каждая отметка времени воспроизводит запись с этого места.",
        "edit": "Исправить",
        "save": "Сохранить",
        "saving": "Сохранение…",
        "cancel": "Отмена",
        "saved": "Сохранено: документы собраны заново из исправленного конспекта.",
        "save_failed": "Не сохранено",
        "title_label": "Заголовок",
        "item_text": "Текст",
        "task_label": "Задача",
        "who_label": "Кто",
        "due_label": "Срок",
        "add_at": "Добавить на {t}",
        "remove": "Удалить",
        "again": "Составить заново",
        "again_heading": "Составить конспект заново по расшифровке",
        "again_language": "Язык конспекта",
        "again_lang_auto": "Как в записи",
        "again_instruction": "Ваше пожелание (необязательно)",
        "again_placeholder": "например: подробнее о бюджете",
        "again_hint": "Речь заново не распознаётся: пишется только новый конспект. Прежний сохраняется.",
        "again_chars": "{n} из {max} символов",
        "again_submit": "Составить заново",
        "again_sending": "Запускаем…",
        "again_failed": "Не запущено",
        "again_running": "Конспект составляется заново: {message}",
    },
}

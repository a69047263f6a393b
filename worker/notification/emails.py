"""The emails a finished job sends: "your transcript is ready", "no speech detected" and "we could not
transcribe it".

Pure functions of the job and a few strings, so they are easy to read and to test; the worker does the
AWS calls (the preview read, SES). Beside them: the links the email carries (hark.domain.links: signed API
links, not presigned S3 URLs, so they last as long as they say) and who receives it (worker.notification.recipients).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from hark.domain import links as signed_links
from hark.domain.jobs import Job
from hark.domain.keys import TRANSCRIPT_FORMATS
from hark.domain.languages import NAMES
from worker.notification import recipients

FORMAT_LABELS = {
    "txt": "Plain text (.txt)",
    "json": "JSON with word timings (.json)",
    "srt": "Subtitles (.srt)",
    "vtt": "Web subtitles (.vtt)",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def display_name(filename: str, limit: int = 80) -> str:
    """The filename as it may appear in a header: no control characters, not too long."""
    name = _CONTROL.sub(" ", filename).strip() or "your recording"
    return name if len(name) <= limit else name[: limit - 3] + "..."


def language_name(code: str | None) -> str:
    if not code:
        return "unknown"
    return f"{NAMES[code].title()} ({code})" if code in NAMES else code


def language_line(job: Job) -> str:
    """The spoken language, and that the text is English when the job asked for a translation (the job's
    language stays the spoken one)."""
    spoken = language_name(job.detected_language)
    return f"{spoken}, translated to English" if job.task == "translate" else spoken


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def preview_of(text: str, limit: int) -> str:
    """About `limit` characters of the transcript, cut at a word, one paragraph."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0] if " " in flat[:limit] else flat[:limit]
    return cut.rstrip(" ,.;:") + " ..."


def _cte(body: str) -> str:
    """7bit keeps links readable in a raw .eml; quoted-printable when the part has non-ASCII text (SES
    asks for 7-bit-safe parts) or a line too long for SMTP (990 characters)."""
    ascii_only = body.isascii()
    short = max((len(line) for line in body.splitlines()), default=0) <= 990
    return "7bit" if ascii_only and short else "quoted-printable"


def _set_parts(msg: EmailMessage, text: str, html_body: str) -> None:
    msg.set_content(text, cte=_cte(text))
    msg.add_alternative(html_body, subtype="html", cte=_cte(html_body))


def link_hours(ttl_seconds: int) -> str:
    hours = ttl_seconds / 3600
    return f"{hours:g} hours" if hours >= 1 else f"{ttl_seconds // 60} minutes"


@dataclass(frozen=True)
class Links:
    by_format: dict[str, str]  # fmt -> {api_url}/links/{token}
    ttl_seconds: int
    web_url: str


def email_links(
    job: Job, *, api_url: str, ttl_seconds: int, key: bytes, web_url: str, now: float | None = None
) -> Links:
    """One signed link per format, each valid ttl_seconds from `now`: they carry no AWS credential, so
    nothing but their own expiry ends them (the API mints the S3 URL when one is followed)."""
    return Links(
        by_format={
            fmt: signed_links.link_url(api_url, signed_links.issue(job.job_id, job.user_id, fmt, ttl_seconds, key, now))
            for fmt in TRANSCRIPT_FORMATS
        },
        ttl_seconds=ttl_seconds,
        web_url=web_url,
    )


def with_recipient(job: Job) -> Job:
    """The job with the address its email goes to: the token's when the job has one, else the user's
    primary address in Clerk. Raises recipients.NoRecipient (permanent) or recipients.LookupFailed
    (transient: retry)."""
    if job.email:
        return job
    return job.model_copy(update={"email": recipients.clerk_email(job.user_id)})


def _envelope(sender: str, recipient: str, subject: str, job: Job) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Hark <{sender}>"
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(idstring=job.job_id, domain=sender.rpartition("@")[2] or "hark.local")
    # Lets a support person find the job from a forwarded email; auto-replies stay away.
    msg["X-Hark-Job-Id"] = job.job_id
    msg["Auto-Submitted"] = "auto-generated"
    return msg


def completed_email(job: Job, *, sender: str, links: Links, preview: str | None) -> EmailMessage:
    name = display_name(job.filename)
    msg = _envelope(sender, job.email or "", f'Your transcript of "{name}" is ready', job)
    language = language_line(job)
    duration = human_duration(job.duration_seconds)
    valid = link_hours(links.ttl_seconds)
    main = links.by_format["txt"]
    others = [(fmt, url) for fmt, url in links.by_format.items() if fmt != "txt"]

    lines = [
        "Hello,",
        "",
        f'Your transcript of "{name}" is ready.',
        "",
        f"Language: {language}",
        f"Duration: {duration}",
        "",
        f"Download the transcript (link valid for {valid}):",
        main,
        "",
    ]
    if preview:
        lines += ["Preview:", f"  {preview}", ""]
    if others:
        lines.append("Other formats:")
        for fmt, url in others:
            lines += [f"- {FORMAT_LABELS.get(fmt, fmt)}:", f"  {url}"]
        lines.append("")
    lines += [
        f"When the links expire, open Hark to download it again: {links.web_url}",
        "",
        "-- Hark",
    ]
    text = "\n".join(lines) + "\n"

    e = html.escape
    other_items = "".join(f'<li><a href="{e(url)}">{e(FORMAT_LABELS.get(fmt, fmt))}</a></li>' for fmt, url in others)
    preview_html = (
        f'<p><strong>Preview</strong></p><blockquote style="color:#444;border-left:3px solid #ccc;'
        f'margin:0;padding-left:12px">{e(preview)}</blockquote>'
        if preview
        else ""
    )
    _set_parts(
        msg,
        text,
        f"""<!doctype html>
<html><body style="font-family:sans-serif;line-height:1.5;max-width:600px">
<p>Hello,</p>
<p>Your transcript of <strong>{e(name)}</strong> is ready.</p>
<table><tr><td>Language</td><td>{e(language)}</td></tr><tr><td>Duration</td><td>{e(duration)}</td></tr></table>
<p><a href="{e(main)}" style="font-weight:bold">Download the transcript</a> (link valid for {e(valid)})</p>
{preview_html}
{f"<p>Other formats:</p><ul>{other_items}</ul>" if others else ""}
<p>When the links expire, <a href="{e(links.web_url)}">open Hark</a> to download it again.</p>
<p>-- Hark</p>
</body></html>
""",
    )
    return msg


def failed_email(job: Job, *, sender: str, web_url: str) -> EmailMessage:
    name = display_name(job.filename)
    reason = (job.error or "the transcription failed for an unknown reason").strip()
    msg = _envelope(sender, job.email or "", f'We could not transcribe "{name}"', job)
    lines = [
        "Hello,",
        "",
        f'We could not transcribe "{name}".',
        "",
        f"Reason: {reason}",
        "",
        "What you can do:",
        "- Check that the file plays and contains speech.",
        "- Upload it again in a common format (MP3, M4A, WAV, FLAC or OGG), or convert it first.",
        "- Very long recordings can be split into parts of a few hours.",
        "",
        f"Upload again: {web_url}",
        f"If it keeps failing, contact support with this job id: {job.job_id}",
        "",
        "-- Hark",
    ]
    text = "\n".join(lines) + "\n"
    e = html.escape
    _set_parts(
        msg,
        text,
        f"""<!doctype html>
<html><body style="font-family:sans-serif;line-height:1.5;max-width:600px">
<p>Hello,</p>
<p>We could not transcribe <strong>{e(name)}</strong>.</p>
<p><strong>Reason:</strong> {e(reason)}</p>
<p>What you can do:</p>
<ul><li>Check that the file plays and contains speech.</li>
<li>Upload it again in a common format (MP3, M4A, WAV, FLAC or OGG), or convert it first.</li>
<li>Very long recordings can be split into parts of a few hours.</li></ul>
<p><a href="{e(web_url)}">Upload again</a>. If it keeps failing, contact support with this job id: <code>{e(job.job_id)}</code></p>
<p>-- Hark</p>
</body></html>
""",
    )
    return msg


def no_speech_email(job: Job, *, sender: str, web_url: str) -> EmailMessage:
    """A COMPLETED job in which no speech was detected: said plainly, no empty transcript offered, no
    language claimed (issue 10)."""
    name = display_name(job.filename)
    duration = human_duration(job.duration_seconds)
    msg = _envelope(sender, job.email or "", f'No speech detected in "{name}"', job)
    lines = [
        "Hello,",
        "",
        f'We listened to all of "{name}" ({duration}) and detected no speech in it: it seems to hold only',
        "silence, noise or music, so there is nothing to transcribe.",
        "",
        "If it does contain speech:",
        "- Check that the file plays and that the voice is audible (not muted or very quiet).",
        "- Upload it again, or another copy of the recording.",
        "",
        f"Open Hark: {web_url}",
        f"If you need help, contact support with this job id: {job.job_id}",
        "",
        "-- Hark",
    ]
    text = "\n".join(lines) + "\n"
    e = html.escape
    _set_parts(
        msg,
        text,
        f"""<!doctype html>
<html><body style="font-family:sans-serif;line-height:1.5;max-width:600px">
<p>Hello,</p>
<p>We listened to all of <strong>{e(name)}</strong> ({e(duration)}) and <strong>detected no speech</strong> in it:
it seems to hold only silence, noise or music, so there is nothing to transcribe.</p>
<p>If it does contain speech:</p>
<ul><li>Check that the file plays and that the voice is audible (not muted or very quiet).</li>
<li>Upload it again, or another copy of the recording.</li></ul>
<p><a href="{e(web_url)}">Open Hark</a>. If you need help, contact support with this job id: <code>{e(job.job_id)}</code></p>
<p>-- Hark</p>
</body></html>
""",
    )
    return msg

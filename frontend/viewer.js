// The transcript viewer: a modal dialog with segments, timestamps, language, duration, copy.

import { api, linkExpiry } from "./api.js";
import { clock, el, formatDuration, languageName } from "./ui.js";

const $ = (id) => document.getElementById(id);
const dialog = $("viewer");
let current = null; // {jobId, text, segments, speakers (labels in order of appearance), names}
let opener = null;

$("viewer-close").addEventListener("click", () => dialog.close());
dialog.addEventListener("close", () => {
  current = null;
  opener?.focus?.();
});
// Click on the backdrop closes it.
dialog.addEventListener("click", (e) => { if (e.target === dialog) dialog.close(); });

$("copy-text").addEventListener("click", async () => {
  if (!current) return;
  const status = $("copy-status");
  try {
    await navigator.clipboard.writeText(current.text);
    status.textContent = "Copied to the clipboard.";
  } catch {
    // Clipboard API needs a secure context or permission: fall back to a selection copy.
    const area = el("textarea", { className: "sr-only", readOnly: true }, current.text);
    dialog.append(area);
    area.select();
    const ok = document.execCommand?.("copy");
    area.remove();
    status.textContent = ok ? "Copied to the clipboard." : "Copy failed: select the text and copy it yourself.";
  }
  setTimeout(() => { status.textContent = ""; }, 4000);
});

// Captions in another style: the API re-renders them from the JSON and answers a short-lived link.
$("caption-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!current) return;
  const form = e.currentTarget;
  const format = e.submitter?.value || "srt";
  const chars = $("caption-chars"), lines = $("caption-lines");
  $("viewer-error").textContent = "";
  for (const input of [chars, lines]) {
    if (!input.checkValidity()) {
      $("viewer-error").textContent =
        `${input.labels[0].textContent.trim()}: a whole number from ${input.min} to ${input.max}.`;
      input.focus();
      return;
    }
  }
  const jobId = current.jobId;
  const query = new URLSearchParams({ format, chars_per_line: chars.value, lines_per_cue: lines.value });
  form.setAttribute("aria-busy", "true");
  try {
    const link = await api(`/jobs/${encodeURIComponent(jobId)}/transcript?${query}`);
    if (current?.jobId !== jobId) return;
    const label = `${format.toUpperCase()} ${chars.value}×${lines.value}`;
    $("caption-links").replaceChildren(el("a", { href: link.url, className: "dl", target: "_blank", rel: "noopener",
      "data-format": format, "aria-label": `Download ${label} captions` }, label));
    $("caption-links").querySelector("a").focus();
  } catch (err) {
    $("viewer-error").textContent = err.message;
  } finally {
    form.removeAttribute("aria-busy");
  }
});

const FLAG_TEXT = {
  repetition: "possible repetition loop",
  low_confidence: "low confidence",
  no_speech: "possibly no speech here",
};

// -- speakers (issue 14): a colour per speaker, and names a user gives them. The names live in this
// browser's localStorage (per job): they change neither the stored transcript nor the downloads.
const SPEAKER_COLOURS = 10; // .spk-0 ... .spk-9 in style.css
const namesKey = (jobId) => `hark.speakers.${jobId}`;

function loadNames(jobId) {
  try {
    return JSON.parse(localStorage.getItem(namesKey(jobId)) || "{}");
  } catch {
    return {};
  }
}

function saveNames(jobId, names) {
  try {
    localStorage.setItem(namesKey(jobId), JSON.stringify(names));
  } catch { /* storage full or blocked: the names last until the viewer closes */ }
}

/** Runs of words by one speaker inside a segment (a Whisper segment can span a change of speaker). */
function turnsOf(s) {
  const words = (s.words || []).filter((w) => w.word.trim());
  if (!words.length || !words.some((w) => w.speaker)) return [{ speaker: s.speaker, start: s.start, text: s.text.trim() }];
  const turns = [];
  for (const w of words) {
    const last = turns[turns.length - 1];
    if (last && last.speaker === w.speaker) last.text += w.word;
    else turns.push({ speaker: w.speaker, start: w.start, text: w.word });
  }
  return turns.map((t) => ({ ...t, text: t.text.trim() }));
}

function speakerChip(speaker) {
  const index = current.speakers.indexOf(speaker) % SPEAKER_COLOURS;
  return el("span", { className: `spk spk-${index}`, "data-speaker": speaker }, current.names[speaker] || speaker);
}

function renderSpeakerNames() {
  const form = $("viewer-speakers");
  form.querySelectorAll("label").forEach((l) => l.remove());
  form.hidden = !current.speakers.length;
  for (const speaker of current.speakers) {
    const index = current.speakers.indexOf(speaker) % SPEAKER_COLOURS;
    const input = el("input", { type: "text", maxLength: 40, value: current.names[speaker] || "", placeholder: speaker,
      "data-speaker": speaker, "aria-label": `Name for speaker ${speaker}` });
    input.addEventListener("input", () => {
      const name = input.value.trim();
      if (name) current.names[speaker] = name;
      else delete current.names[speaker];
      saveNames(current.jobId, current.names);
      document.querySelectorAll(`#segments .spk[data-speaker="${speaker}"]`).forEach((chip) => {
        chip.textContent = name || speaker;
      });
      current.text = plainText(current.segments);
    });
    form.append(el("label", { className: `spk-name spk-${index}` }, el("span", { className: "spk-swatch" }), input));
  }
}

/** The text the Copy button copies: with speakers, one "Name: ..." line per turn. */
function plainText(segments) {
  if (!current.speakers.length) return segments.map((s) => s.text.trim()).filter(Boolean).join(" ");
  const lines = [];
  for (const t of segments.flatMap(turnsOf)) {
    const name = current.names[t.speaker] || t.speaker;
    const last = lines[lines.length - 1];
    if (last && last.speaker === t.speaker) last.text += ` ${t.text}`;
    else lines.push({ speaker: t.speaker, name, text: t.text });
  }
  return lines.map((l) => `${l.name}: ${l.text}`).join("\n");
}

function segmentItem(s, language) {
  const flags = s.flags || [];
  const text = el("p", {}, ...(current.speakers.length
    ? turnsOf(s).flatMap((t, i) => [i ? " " : null, speakerChip(t.speaker), " ", t.text])
    : [s.text.trim()]));
  if (s.language && s.language !== language) {
    text.append(el("span", { className: "lang", title: languageName(s.language) }, s.language));
  }
  if (flags.length) {
    const why = flags.map((f) => FLAG_TEXT[f] || f).join(", ");
    text.append(el("span", { className: "flag", title: why }, `Doubtful: ${why}`));
  }
  return el("li", { className: flags.length ? "segment doubtful" : "segment", "data-flags": flags.join(" ") },
    el("time", { className: "ts", title: `${Number(s.start).toFixed(2)}–${Number(s.end).toFixed(2)} s` },
      clock(s.start)),
    text);
}

function languageLabel(transcript, fresh) {
  const name = languageName(transcript.language || fresh.detected_language);
  const share = transcript.language_share;
  return share != null && share < 1 ? `${name} (${Math.round(share * 100)}% of the speech)` : name;
}

async function fetchTranscript(job, refreshJob) {
  let url = job.transcript?.json;
  const expiry = url && linkExpiry(url);
  if (!url || (expiry && expiry - Date.now() < 15000)) {
    job = await refreshJob(job.job_id); // presigned links are short-lived: get fresh ones
    url = job.transcript?.json;
  }
  if (!url) throw new Error("This job has no transcript.");
  let r;
  try {
    r = await fetch(url);
  } catch {
    r = null;
  }
  if (!r || r.status === 403) {
    // Expired or refused: one retry with fresh links.
    job = await refreshJob(job.job_id);
    r = await fetch(job.transcript.json);
  }
  if (!r.ok) throw new Error(`Could not download the transcript (HTTP ${r.status}).`);
  return { job, transcript: await r.json() };
}

function meta(label, value) {
  return value ? [el("div", {}, el("dt", {}, label), el("dd", {}, value))] : [];
}

function downloadLinks(job) {
  return ["txt", "json", "srt", "vtt"].filter((f) => job.transcript?.[f]).map((f) =>
    el("a", { href: job.transcript[f], className: "dl", target: "_blank", rel: "noopener", "data-format": f,
      "aria-label": `Download ${f.toUpperCase()}` }, f.toUpperCase()));
}

/** Open the viewer for a COMPLETED job; refreshJob(id) -> a fresh JobView (new presigned links). */
export async function openViewer(job, refreshJob) {
  opener = document.activeElement;
  current = { jobId: job.job_id, text: "", segments: [], speakers: [], names: loadNames(job.job_id) };
  $("viewer-title").textContent = job.filename;
  $("viewer-error").textContent = "";
  $("copy-status").textContent = "";
  $("caption-links").replaceChildren();
  $("viewer-meta").replaceChildren();
  $("viewer-speakers").hidden = true;
  $("viewer-downloads").replaceChildren();
  $("segments").replaceChildren(el("li", { className: "muted loading" }, "Loading transcript…"));
  $("segments").setAttribute("aria-busy", "true");
  $("copy-text").disabled = true;
  if (!dialog.open) dialog.showModal();

  const jobId = job.job_id;
  try {
    const { job: fresh, transcript } = await fetchTranscript(job, refreshJob);
    if (current?.jobId !== jobId) return; // closed or replaced meanwhile
    const segments = transcript.segments || [];
    current.segments = segments;
    current.speakers = [...new Set(segments.flatMap((s) => turnsOf(s).map((t) => t.speaker)).filter(Boolean))];
    current.text = current.speakers.length
      ? plainText(segments)
      : (transcript.text ?? segments.map((s) => s.text.trim()).join(" ")).trim();
    renderSpeakerNames();
    const doubtful = segments.filter((s) => s.flags?.length).length;
    $("viewer-meta").replaceChildren(
      ...meta("Language", languageLabel(transcript, fresh)),
      ...meta("Duration", formatDuration(transcript.duration ?? fresh.duration_seconds)),
      ...meta("Model", transcript.model),
      ...meta("Doubtful", doubtful ? `${doubtful} of ${segments.length} segments` : ""),
      ...meta("Speakers", current.speakers.length ? String(current.speakers.length) : ""),
    );
    $("viewer-downloads").replaceChildren(el("span", { className: "muted" }, "Download:"), ...downloadLinks(fresh));
    $("segments").replaceChildren(...(segments.length
      ? segments.map((s) => segmentItem(s, transcript.language))
      : [el("li", { className: "muted" }, "No speech was found in this recording.")]));
    $("copy-text").disabled = !current.text;
  } catch (e) {
    if (current?.jobId !== jobId) return;
    $("segments").replaceChildren();
    $("viewer-error").textContent = e.message;
  } finally {
    $("segments").removeAttribute("aria-busy");
  }
}

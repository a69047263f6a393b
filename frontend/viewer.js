// The transcript viewer: a modal dialog with segments, timestamps, language, duration, copy; the recording
// plays from a short-lived link (GET /jobs/{id}/audio), a segment seeks the player (click, or Enter/Space
// when focused), the segment being played is highlighted, and `/` focuses a search of the transcript.
// Corrections (issue 26): Edit makes every sentence editable; Save sends the changed segments and the speaker
// names as the transcript's next revision (PUT /jobs/{id}/transcript), and every download then serves it.

import { api } from "./api.js";
import { clock, el, formatDuration, languageName } from "./ui.js";

const $ = (id) => document.getElementById(id);
const dialog = $("viewer");
// {jobId, revision, text, segments, speakers (labels in order of appearance), names, savedNames}
let current = null;
let opener = null;

const audio = $("viewer-audio");
const search = $("transcript-search");

$("viewer-close").addEventListener("click", () => dialog.close());
dialog.addEventListener("close", () => {
  current = null;
  audio.pause();
  audio.removeAttribute("src");
  audio.load();
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

// -- speakers (issue 14): a colour per speaker, and names a user gives them. Saved names come with the
// transcript (speaker_names); a name typed and not yet saved waits in this browser's localStorage (per job).
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

function forgetNames(jobId) {
  try {
    localStorage.removeItem(namesKey(jobId));
  } catch { /* blocked: nothing was kept */ }
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

// A segment is up to 30 s of speech: it is shown as its sentences (from its word timestamps: a line ends at
// sentence punctuation or a pause), each one a place to play from.
const SENTENCE_END = /[.?!…。？！]["'»”)]*$/u;
const PAUSE_SECONDS = 0.8;

function lines(s) {
  const words = s.words || [];
  if (!words.length) return [{ start: s.start, end: s.end, text: s.text.trim(), speaker: s.speaker }];
  const out = [];
  let current = [];
  words.forEach((w, i) => {
    current.push(w);
    const next = words[i + 1];
    // A change of speaker (speaker labels) ends a line too.
    if (!next || SENTENCE_END.test(w.word.trim()) || next.start - w.end > PAUSE_SECONDS || next.speaker !== w.speaker) {
      out.push({ start: current[0].start, end: current.at(-1).end, text: current.map((c) => c.word).join("").trim(),
        speaker: current[0].speaker ?? s.speaker });
      current = [];
    }
  });
  return out;
}

function lineItem(line) {
  return el("span", { className: "line", tabindex: 0, "data-start": line.start, "data-end": line.end,
    "aria-label": `${clock(line.start)}: ${line.text}` }, line.text);
}

// -- Corrections --------------------------------------------------------------------------------------
const editButton = $("edit-transcript"), saveButton = $("save-transcript");
const editing = () => editButton.getAttribute("aria-pressed") === "true";

function setEditing(on) {
  editButton.setAttribute("aria-pressed", String(on));
  editButton.textContent = on ? "Stop editing" : "Edit";
  for (const line of allLines()) {
    if (on) line.setAttribute("contenteditable", "plaintext-only");
    else line.removeAttribute("contenteditable");
  }
}
editButton.addEventListener("click", () => setEditing(!editing()));

/** {index: text} of the segments whose sentences were changed on the page. */
function changedSegments() {
  const changed = {};
  $("segments").querySelectorAll("li.segment").forEach((item) => {
    const index = Number(item.dataset.index);
    const text = [...item.querySelectorAll(".line")].map((l) => l.textContent.trim()).filter(Boolean).join(" ");
    if (text !== item.dataset.text) changed[index] = text; // as rendered: an untouched segment keeps its timings
  });
  return changed;
}

/** The names that differ from the saved ones (null removes a saved name). */
function changedNames() {
  const changed = {};
  for (const speaker of current.speakers) {
    const name = current.names[speaker] || null, saved = current.savedNames[speaker] || null;
    if (name !== saved) changed[speaker] = name;
  }
  return changed;
}

saveButton.addEventListener("click", async () => {
  if (!current) return;
  const { jobId, revision } = current;
  const segments = Object.entries(changedSegments()).map(([index, text]) => ({ index: Number(index), text }));
  const speakerNames = changedNames();
  const status = $("save-status");
  $("viewer-error").textContent = "";
  if (!segments.length && !Object.keys(speakerNames).length) {
    status.textContent = "Nothing to save: no sentence or name was changed.";
    return;
  }
  saveButton.disabled = true;
  try {
    const saved = await api(`/jobs/${encodeURIComponent(jobId)}/transcript`, {
      method: "PUT", body: { revision, segments, speaker_names: speakerNames },
    });
    if (current?.jobId !== jobId) return;
    forgetNames(jobId);
    await openViewer({ job_id: jobId, filename: $("viewer-title").textContent }, reopenJob);
    $("save-status").textContent = `Saved as revision ${saved.revision}: downloads now carry it.`;
  } catch (err) {
    if (current?.jobId !== jobId) return;
    $("viewer-error").textContent = err.code === "revision_conflict"
      ? "Not saved: this transcript was corrected elsewhere (another tab, or someone else) since you opened it. "
        + "Copy your changes, close and open it again to see theirs, then make yours again."
      : `Not saved: ${err.message}`;
  } finally {
    saveButton.disabled = false;
  }
});

function segmentItem(s, language, index) {
  const flags = s.flags || [];
  const parts = lines(s);
  // With speaker labels, a coloured chip opens each run of lines by one speaker.
  const text = el("p", {}, ...parts.flatMap((line, i) => [
    ...(i ? [" "] : []),
    ...(current.speakers.length && (i === 0 || parts[i - 1].speaker !== line.speaker) ? [speakerChip(line.speaker), " "] : []),
    lineItem(line),
  ]));
  if (s.language && s.language !== language) {
    text.append(el("span", { className: "lang", title: languageName(s.language) }, s.language));
  }
  if (flags.length) {
    const why = flags.map((f) => FLAG_TEXT[f] || f).join(", ");
    text.append(el("span", { className: "flag", title: why }, `Doubtful: ${why}`));
  }
  return el("li", { className: flags.length ? "segment doubtful" : "segment", "data-flags": flags.join(" "),
    "data-index": index, "data-text": parts.map((l) => l.text).filter(Boolean).join(" ") },
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
  // The job as it is now: fresh presigned links, and the latest revision (another tab may have saved one).
  job = await refreshJob(job.job_id);
  const url = job.transcript?.json;
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

// -- Playback -------------------------------------------------------------------------------------
// The recording's link is minted per opening; an expired one (a long pause) is replaced once, at the
// same position.
let audioLink = null; // {jobId, expiresAt}

async function loadAudio(jobId) {
  const link = await api(`/jobs/${encodeURIComponent(jobId)}/audio`);
  if (current?.jobId !== jobId) return;
  audioLink = { jobId, expiresAt: Date.parse(link.expires_at) };
  audio.classList.toggle("picture", link.content_type.startsWith("video/")); // a meeting video plays with its picture
  audio.src = link.url;
}

audio.addEventListener("error", async () => {
  if (!current || !audio.getAttribute("src")) return;
  const jobId = current.jobId, at = audio.currentTime;
  if (audioLink?.jobId === jobId && audioLink.expiresAt <= Date.now()) {
    try {
      await loadAudio(jobId);
      audio.currentTime = at;
      return;
    } catch { /* said below */ }
  }
  $("viewer-error").textContent = "The recording could not be played (it may have been removed).";
});

function seek(item) {
  const start = Number(item.dataset.start);
  if (!Number.isFinite(start) || !audio.getAttribute("src")) return;
  audio.currentTime = start;
  highlight(start);
  audio.play().catch(() => { /* autoplay refused: the position is set, the user presses play */ });
}

const allLines = () => [...$("segments").querySelectorAll(".line[data-start]")];

$("segments").addEventListener("click", (e) => {
  const line = e.target.closest?.(".line[data-start]");
  if (line && !editing()) seek(line);
});
$("segments").addEventListener("keydown", (e) => {
  const line = e.target.closest?.(".line[data-start]");
  if (!line || e.target !== line || editing()) return;
  if (e.key === "Enter" || e.key === " ") {
    e.preventDefault(); // Space would scroll the list
    seek(line);
  } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    e.preventDefault();
    const all = allLines(), at = all.indexOf(line);
    all[e.key === "ArrowDown" ? at + 1 : at - 1]?.focus();
  }
});

/** Mark the sentence that `time` falls in (the last one started, until the next begins). */
function highlight(time) {
  let playing = null;
  for (const item of allLines()) {
    if (Number(item.dataset.start) <= time + 0.01) playing = item;
    else break;
  }
  if (playing && Number(playing.dataset.end) < time - 1) playing = null; // a pause between sentences
  for (const item of $("segments").querySelectorAll(".playing")) {
    if (item !== playing) { item.classList.remove("playing"); item.removeAttribute("aria-current"); }
  }
  if (playing && !playing.classList.contains("playing")) {
    playing.classList.add("playing");
    playing.setAttribute("aria-current", "true");
    playing.scrollIntoView({ block: "nearest" });
  }
}
audio.addEventListener("timeupdate", () => highlight(audio.currentTime));
audio.addEventListener("seeked", () => highlight(audio.currentTime));

// -- Search -----------------------------------------------------------------------------------------
function runSearch() {
  const query = search.value.trim().toLocaleLowerCase();
  let count = 0, first = null;
  for (const span of allLines()) {
    const text = span.textContent;
    if (!query) { span.replaceChildren(text); continue; }
    const lower = text.toLocaleLowerCase(), parts = [];
    let from = 0, at;
    while ((at = lower.indexOf(query, from)) !== -1) {
      parts.push(text.slice(from, at), el("mark", {}, text.slice(at, at + query.length)));
      from = at + query.length;
      count++;
    }
    parts.push(text.slice(from));
    span.replaceChildren(...parts);
    if (!first && parts.length > 1) first = span;
  }
  $("search-count").textContent = query ? (count === 1 ? "1 match" : `${count} matches`) : "";
  first?.scrollIntoView({ block: "nearest" });
}
search.addEventListener("input", runSearch);
search.addEventListener("keydown", (e) => {
  // Enter: play from the first segment with a match; Escape clears the search (not the dialog).
  if (e.key === "Enter") {
    e.preventDefault();
    const item = $("segments").querySelector("mark")?.closest(".line[data-start]");
    if (item) { item.focus(); seek(item); }
  } else if (e.key === "Escape" && search.value) {
    e.preventDefault();
    search.value = "";
    runSearch();
  }
});
dialog.addEventListener("keydown", (e) => {
  const typing = e.target.closest?.("input, textarea, select, [contenteditable]");
  if (e.key === "/" && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) {
    e.preventDefault();
    search.focus();
    search.select();
  }
});

let reopenJob = null; // the refreshJob the viewer was opened with: a save opens the new revision with it

/** Open the viewer for a COMPLETED job; refreshJob(id) -> a fresh JobView (new presigned links). */
export async function openViewer(job, refreshJob) {
  if (!dialog.open) opener = document.activeElement;
  reopenJob = refreshJob;
  current = { jobId: job.job_id, revision: 0, text: "", segments: [], speakers: [], names: {}, savedNames: {} };
  setEditing(false);
  $("save-status").textContent = "";
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
  search.value = "";
  $("search-count").textContent = "";
  audio.pause();
  audio.removeAttribute("src");
  audioLink = null;
  if (!dialog.open) dialog.showModal();

  const jobId = job.job_id;
  const playback = loadAudio(jobId).catch((e) => {
    if (current?.jobId === jobId) $("viewer-error").textContent = `The recording cannot be played: ${e.message}`;
  });
  try {
    const { job: fresh, transcript } = await fetchTranscript(job, refreshJob);
    if (current?.jobId !== jobId) return; // closed or replaced meanwhile
    const segments = transcript.segments || [];
    current.segments = segments;
    current.revision = fresh.transcript_revision ?? 0;
    current.savedNames = transcript.speaker_names || {};
    current.names = { ...current.savedNames, ...loadNames(jobId) };
    editButton.disabled = !segments.length;
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
      ...meta("Task", fresh.task === "translate" ? "Translated to English" : ""),
      ...meta("Prompt", fresh.prompt || ""),
      ...meta("Doubtful", doubtful ? `${doubtful} of ${segments.length} segments` : ""),
      ...meta("Speakers", current.speakers.length ? String(current.speakers.length) : ""),
    );
    $("viewer-downloads").replaceChildren(el("span", { className: "muted" }, "Download:"), ...downloadLinks(fresh));
    $("segments").replaceChildren(...(segments.length
      ? segments.map((s, i) => segmentItem(s, transcript.language, i))
      : [el("li", { className: "muted" }, "No speech was found in this recording.")]));
    $("copy-text").disabled = !current.text;
    await playback;
  } catch (e) {
    if (current?.jobId !== jobId) return;
    $("segments").replaceChildren();
    $("viewer-error").textContent = e.message;
  } finally {
    $("segments").removeAttribute("aria-busy");
  }
}

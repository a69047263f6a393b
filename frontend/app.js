// Hark web app: sign in, upload recordings, watch jobs, read transcripts. No framework, no build.

import {
  createJob, currentSession, deleteJob, devSignIn, expiryMs, getConfig, getJob, linkExpiry,
  ClerkConfigError, listJobs, loadClerk, loadConfig, resumableUploads, sameFile, setUnauthorizedHandler, signOut,
  uploadInParts, uploadToS3,
} from "./api.js";
import { clearKeys, initKeys, loadKeys } from "./keys.js";
import { cancelLive, initLive } from "./live.js";
import { openViewer } from "./viewer.js";
import { el, formatBytes, formatDuration, languageName, timeAgo } from "./ui.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 2000;
const PAGE = 20;
const ABANDONED_UPLOAD_MS = 2 * 3600 * 1000; // longer than any presigned upload lives
const FORMATS = ["txt", "json", "srt", "vtt"];
const FINISHED = new Set(["COMPLETED", "FAILED"]);
const STATUS_TEXT = {
  UPLOADING: "Uploading", QUEUED: "Queued", PROCESSING: "Transcribing", COMPLETED: "Completed", FAILED: "Failed",
};

const state = {
  jobs: new Map(), // job_id -> JobView, insertion order irrelevant: sorted on render
  uploads: new Map(), // job_id -> {progress: 0..1, error: string|null} while the browser sends the file
  cursor: null, // next_cursor of the last page loaded
  pollTimer: null,
  expiryTimer: null,
  clerk: null, // the loaded Clerk object, when this deployment signs in with Clerk
  clerkUserId: null, // the Clerk user the page shows, to act only on real sign-in/out changes
};

// -- Status messages ----------------------------------------------------------------------------

function announce(text) {
  const a = $("announcer");
  a.textContent = "";
  setTimeout(() => { a.textContent = text; }, 50);
}

function showNotice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

// -- Sign in / out ------------------------------------------------------------------------------

function showSignedIn(session) {
  if (state.clerk) state.clerk.unmountSignIn($("clerk-signin"));
  $("signin").hidden = true;
  $("app").hidden = false;
  $("session").hidden = false;
  $("session-email").textContent = session?.email || "you";
  clearTimeout(state.expiryTimer);
  const expires = expiryMs(session?.expires_at);
  if (expires) {
    const ms = expires - Date.now();
    if (ms > 0 && ms < 2 ** 31) state.expiryTimer = setTimeout(() => endSession("Your session expired. Please sign in again."), ms);
  }
  refresh();
  loadKeys();
}

function showSignedOut(message = "") {
  clearTimeout(state.pollTimer);
  clearTimeout(state.expiryTimer);
  state.jobs.clear();
  state.uploads.clear();
  state.cursor = null;
  $("jobs").replaceChildren();
  $("upload-errors").replaceChildren();
  clearKeys();
  cancelLive();
  $("app").hidden = true;
  $("session").hidden = true;
  $("signin").hidden = false;
  if ($("viewer").open) $("viewer").close();
  showNotice(message);
  if (message) announce(message);
  if (getConfig().devAuth) {
    $("signin-email").focus();
  } else if (state.clerk) {
    $("signin-help").textContent = "Sign in with your Hark account.";
    $("signin-form").hidden = true;
    $("clerk-signin").hidden = false;
    state.clerk.unmountSignIn($("clerk-signin")); // never two components in one element
    state.clerk.mountSignIn($("clerk-signin"));
  } else {
    $("signin-form").hidden = true; // Clerk is still loading, or could not load (the notice says why)
  }
}

async function endSession(message) {
  if ($("app").hidden) return; // already signed out: one message is enough
  state.clerkUserId = null; // Clerk's own sign-out event is then no news: this view is shown here
  await signOut();
  showSignedOut(message);
}

function clerkSession(user) {
  return { email: user.primaryEmailAddress?.emailAddress || user.username || null };
}

/** Clerk's state changed (sign-in completed in its component, sign-out in another tab, session ended). */
function onClerkChange({ user }) {
  const id = user?.id ?? null;
  if (id === state.clerkUserId) return;
  state.clerkUserId = id;
  if (user) {
    showNotice("");
    const session = clerkSession(user);
    showSignedIn(session);
    announce(`Signed in as ${session.email || "you"}`);
  } else {
    showSignedOut("You have been signed out.");
  }
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("signin-email");
  const err = $("signin-error");
  err.textContent = "";
  input.removeAttribute("aria-invalid");
  if (!input.checkValidity() || !input.value.trim()) {
    err.textContent = "Enter an email address, like you@example.com.";
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  const button = event.submitter;
  if (button) button.disabled = true;
  try {
    const session = await devSignIn(input.value.trim());
    showNotice("");
    showSignedIn(session);
    announce(`Signed in as ${session.email}`);
  } catch (e) {
    err.textContent = e.message;
    input.setAttribute("aria-invalid", "true");
  } finally {
    if (button) button.disabled = false;
  }
});

$("sign-out").addEventListener("click", () => endSession("You have signed out."));

// -- Uploads ------------------------------------------------------------------------------------

function uploadProblem(file, message) {
  const li = el("li", { className: "alert" },
    el("span", {}, el("strong", {}, file.name), `: ${message}`),
    el("button", { type: "button", className: "btn btn-quiet btn-small", "aria-label": `Dismiss message about ${file.name}`,
      onclick: () => li.remove() }, "Dismiss"));
  $("upload-errors").append(li);
  announce(`${file.name}: ${message}`);
}

// Speaker labels: the switch, and how many people speak (empty: estimated). The count only with the switch.
// One speaker per channel (multichannel) names the speakers itself: the two switches exclude each other.
$("speaker-labels").addEventListener("change", (e) => {
  $("speakers-expected").disabled = !e.target.checked;
  if (e.target.checked) $("multichannel").checked = false;
});
$("multichannel").addEventListener("change", (e) => {
  if (!e.target.checked) return;
  $("speaker-labels").checked = false;
  $("speakers-expected").disabled = true;
});

function speakerOptions() {
  if ($("multichannel").checked) return { multichannel: true };
  if (!$("speaker-labels").checked) return {};
  const n = $("speakers-expected");
  if (!n.value) return { speaker_labels: true };
  if (!n.checkValidity()) return null; // the upload says why instead of guessing
  return { speaker_labels: true, speakers_expected: Number(n.value) };
}

/** The live stream's settings, from the same form: the spoken language and the names and terms. */
function liveOptions() {
  const language = $("language").value.trim();
  const prompt = $("prompt").value.trim();
  return { ...(language ? { language } : {}), ...(prompt ? { prompt } : {}) };
}

/** Creates the job and sends the file: true once S3 has it (a problem is shown on the page). */
async function uploadFile(file) {
  const language = $("language").value.trim() || "auto";
  const prompt = $("prompt").value.trim();
  const task = $("translate").checked ? "translate" : "transcribe";
  const speakers = speakerOptions();
  if (!speakers) {
    const n = $("speakers-expected");
    uploadProblem(file, `How many people speak: a whole number from ${n.min} to ${n.max}, or empty to estimate it.`);
    return false;
  }
  let created;
  try {
    created = await createJob(file, { language, task, ...(prompt ? { prompt } : {}), ...speakers });
  } catch (e) {
    if (e.status !== 401) uploadProblem(file, e.message);
    return false;
  }
  const { job, upload, multipart } = created;
  state.jobs.set(job.job_id, job);
  return sendFile(job, file, multipart ? (show) => uploadInParts(job.job_id, file, show, multipart)
    : (show) => uploadToS3(upload, file, show));
}

/** A file over the server's threshold goes in parts (resumable: a reload asks for the file again and
 * sends only the parts S3 lacks), any other with the presigned POST. True once it is sent. */
async function sendFile(job, file, send) {
  state.uploads.set(job.job_id, { progress: 0, error: null });
  render();
  announce(`Uploading ${file.name}`);
  let last = 0;
  let sent = false;
  try {
    await send((p, partsDone, partsTotal) => {
      const up = state.uploads.get(job.job_id);
      up.progress = p;
      if (partsTotal) up.parts = [partsDone, partsTotal];
      if (p - last >= 0.02 || p === 1 || partsTotal) { last = p; renderJob(job.job_id); }
    });
    state.uploads.delete(job.job_id);
    announce(`${file.name} uploaded; waiting for transcription`);
    sent = true;
  } catch (e) {
    if (job.job_id in resumableUploads()) { // parts sent so far are kept: the card offers to resume
      state.uploads.delete(job.job_id);
      uploadProblem(file, e.message);
    } else {
      state.uploads.set(job.job_id, { progress: 0, error: e.message });
      announce(`${file.name}: ${e.message}`);
    }
  }
  renderJob(job.job_id);
  schedulePoll(300);
  return sent;
}

function uploadFiles(files) {
  const list = [...files];
  if (!list.length) return;
  // Two at a time: enough to fill the link, few enough to keep progress readable.
  let next = 0;
  const worker = async () => { while (next < list.length) await uploadFile(list[next++]); };
  worker();
  worker();
}

$("file-input").addEventListener("change", (e) => {
  uploadFiles(e.target.files);
  e.target.value = "";
});

const dropzone = $("dropzone");
for (const type of ["dragenter", "dragover"]) {
  dropzone.addEventListener(type, (e) => {
    if (![...(e.dataTransfer?.types || [])].includes("Files")) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
    dropzone.classList.add("dragging");
  });
}
dropzone.addEventListener("dragleave", (e) => {
  if (!dropzone.contains(e.relatedTarget)) dropzone.classList.remove("dragging");
});
dropzone.addEventListener("drop", (e) => {
  e.preventDefault();
  dropzone.classList.remove("dragging");
  uploadFiles(e.dataTransfer.files);
});
// A file dropped next to the zone would make the browser navigate away from the app.
window.addEventListener("dragover", (e) => e.preventDefault());
window.addEventListener("drop", (e) => e.preventDefault());

// -- Job list -----------------------------------------------------------------------------------

function sortedJobs() {
  return [...state.jobs.values()].sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
}

function progressText(job) {
  const up = state.uploads.get(job.job_id);
  if (up?.error) return null;
  if (up?.parts) return `Uploading ${Math.round(up.progress * 100)}% (part ${up.parts[0]} of ${up.parts[1]} sent)`;
  if (up) return `Uploading ${Math.round(up.progress * 100)}%`;
  if (job.status === "PROCESSING" && job.chunks?.total > 1) return `${job.chunks.done} of ${job.chunks.total} parts`;
  return null;
}

function downloadLinks(job, className = "downloads") {
  if (!job.transcript) return null;
  const links = FORMATS.filter((f) => job.transcript[f]).map((f) =>
    el("a", {
      href: job.transcript[f], className: "dl", target: "_blank", rel: "noopener", "data-format": f,
      "aria-label": `Download ${f.toUpperCase()} transcript of ${job.filename}`,
      onclick: (e) => freshLink(e, job.job_id, f),
    }, f.toUpperCase()));
  return el("span", { className }, el("span", { className: "muted" }, "Download:"), ...links);
}

/** Presigned links are short-lived: if this one has (nearly) expired, fetch the job again first. */
async function freshLink(event, jobId, format) {
  const expiry = linkExpiry(event.currentTarget.href);
  if (!expiry || expiry - Date.now() > 15000) return; // still good: let the browser follow it
  event.preventDefault();
  const win = window.open("", "_blank"); // opened now, while the click still counts as a user gesture
  try {
    const job = await getJob(jobId);
    state.jobs.set(jobId, job);
    renderJob(jobId);
    const url = job.transcript?.[format];
    if (!url) throw new Error("This transcript is no longer available.");
    if (win) { win.opener = null; win.location = url; } else location.assign(url);
  } catch (e) {
    win?.close();
    $("jobs-error").textContent = e.message;
  }
}

function jobCard(job) {
  const up = state.uploads.get(job.job_id);
  const status = up?.error ? "FAILED" : job.status;
  const progress = progressText(job);
  const meta = [formatBytes(job.size)];
  if (job.duration_seconds != null) meta.push(formatDuration(job.duration_seconds));
  const lang = job.detected_language || (job.language && job.language !== "auto" ? job.language : null);
  if (lang && !job.no_speech) meta.push(languageName(lang)); // nothing was said: no language to name
  if (job.task === "translate") meta.push("translated to English"); // the language above is the one spoken
  meta.push(timeAgo(job.created_at));

  const title = job.status === "COMPLETED"
    ? el("button", { type: "button", className: "job-title link", "data-action": "view",
      onclick: () => openViewer(job, refreshJob) }, job.filename)
    : el("span", { className: "job-title" }, job.filename);

  let bar = null;
  if (progress) {
    const ratio = up ? up.progress : job.chunks.done / job.chunks.total;
    bar = el("progress", { max: 100, value: Math.round(ratio * 100), "aria-label": `${job.filename}: ${progress}` });
  } else if (resumable(job)) {
    bar = el("span", { className: "muted" }, "The upload stopped part way. Choose the same file to send the rest.");
  } else if (abandoned(job)) {
    bar = el("span", { className: "muted" }, "The upload did not finish. Delete this and upload the file again.");
  } else if (!FINISHED.has(status)) {
    bar = el("progress", { "aria-label": `${job.filename}: ${STATUS_TEXT[status]}` }); // indeterminate
  }

  const reason = up?.error || (job.status === "FAILED" ? job.error || "The recording could not be transcribed." : null);
  const actions = el("div", { className: "job-actions" });
  if (job.status === "COMPLETED") {
    actions.append(el("button", { type: "button", className: "btn btn-small", "data-action": "view-btn",
      onclick: () => openViewer(job, refreshJob) }, "View transcript"));
  }
  if (resumable(job)) {
    const picker = el("input", { type: "file", hidden: true, onchange: (e) => resumeUpload(job, e.target.files[0]) });
    actions.append(picker, el("button", { type: "button", className: "btn btn-small", "data-action": "resume",
      "aria-label": `Resume the upload of ${job.filename}`, onclick: () => picker.click() }, "Resume upload"));
  }
  actions.append(el("button", { type: "button", className: "btn btn-small btn-danger", "data-action": "delete",
    "aria-label": `Delete ${job.filename}`, onclick: () => removeJob(job) }, "Delete"));

  return [
    el("div", { className: "job-main" },
      title,
      el("span", { className: `badge badge-${status.toLowerCase()}`, "data-status": status }, STATUS_TEXT[status] || status),
    ),
    el("div", { className: "job-meta muted" }, meta.join(" · ")),
    progress ? el("div", { className: "job-progress" }, bar, el("span", { className: "muted" }, progress)) : bar,
    reason ? el("p", { className: "job-error", role: "note" }, el("strong", {}, "Reason: "), reason) : null,
    job.status === "COMPLETED" && job.no_speech
      ? el("p", { className: "job-note", role: "note", "data-note": "no-speech" }, el("strong", {}, "No speech detected: "),
        "the recording seems to hold only silence, noise or music, so the transcript is empty.")
      : null,
    el("div", { className: "job-foot" }, downloadLinks(job), actions),
  ].filter(Boolean);
}

function signature(job) {
  const up = state.uploads.get(job.job_id);
  return JSON.stringify([job.status, job.updated_at, job.chunks, job.transcript, job.error, job.detected_language,
    up && Math.round(up.progress * 100), up?.parts, up?.error, abandoned(job), resumable(job)]);
}

function renderJob(id) {
  const job = state.jobs.get(id);
  const li = document.querySelector(`#jobs > li[data-job-id="${CSS.escape(id)}"]`);
  if (!job || !li) return render();
  const sig = signature(job);
  if (li.dataset.sig === sig) return;
  // Keep keyboard focus on the same control across the update.
  const focused = li.contains(document.activeElement) ? document.activeElement.dataset.action : null;
  li.dataset.sig = sig;
  li.dataset.status = job.status;
  li.replaceChildren(...jobCard(job));
  if (focused) li.querySelector(`[data-action="${focused}"]`)?.focus();
}

function render() {
  const list = $("jobs");
  const jobs = sortedJobs();
  const existing = new Map([...list.children].map((li) => [li.dataset.jobId, li]));
  jobs.forEach((job, i) => {
    let li = existing.get(job.job_id);
    existing.delete(job.job_id);
    if (!li) {
      li = el("li", { className: "job", "data-job-id": job.job_id, "aria-label": job.filename });
    }
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    renderJob(job.job_id);
  });
  for (const li of existing.values()) li.remove();
  $("jobs-empty").hidden = jobs.length > 0;
  $("load-more").hidden = !state.cursor;
}

function merge(job) {
  const before = state.jobs.get(job.job_id);
  if (before && before.status !== job.status && FINISHED.has(job.status)) {
    announce(job.status === "COMPLETED"
      ? (job.no_speech ? `${job.filename}: no speech detected` : `${job.filename}: transcript ready`)
      : `${job.filename}: failed. ${job.error || ""}`);
  }
  state.jobs.set(job.job_id, job);
}

async function refresh() {
  clearTimeout(state.pollTimer);
  try {
    const page = await listJobs(null, PAGE);
    const firstLoad = state.jobs.size === 0;
    page.items.forEach(merge);
    if (firstLoad || state.cursor === null) state.cursor = page.next_cursor;
    // Unfinished jobs further down than the first page: ask for each one.
    const onPage = new Set(page.items.map((j) => j.job_id));
    const stale = [...state.jobs.values()].filter((j) => !onPage.has(j.job_id) && !FINISHED.has(j.status)
      && !state.uploads.has(j.job_id));
    await Promise.all(stale.map((j) => getJob(j.job_id).then(merge).catch((e) => {
      if (e.status === 404) state.jobs.delete(j.job_id);
    })));
    $("jobs-error").textContent = "";
    render();
  } catch (e) {
    if (e.status === 401) return;
    $("jobs-error").textContent = e.message;
  }
  schedulePoll();
}

/** An upload in parts this browser started and no tab is sending now: it resumes with the same file. */
function resumable(job) {
  return job.status === "UPLOADING" && !state.uploads.has(job.job_id) && job.job_id in resumableUploads();
}

async function resumeUpload(job, file) {
  if (!file) return;
  if (!sameFile(job.job_id, file)) {
    uploadProblem(file, `This is not the file that was being uploaded as ${job.filename}; choose that one.`);
    return;
  }
  await sendFile(job, file, (show) => uploadInParts(job.job_id, file, show));
}

/** An upload that no tab of ours is sending and that started long ago will not move on by itself. */
function abandoned(job) {
  return job.status === "UPLOADING" && !state.uploads.has(job.job_id) && !resumable(job)
    && Date.now() - Date.parse(job.created_at) > ABANDONED_UPLOAD_MS;
}

function schedulePoll(ms = POLL_MS) {
  clearTimeout(state.pollTimer);
  if ($("app").hidden) return;
  const busy = [...state.jobs.values()].some((j) => !FINISHED.has(j.status) && !state.uploads.get(j.job_id)?.error
    && !abandoned(j));
  if (busy || ms < POLL_MS) state.pollTimer = setTimeout(refresh, ms);
}

async function refreshJob(id) {
  const job = await getJob(id);
  merge(job);
  renderJob(id);
  return job;
}

async function removeJob(job) {
  if (!confirm(`Delete "${job.filename}" and its transcript? This cannot be undone.`)) return;
  try {
    await deleteJob(job.job_id);
  } catch (e) {
    if (e.status !== 404) {
      $("jobs-error").textContent = e.message;
      return;
    }
  }
  const li = document.querySelector(`#jobs > li[data-job-id="${CSS.escape(job.job_id)}"]`);
  const next = li?.nextElementSibling || li?.previousElementSibling;
  state.jobs.delete(job.job_id);
  state.uploads.delete(job.job_id);
  render();
  announce(`${job.filename} deleted`);
  (next?.querySelector("button") || $("upload-title")).focus?.();
}

$("load-more").addEventListener("click", async () => {
  const button = $("load-more");
  button.disabled = true;
  try {
    const page = await listJobs(state.cursor, PAGE);
    page.items.forEach(merge);
    state.cursor = page.next_cursor;
    render();
  } catch (e) {
    if (e.status !== 401) $("jobs-error").textContent = e.message;
  } finally {
    button.disabled = false;
  }
});

$("refresh").addEventListener("click", () => refresh());

// Links in the list expire: refresh them when the user comes back to the tab.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && !$("app").hidden) refresh();
});

// -- Start --------------------------------------------------------------------------------------

async function start() {
  setUnauthorizedHandler((message) => endSession(message));
  initKeys(announce);
  initLive({ announce, save: uploadFile, options: liveOptions });
  try {
    await loadConfig();
  } catch (e) {
    showNotice(`Hark could not load its configuration (${e.message}). Reload the page to try again.`);
    return;
  }
  if (getConfig().devAuth) {
    const session = currentSession();
    if (session) showSignedIn(session);
    else showSignedOut();
    return;
  }
  $("signin-help").textContent = "Loading sign-in…";
  showSignedOut();
  try {
    state.clerk = await loadClerk();
  } catch (e) {
    $("signin-help").textContent = "";
    showNotice(e instanceof ClerkConfigError
      ? `Sign-in is not set up on this deployment: ${e.message}. Its operator sets it with hark:clerkPublishableKey.`
      : `Sign-in could not load: ${e.message}. Check your connection and reload the page.`);
    return;
  }
  const user = state.clerk.user;
  state.clerkUserId = user?.id ?? null;
  if (user) showSignedIn(clerkSession(user));
  else showSignedOut(); // mounts Clerk's sign-in
  state.clerk.addListener(onClerkChange);
}

start();

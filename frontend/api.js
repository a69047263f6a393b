// Talking to Hark: config, the signed-in session, the JSON API, and the direct upload to S3.

const SESSION_KEY = "hark.session";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let config = { apiBase: "", devAuth: false, clerkPublishableKey: null, liveBase: null };
let onUnauthorized = () => {};

export async function loadConfig() {
  const r = await fetch("config.json", { cache: "no-store" });
  if (!r.ok) throw new Error(`config.json: HTTP ${r.status}`);
  config = { ...config, ...(await r.json()) };
  config.apiBase = (config.apiBase || "").replace(/\/+$/, "");
  return config;
}

export const getConfig = () => config;

/** Called (once per 401) with a message when the API says the token is no good. */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

// -- Session ----------------------------------------------------------------------------------

/** expires_at as ms since epoch: accepts an ISO 8601 string or epoch seconds (a JWT's `exp`). */
export function expiryMs(expiresAt) {
  if (expiresAt == null || expiresAt === "") return null;
  const n = Number(expiresAt);
  if (Number.isFinite(n)) return n < 1e12 ? n * 1000 : n;
  const t = Date.parse(expiresAt);
  return Number.isNaN(t) ? null : t;
}

export function currentSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    const expires = expiryMs(s?.expires_at);
    if (s && s.token && (expires === null || expires > Date.now())) return s;
  } catch { /* corrupt entry: treat as signed out */ }
  sessionStorage.removeItem(SESSION_KEY);
  return null;
}

/** Ends the session: the dev token is dropped; a Clerk session is signed out at Clerk. */
export async function signOut() {
  sessionStorage.removeItem(SESSION_KEY);
  const clerk = globalThis.Clerk;
  // A callback instead of Clerk's default redirect to afterSignOutUrl: the page shows its own sign-in view.
  if (!config.devAuth && clerk?.user) await clerk.signOut(() => {});
}

/** Local development sign-in: the gateway's dev issuer signs a Clerk-shaped token for any email. */
export async function devSignIn(email) {
  const r = await fetch(`${config.apiBase}/dev/token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email }),
  });
  const body = await readJson(r);
  if (!r.ok) throw toApiError(r.status, body);
  const session = { token: body.token, user_id: body.user_id, email: body.email, expires_at: body.expires_at };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  return session;
}

// -- Clerk (production sign-in) -----------------------------------------------------------------
// Loaded the way Clerk documents for a page without a bundler (JavaScript quickstart, <script> tab:
// https://clerk.com/docs/js-frontend/getting-started/quickstart): clerk-js from the instance's own
// Frontend API host, with the publishable key in data-clerk-publishable-key; then Clerk.load().

/** clerk-js major version, pinned: 5 is the line whose browser bundle carries the prebuilt components. */
export const CLERK_JS_MAJOR = 5;
const CLERK_KEY = /^pk_(test|live)_([A-Za-z0-9+/_-]+=*)$/;
const HOST = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/i;

/** The Frontend API host a publishable key encodes (`pk_test_`/`pk_live_` + base64 of "<host>$"), or null. */
export function clerkFrontendApi(publishableKey) {
  const m = CLERK_KEY.exec(publishableKey || "");
  if (!m) return null;
  let decoded;
  try {
    decoded = atob(m[2].replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, ""));
  } catch {
    return null;
  }
  if (!decoded.endsWith("$")) return null;
  const host = decoded.slice(0, -1);
  return HOST.test(host) ? host.toLowerCase() : null;
}

export const clerkScriptUrl = (host) => `https://${host}/npm/@clerk/clerk-js@${CLERK_JS_MAJOR}/dist/clerk.browser.js`;

/** The deployment's config.json cannot sign anyone in with Clerk: reloading will not help. */
export class ClerkConfigError extends Error {}

/** Adds Clerk's script tag, waits for it, and runs Clerk.load(); resolves to the loaded Clerk object. */
export async function loadClerk() {
  const key = config.clerkPublishableKey;
  const host = clerkFrontendApi(key);
  if (!host) {
    throw new ClerkConfigError(key
      ? "clerkPublishableKey in config.json is not a Clerk publishable key (pk_live_... or pk_test_...)"
      : "config.json has no clerkPublishableKey");
  }
  await new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.async = true;
    script.crossOrigin = "anonymous";
    script.type = "text/javascript";
    script.setAttribute("data-clerk-publishable-key", key);
    script.addEventListener("load", resolve);
    script.addEventListener("error", () => reject(new Error(`could not load ${clerkScriptUrl(host)}`)));
    script.src = clerkScriptUrl(host);
    document.head.append(script);
  });
  const clerk = globalThis.Clerk;
  if (!clerk?.load) throw new Error("Clerk's script loaded but did not set up window.Clerk");
  await clerk.load();
  return clerk;
}

/** A fresh session token for every request: Clerk caches it and refreshes it before it expires. */
async function clerkGetToken() {
  const clerk = globalThis.Clerk;
  if (!clerk?.session) return null;
  return clerk.session.getToken();
}

async function bearerToken() {
  if (config.devAuth) return currentSession()?.token ?? null;
  try {
    return await clerkGetToken();
  } catch {
    throw new ApiError(0, "network", "Could not get a session token from Clerk. Check your connection and try again.");
  }
}

// -- JSON API ---------------------------------------------------------------------------------

async function readJson(r) {
  const text = await r.text();
  if (!text) return null;
  try { return JSON.parse(text); } catch { return { error: { message: text.slice(0, 300) } }; }
}

// Every refusal, the API's or API Gateway's own (401, 403, unknown route, throttling), is
// {"error": {"code", "message"}}.
function toApiError(status, body) {
  const e = body?.error;
  const message = e?.message || `The server answered HTTP ${status}.`;
  return new ApiError(status, e?.code || "http_" + status, message);
}

export async function api(path, { method = "GET", body, base = config.apiBase } = {}) {
  const token = await bearerToken();
  if (!token) {
    onUnauthorized("Please sign in.");
    throw new ApiError(401, "signed_out", "Please sign in.");
  }
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let r;
  try {
    r = await fetch(`${base}${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network", "Cannot reach the Hark API. Check your connection and try again.");
  }
  const data = r.status === 204 ? null : await readJson(r);
  if (r.status === 401) {
    onUnauthorized("Your session has ended. Please sign in again.");
  }
  if (!r.ok) throw toApiError(r.status, data);
  return data;
}

export const listJobs = (cursor, limit = 20) =>
  api(`/jobs?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
export const getJob = (id) => api(`/jobs/${encodeURIComponent(id)}`);
export const deleteJob = (id) => api(`/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
// options: { language, prompt, task, speaker_labels, speakers_expected } as the create-job body takes them (docs/api.md).
export const createJob = (file, options = {}) =>
  api("/jobs", {
    method: "POST",
    body: { filename: file.name, content_type: contentType(file), size: file.size, ...options },
  });

// -- Live transcription (docs/api.md, "Live transcription") ---------------------------------------

/** Where the live service is: config.json's `liveBase`; with the API on the page's own origin (the local
 * stack, where the gateway sends /v1/* to the live app), that origin's /v1; otherwise null (not set up). */
export function liveBase() {
  if (config.liveBase) return config.liveBase.replace(/\/+$/, "");
  return config.apiBase ? null : `${location.origin}/v1`;
}

/** The WebSocket URL of a live stream, with a single-use ticket (a browser cannot set headers on a WebSocket,
 * and a lasting credential never goes in a URL). */
export async function liveStreamUrl(sampleRate, { language, prompt } = {}) {
  const base = liveBase();
  const { ticket } = await api("/live/tickets", { method: "POST", base });
  const query = new URLSearchParams({ sample_rate: String(sampleRate), ticket });
  if (language) query.set("language", language);
  if (prompt) query.set("prompt", prompt);
  return `${base.replace(/^http/, "ws")}/live?${query}`;
}

export const listApiKeys = () => api("/api-keys");
export const createApiKey = (name) => api("/api-keys", { method: "POST", body: { name } });
export const revokeApiKey = (id) => api(`/api-keys/${encodeURIComponent(id)}`, { method: "DELETE" });

// -- Upload ------------------------------------------------------------------------------------

// As hark/domain/uploads.py's CONTENT_TYPE_BY_EXTENSION (the API accepts both audio/* and video/* for .mp4 and .webm).
const TYPES_BY_EXTENSION = {
  wav: "audio/wav", mp3: "audio/mpeg", m4a: "audio/mp4", aac: "audio/aac",
  flac: "audio/flac", ogg: "audio/ogg", oga: "audio/ogg", opus: "audio/ogg",
  mp4: "video/mp4", m4v: "video/x-m4v", mov: "video/quicktime", mkv: "video/x-matroska", webm: "video/webm",
  avi: "video/x-msvideo",
};

/** The browser's type when it says audio/*, else the type for the extension (browsers name videos variously,
 * video/vnd.avi or nothing for .mkv), else the browser's. */
export function contentType(file) {
  if (file.type && file.type.startsWith("audio/")) return file.type;
  const ext = file.name.includes(".") ? file.name.split(".").pop().toLowerCase() : "";
  return TYPES_BY_EXTENSION[ext] || file.type || "application/octet-stream";
}

/** POST the file straight to S3 with the presigned fields (fields first, file last). */
export function uploadToS3(upload, file, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [k, v] of Object.entries(upload.fields || {})) form.append(k, v);
    form.append("file", file);
    const xhr = new XMLHttpRequest();
    xhr.open(upload.method || "POST", upload.url);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve();
      const s3Message = /<Message>([^<]*)<\/Message>/.exec(xhr.responseText || "")?.[1];
      reject(new ApiError(xhr.status, "upload_failed",
        `Upload refused by storage (HTTP ${xhr.status})${s3Message ? `: ${s3Message}` : "."}`));
    });
    xhr.addEventListener("error", () =>
      reject(new ApiError(0, "network", "The upload did not get through (network or CORS error).")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "aborted", "Upload cancelled.")));
    xhr.send(form);
  });
}

/** When a presigned S3 URL stops working (ms since epoch), or null if it cannot tell. */
export function linkExpiry(url) {
  try {
    const q = new URL(url).searchParams;
    const date = q.get("X-Amz-Date"); // SigV4: 20261123T092600Z + X-Amz-Expires seconds
    const ttl = Number(q.get("X-Amz-Expires"));
    if (date && ttl) {
      const m = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(date);
      if (m) return Date.UTC(m[1], m[2] - 1, m[3], m[4], m[5], m[6]) + ttl * 1000;
    }
    const expires = Number(q.get("Expires")); // SigV2: epoch seconds
    if (expires) return expires * 1000;
  } catch { /* not a URL */ }
  return null;
}

// -- Big uploads in parts (issue 25; docs/api.md, "Big uploads") ---------------------------------------
// A file over the server's threshold goes up as S3 multipart: a presigned PUT per part, each part retried on
// its own, and the upload resumable after a dropped connection or a page reload. localStorage keeps which
// file each unfinished upload is (name, size, last modified): the page asks for that file again, and the
// server says which parts S3 already has.
const PART_ATTEMPTS = 4;
const URLS_AT_ONCE = 20;
const RESUMABLE_KEY = "hark.resumable-uploads";

const jobPath = (id) => `/jobs/${encodeURIComponent(id)}/multipart`;

/** {jobId: {name, size, lastModified}} of uploads in parts that did not finish in this browser. */
export function resumableUploads() {
  try { return JSON.parse(localStorage.getItem(RESUMABLE_KEY) || "{}"); } catch { return {}; }
}

function keepResumable(jobId, file) {
  const all = resumableUploads();
  if (file) all[jobId] = { name: file.name, size: file.size, lastModified: file.lastModified };
  else delete all[jobId];
  localStorage.setItem(RESUMABLE_KEY, JSON.stringify(all));
}

/** Whether `file` is the one an unfinished upload was sending (the page asks for it again after a reload). */
export function sameFile(jobId, file) {
  const kept = resumableUploads()[jobId];
  return Boolean(kept) && kept.name === file.name && kept.size === file.size && kept.lastModified === file.lastModified;
}

/** Send `file` in parts, starting or resuming (plan: POST /jobs from createJob, else asked for now);
 * onProgress(fraction, partsDone, partsTotal) as bytes go. */
export async function uploadInParts(jobId, file, onProgress, plan = null) {
  plan = plan || await api(jobPath(jobId), { method: "POST" });
  keepResumable(jobId, file);
  const done = new Set(plan.parts_done.map((p) => p.part_number));
  const partBytes = (n) => Math.min(plan.part_size, file.size - (n - 1) * plan.part_size);
  let sent = [...done].reduce((total, n) => total + partBytes(n), 0);
  onProgress(sent / file.size, done.size, plan.part_count);
  const todo = [];
  for (let n = 1; n <= plan.part_count; n++) if (!done.has(n)) todo.push(n);
  for (let i = 0; i < todo.length; i += URLS_AT_ONCE) {
    const { urls } = await api(`${jobPath(jobId)}/parts`, { method: "POST", body: { part_numbers: todo.slice(i, i + URLS_AT_ONCE) } });
    for (const { part_number: n, url } of urls) {
      const blob = file.slice((n - 1) * plan.part_size, n * plan.part_size);
      await putPart(url, blob, n, (loaded) => onProgress((sent + loaded) / file.size, done.size, plan.part_count));
      done.add(n);
      sent += blob.size;
      onProgress(sent / file.size, done.size, plan.part_count);
    }
  }
  await api(`${jobPath(jobId)}/complete`, { method: "POST" });
  keepResumable(jobId, null);
}

/** One part, sent again on its own after a network error or a storage hiccup (5xx, 408, 429). */
async function putPart(url, blob, number, onLoaded) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await put(url, blob, onLoaded);
    } catch (e) {
      const refused = e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429;
      if (refused || attempt >= PART_ATTEMPTS) {
        throw new ApiError(e.status, "upload_failed", `${e.message} (part ${number}). Choose the file again to resume.`);
      }
      await new Promise((resolve) => setTimeout(resolve, 1000 * 2 ** attempt));
    }
  }
}

function put(url, blob, onLoaded) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.upload.addEventListener("progress", (e) => onLoaded(e.loaded));
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve();
      const s3Message = /<Message>([^<]*)<\/Message>/.exec(xhr.responseText || "")?.[1];
      reject(new ApiError(xhr.status, "upload_failed",
        `Upload refused by storage (HTTP ${xhr.status})${s3Message ? `: ${s3Message}` : ""}`));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "network", "The upload did not get through (network or CORS error)")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "aborted", "Upload cancelled")));
    xhr.send(blob);
  });
}

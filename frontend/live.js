// "Record live" (issue 24; protocol: docs/api.md, "Live transcription"): the microphone -> an AudioWorklet ->
// PCM s16le mono at 16 kHz in 100 ms binary frames on the live WebSocket. Partials are shown as they come (each
// replaces the last), finals are kept. Stop sends {"type": "stop"} and waits for `done`; the recording, wrapped
// as WAV here, is then handed to the page's ordinary upload, so it becomes a job with its downloads.

import { liveBase, liveStreamUrl } from "./api.js";
import { clock, el } from "./ui.js";

const $ = (id) => document.getElementById(id);
const RATE = 16000; // what the model hears: the context resamples the microphone to it
const FRAME_SECONDS = 0.1;

// What each close code means to the person recording (docs/api.md, "Close codes"); 1000 is `done`, 1012 reconnects.
const CLOSE_MESSAGES = {
  1003: "The page sent something the live service does not take.",
  1006: "The connection to the live service was lost.",
  1007: "The page sent audio the live service could not read.",
  1011: "The live service could not transcribe this stream.",
  1013: "The live service is busy: the audio arrived faster than it could transcribe it. Try again later.",
  4400: "The live service refused the stream's settings.",
  4401: "The live service did not accept your sign-in. Sign in again.",
};

const REFUSALS = new Set([4400, 4401]); // the stream's settings or credential: nothing was transcribed

let hooks = { announce: () => {}, options: () => ({}), save: async () => {} };
let rec = null; // the recording in progress (see start())

/** announce(text): the page's aria-live region; options(): {language, prompt} from the form; save(file): upload it (true once sent). */
export function initLive(pageHooks) {
  hooks = pageHooks;
  $("live-start").addEventListener("click", start);
  $("live-stop").addEventListener("click", stop);
}

function setStatus(text) {
  $("live-status").textContent = text;
}

function showError(text) {
  $("live-error").textContent = text;
  if (text) hooks.announce(text);
}

function setRecording(on) {
  $("live-start").disabled = on;
  $("live-stop").disabled = !on;
}

async function start() {
  showError("");
  if (!liveBase()) {
    showError("Live transcription is not set up on this deployment (config.json has no liveBase).");
    return;
  }
  $("live-finals").replaceChildren();
  $("live-partial").textContent = "";
  setRecording(true);
  rec = {
    chunks: [], // Int16Array frames, as captured
    captured: 0, // samples captured
    sent: 0, // samples sent on the current socket (counted from the recording's start)
    streamStart: 0, // where the current socket's audio starts (a reconnect starts after the last final)
    lastFinalEnd: 0, // in samples from the recording's start
    stopping: false,
    ws: null,
    mic: null,
    context: null,
    source: null,
    node: null,
    rate: RATE, // the audio context's, which the stream is told (sample_rate)
  };
  const r = rec;
  try {
    r.mic = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    r.context = new AudioContext({ sampleRate: RATE });
    r.rate = r.context.sampleRate;
    await r.context.audioWorklet.addModule("live-worklet.js");
    // Both nodes held on `r`: a source node nothing refers to can be collected, and the audio stops.
    r.node = new AudioWorkletNode(r.context, "pcm-frames", {
      processorOptions: { frameSamples: Math.round(r.rate * FRAME_SECONDS) },
    });
    r.node.port.onmessage = ({ data }) => captured(r, new Int16Array(data));
    r.source = r.context.createMediaStreamSource(r.mic);
    r.source.connect(r.node);
    r.node.connect(r.context.destination); // silent (the worklet writes no output), but keeps it processing
    await connect(r);
  } catch (e) {
    r.captured = 0; // the stream never started: nothing worth saving
    finish(r, e.name === "NotAllowedError" ? "The microphone was not allowed: allow it for this page and try again."
      : e.name === "NotFoundError" ? "No microphone was found." : e.message);
    return;
  }
  setStatus("Recording 00:00");
  hooks.announce("Recording: speak now");
}

/** One 100 ms frame from the worklet: kept for the WAV, sent at once when the socket is open. */
function captured(r, frame) {
  if (r.stopping || !r.context) return; // after Stop nothing more is sent
  r.chunks.push(frame);
  r.captured += frame.length;
  const seconds = r.captured / r.rate;
  $("live-status").dataset.seconds = seconds.toFixed(1);
  setStatus(`Recording ${clock(seconds)}`);
  pump(r);
}

/** Sends the audio captured and not yet sent on this socket. */
function pump(r) {
  if (r.ws?.readyState !== WebSocket.OPEN || r.sent >= r.captured) return;
  const last = r.chunks[r.chunks.length - 1];
  r.ws.send(r.sent === r.captured - last.length ? last : samplesFrom(r, r.sent));
  r.sent = r.captured;
}

function samplesFrom(r, start) {
  const out = new Int16Array(r.captured - start);
  let at = 0, offset = 0;
  for (const chunk of r.chunks) {
    const from = Math.max(0, start - offset);
    if (from < chunk.length) { out.set(chunk.subarray(from), at); at += chunk.length - from; }
    offset += chunk.length;
  }
  return out;
}

/** Opens a stream (a fresh ticket each time: one ticket opens one stream) and sends what it has not heard. */
async function connect(r) {
  const { language, prompt } = hooks.options();
  const ws = new WebSocket(await liveStreamUrl(r.rate, { language, prompt }));
  ws.binaryType = "arraybuffer";
  r.ws = ws;
  r.sent = r.streamStart;
  let refusal = null;
  ws.onopen = () => {
    pump(r);
    if (r.stopping) ws.send(JSON.stringify({ type: "stop" }));
  };
  ws.onmessage = ({ data }) => {
    const m = JSON.parse(data);
    if (m.type === "partial") $("live-partial").textContent = m.text;
    else if (m.type === "final") showFinal(r, m);
    else if (m.type === "error") refusal = m.message;
  };
  ws.onclose = ({ code }) => {
    if (r.ws !== ws) return;
    if (code === 1000) return finish(r, "");
    if (code === 1012) { // the server is going away: its finals so far were sent; go on with a new stream
      setStatus("The live service is restarting: reconnecting…");
      r.streamStart = r.lastFinalEnd;
      connect(r).catch((e) => finish(r, e.message));
      return;
    }
    const what = CLOSE_MESSAGES[code] || `The live stream ended unexpectedly (close code ${code}).`;
    if (REFUSALS.has(code)) r.captured = 0; // the stream was refused as asked for: a job of it would be too
    finish(r, refusal ? `${what} ${refusal}` : what);
  };
}

function showFinal(r, final) {
  const offset = r.streamStart / r.rate; // a reconnected stream's times start at 0
  r.lastFinalEnd = r.streamStart + Math.round(final.end * r.rate);
  $("live-partial").textContent = "";
  $("live-finals").append(el("li", { className: "live-final", "data-start": (offset + final.start).toFixed(2) },
    el("span", { className: "ts" }, clock(offset + final.start)), " ", final.text));
}

/** Stop: the microphone ends, the rest of the audio and {"type": "stop"} go out, and `done` is awaited. */
function stop() {
  const r = rec;
  if (!r || r.stopping) return;
  r.stopping = true;
  $("live-stop").disabled = true;
  setStatus("Finishing the transcript…");
  releaseMicrophone(r);
  if (r.ws?.readyState === WebSocket.OPEN) {
    pump(r);
    r.ws.send(JSON.stringify({ type: "stop" }));
  } // still connecting: onopen sends the rest and the stop
}

function releaseMicrophone(r) {
  r.mic?.getTracks().forEach((t) => t.stop());
  r.context?.close();
  r.mic = r.context = r.source = r.node = null;
}

/** The stream ended (done, or an error to show): the recording so far is saved as a job, so nothing is lost. */
async function finish(r, error) {
  if (rec !== r) return;
  rec = null;
  releaseMicrophone(r);
  if (r.ws && r.ws.readyState < WebSocket.CLOSING) r.ws.close();
  r.ws = null;
  $("live-partial").textContent = "";
  setRecording(false);
  showError(error);
  if (!r.captured) { setStatus(""); return; }
  const name = `live-${new Date().toISOString().slice(0, 19).replace(/[T:]/g, "-")}.wav`;
  setStatus(`Saving the recording as ${name}`);
  const saved = await hooks.save(new File([wav(r.chunks, r.rate)], name, { type: "audio/wav" }));
  setStatus(saved ? `Saved as ${name}: its transcript and downloads follow in the list below.`
    : `${name} could not be saved: the list below says why.`);
}

/** Ends a recording without saving it (signing out). */
export function cancelLive() {
  const r = rec;
  if (!r) return;
  rec = null;
  releaseMicrophone(r);
  r.ws?.close();
  setRecording(false);
  setStatus("");
}

/** The captured PCM as a WAV file (RIFF, PCM s16le mono). */
function wav(chunks, sampleRate) {
  const bytes = chunks.reduce((n, c) => n + c.byteLength, 0);
  const head = new DataView(new ArrayBuffer(44));
  const text = (at, s) => [...s].forEach((ch, i) => head.setUint8(at + i, ch.charCodeAt(0)));
  text(0, "RIFF"); head.setUint32(4, 36 + bytes, true); text(8, "WAVE");
  text(12, "fmt "); head.setUint32(16, 16, true); head.setUint16(20, 1, true); head.setUint16(22, 1, true);
  head.setUint32(24, sampleRate, true); head.setUint32(28, sampleRate * 2, true);
  head.setUint16(32, 2, true); head.setUint16(34, 16, true);
  text(36, "data"); head.setUint32(40, bytes, true);
  return new Blob([head, ...chunks], { type: "audio/wav" });
}

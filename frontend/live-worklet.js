// The "Record live" AudioWorklet: the microphone's samples (the first channel) as PCM s16le frames of
// `frameSamples` samples (100 ms at the context's rate), posted to the page, which sends them on the WebSocket.

class PcmFrames extends AudioWorkletProcessor {
  constructor({ processorOptions }) {
    super();
    this.frameSamples = processorOptions.frameSamples;
    this.frame = new Int16Array(this.frameSamples);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0]?.[0];
    if (!channel) return true; // no input yet (or the microphone was stopped): keep the node alive
    for (const sample of channel) {
      const clamped = Math.max(-1, Math.min(1, sample));
      this.frame[this.filled++] = clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff;
      if (this.filled === this.frameSamples) {
        this.port.postMessage(this.frame.buffer, [this.frame.buffer]); // transferred (detached here): a new one
        this.frame = new Int16Array(this.frameSamples);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-frames", PcmFrames);

// The microphone tap: an AudioWorklet that copies each block of the first input channel to
// the page. Raw samples (not MediaRecorder, whose WebM/Opus the server refuses), so the page
// can encode a WAV the server reads.

declare class AudioWorkletProcessor {
  readonly port: MessagePort;
}
declare function registerProcessor(name: string, ctor: new () => AudioWorkletProcessor): void;

class RecorderProcessor extends AudioWorkletProcessor {
  process(inputs: Float32Array[][]): boolean {
    const channel = inputs[0]?.[0];
    if (channel && channel.length > 0) this.port.postMessage(channel.slice());
    return true;
  }
}

registerProcessor("prosodia-recorder", RecorderProcessor);

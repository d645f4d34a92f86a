"use strict";
(() => {
  // src/recorder-worklet.ts
  var RecorderProcessor = class extends AudioWorkletProcessor {
    process(inputs) {
      const channel = inputs[0]?.[0];
      if (channel && channel.length > 0) this.port.postMessage(channel.slice());
      return true;
    }
  };
  registerProcessor("prosodia-recorder", RecorderProcessor);
})();

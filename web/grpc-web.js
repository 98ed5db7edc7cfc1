// grpc-web client for showfloor.v1.Control (unary and server-streaming calls over fetch), on the page's own origin.
import { Codec } from './protobuf.js';

const SERVICE = '/showfloor.v1.Control/';
const CONTENT_TYPE = 'application/grpc-web+proto';
const FLAG_TRAILERS = 0x80;
const CODE_NAMES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND',
  'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED',
  'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

export class GrpcError extends Error {
  constructor(code, message) {
    super(message || CODE_NAMES[code] || `status ${code}`);
    this.code = code;
    this.codeName = CODE_NAMES[code] || String(code);
  }
}

// One length-prefixed message: flag byte, 4-byte big-endian length, payload.
export function frame(payload, flag = 0) {
  const out = new Uint8Array(5 + payload.length);
  out[0] = flag;
  new DataView(out.buffer).setUint32(1, payload.length, false);
  out.set(payload, 5);
  return out;
}

// Splits complete frames off the front of `buffer`; returns them and what is left over.
export function takeFrames(buffer) {
  const frames = [];
  let pos = 0;
  while (buffer.length - pos >= 5) {
    const length = new DataView(buffer.buffer, buffer.byteOffset + pos + 1, 4).getUint32(0, false);
    if (buffer.length - pos - 5 < length) break;
    frames.push({ flag: buffer[pos], payload: buffer.subarray(pos + 5, pos + 5 + length) });
    pos += 5 + length;
  }
  return { frames, rest: buffer.subarray(pos) };
}

// A trailers frame is HTTP/1-style header lines: "grpc-status: 0\r\ngrpc-message: …\r\n".
export function parseTrailers(payload) {
  const trailers = {};
  for (const line of new TextDecoder().decode(payload).split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) trailers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return trailers;
}

function statusOf(get) {
  const raw = get('grpc-status');
  if (raw === null || raw === undefined) return null;
  let message = get('grpc-message') || '';
  try { message = decodeURIComponent(message); } catch { /* keep it as sent */ }
  return new GrpcError(Number(raw), message);
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

export class ControlClient {
  // `apiKey` goes into `authorization` metadata, as for any gRPC client of the service.
  static async connect(apiKey) {
    const r = await fetch('/assets/schema.json');
    if (!r.ok) throw new Error(`cannot load the control schema: HTTP ${r.status}`);
    return new ControlClient(new Codec(await r.json()), apiKey);
  }

  constructor(codec, apiKey) {
    this.codec = codec;
    this.apiKey = apiKey;
  }

  async open(method, request, signal) {
    const spec = this.codec.methods[method];
    if (!spec) throw new Error(`no RPC ${method}`);
    const [requestType, responseType] = spec;
    let response;
    try {
      response = await fetch(SERVICE + method, {
        method: 'POST',
        headers: { 'content-type': CONTENT_TYPE, 'x-grpc-web': '1', authorization: `Bearer ${this.apiKey}` },
        body: frame(this.codec.encode(requestType, request)),
        signal,
      });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new GrpcError(14, `cannot reach the server: ${e.message}`);
    }
    if (response.status !== 200) throw new GrpcError(14, `HTTP ${response.status} from ${method}`);
    // A call refused before any message comes back "trailers-only": the status is a header.
    const early = statusOf((k) => response.headers.get(k));
    if (early && early.code !== 0) throw early;
    return { response, responseType };
  }

  // Reads frames until the trailers; `onMessage` gets each decoded message.
  async read(response, responseType, onMessage) {
    const reader = response.body.getReader();
    let buffer = new Uint8Array(0);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer = concat(buffer, value);
      const { frames, rest } = takeFrames(buffer);
      buffer = rest;
      for (const f of frames) {
        if (f.flag & FLAG_TRAILERS) {
          const status = statusOf((k) => parseTrailers(f.payload)[k]);
          if (status && status.code !== 0) throw status;
          return;
        }
        onMessage(this.codec.decode(responseType, f.payload));
      }
    }
    const status = statusOf((k) => response.headers.get(k));
    if (status && status.code !== 0) throw status;
    if (!status) throw new GrpcError(14, 'the stream ended without a status');
  }

  async call(method, request = {}) {
    const { response, responseType } = await this.open(method, request);
    const messages = [];
    await this.read(response, responseType, (m) => messages.push(m));
    if (messages.length !== 1) throw new GrpcError(13, `${method} answered ${messages.length} messages`);
    return messages[0];
  }

  // Server streaming: resolves when the server ends the stream, rejects with its status.
  async stream(method, request, onMessage, signal) {
    const { response, responseType } = await this.open(method, request, signal);
    await this.read(response, responseType, onMessage);
  }

  enumName(type, n) { return this.codec.enumName(type, n); }
  enumValue(type, name) { return this.codec.enumValue(type, name); }
}

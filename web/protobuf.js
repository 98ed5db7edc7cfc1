// Protobuf (proto3) binary encoder and decoder driven by the schema the server derives from its own descriptor set (/assets/schema.json).

// Integers travel as BigInt inside the codec so 64-bit varints are exact; fields come out as
// Numbers (times in ms and cents stay far below 2^53).
const VARINT = new Set(['int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'bool', 'enum']);
const FIXED64 = new Set(['fixed64', 'sfixed64', 'double']);
const FIXED32 = new Set(['fixed32', 'sfixed32', 'float']);
const WIRE = { varint: 0, fixed64: 1, delimited: 2, fixed32: 5 };

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

function wireTypeOf(kind) {
  if (VARINT.has(kind)) return WIRE.varint;
  if (FIXED64.has(kind)) return WIRE.fixed64;
  if (FIXED32.has(kind)) return WIRE.fixed32;
  return WIRE.delimited;
}

function isDefault(kind, value) {
  if (kind === 'string') return value === '';
  if (kind === 'bytes') return value.length === 0;
  if (kind === 'bool') return value === false;
  if (kind === 'message') return false;
  return value === 0 || value === 0n;
}

function defaultOf(kind) {
  if (kind === 'string') return '';
  if (kind === 'bytes') return new Uint8Array(0);
  if (kind === 'bool') return false;
  return 0;
}

class Writer {
  constructor() { this.bytes = []; }
  varint(value) {
    let v = BigInt.asUintN(64, BigInt(value));
    while (v > 0x7fn) {
      this.bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.bytes.push(Number(v));
  }
  raw(bytes) { for (const b of bytes) this.bytes.push(b); }
  delimited(bytes) { this.varint(bytes.length); this.raw(bytes); }
  finish() { return Uint8Array.from(this.bytes); }
}

class Reader {
  constructor(bytes) { this.bytes = bytes; this.pos = 0; this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength); }
  done() { return this.pos >= this.bytes.length; }
  varint() {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.bytes.length) throw new Error('protobuf: truncated varint');
      const b = this.bytes[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asUintN(64, result);
    }
    throw new Error('protobuf: varint too long');
  }
  take(n) {
    if (this.pos + n > this.bytes.length) throw new Error('protobuf: truncated field');
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  delimited() { return this.take(Number(this.varint())); }
  skip(wire) {
    if (wire === WIRE.varint) this.varint();
    else if (wire === WIRE.fixed64) this.take(8);
    else if (wire === WIRE.fixed32) this.take(4);
    else if (wire === WIRE.delimited) this.delimited();
    else throw new Error(`protobuf: unsupported wire type ${wire}`);
  }
}

function scalarFromVarint(kind, v) {
  switch (kind) {
    case 'bool': return v !== 0n;
    case 'int32': case 'enum': return Number(BigInt.asIntN(32, v));
    case 'uint32': return Number(BigInt.asUintN(32, v));
    case 'int64': return Number(BigInt.asIntN(64, v));
    case 'uint64': return Number(v);
    case 'sint32': case 'sint64': return Number((v >> 1n) ^ -(v & 1n));
    default: throw new Error(`protobuf: ${kind} is not a varint`);
  }
}

function varintOf(kind, value) {
  if (kind === 'bool') return value ? 1n : 0n;
  const v = BigInt(value);
  if (kind === 'sint32' || kind === 'sint64') return v >= 0n ? v << 1n : ((-v) << 1n) - 1n;
  return v;
}

function fixedBytes(kind, value) {
  const size = FIXED64.has(kind) ? 8 : 4;
  const view = new DataView(new ArrayBuffer(size));
  if (kind === 'double') view.setFloat64(0, value, true);
  else if (kind === 'float') view.setFloat32(0, value, true);
  else if (kind === 'fixed64' || kind === 'sfixed64') view.setBigUint64(0, BigInt.asUintN(64, BigInt(value)), true);
  else view.setUint32(0, Number(BigInt.asUintN(32, BigInt(value))), true);
  return new Uint8Array(view.buffer);
}

function fixedFrom(kind, reader) {
  const bytes = reader.take(FIXED64.has(kind) ? 8 : 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (kind) {
    case 'double': return view.getFloat64(0, true);
    case 'float': return view.getFloat32(0, true);
    case 'fixed64': return Number(view.getBigUint64(0, true));
    case 'sfixed64': return Number(view.getBigInt64(0, true));
    case 'fixed32': return view.getUint32(0, true);
    default: return view.getInt32(0, true);
  }
}

export class Codec {
  constructor(schema) {
    this.messages = schema.messages;
    this.enums = schema.enums;
    this.methods = schema.methods || {};
  }

  fields(type) {
    const fields = this.messages[type];
    if (!fields) throw new Error(`protobuf: unknown message ${type}`);
    return fields;
  }

  // Encodes a plain object; unknown keys are refused so a typo fails loudly.
  encode(type, value) {
    const w = new Writer();
    this.write(w, type, value || {});
    return w.finish();
  }

  write(w, type, value) {
    const fields = this.fields(type);
    for (const key of Object.keys(value)) {
      if (!fields.some((f) => f[0] === key)) throw new Error(`protobuf: ${type} has no field ${key}`);
    }
    for (const [name, number, kind, repeated, ref, oneof] of fields) {
      const v = value[name];
      if (v === undefined || v === null) continue;
      if (repeated) {
        if (!Array.isArray(v)) throw new Error(`protobuf: ${type}.${name} must be an array`);
        if (wireTypeOf(kind) !== WIRE.delimited) {
          // Repeated scalars are packed, as proto3 (and prost) write them.
          if (!v.length) continue;
          const run = new Writer();
          for (const item of v) this.writeValue(run, kind, ref, item);
          w.varint((number << 3) | WIRE.delimited);
          w.delimited(run.finish());
        } else {
          for (const item of v) this.writeOne(w, number, kind, ref, item);
        }
      } else if (oneof !== null || !isDefault(kind, v)) {
        this.writeOne(w, number, kind, ref, v);
      }
    }
  }

  writeOne(w, number, kind, ref, v) {
    w.varint((number << 3) | wireTypeOf(kind));
    this.writeValue(w, kind, ref, v);
  }

  writeValue(w, kind, ref, v) {
    if (kind === 'message') {
      const inner = new Writer();
      this.write(inner, ref, v);
      w.delimited(inner.finish());
    } else if (kind === 'string') {
      w.delimited(utf8Encoder.encode(String(v)));
    } else if (kind === 'bytes') {
      w.delimited(v);
    } else if (VARINT.has(kind)) {
      w.varint(varintOf(kind, v));
    } else {
      w.raw(fixedBytes(kind, v));
    }
  }

  // Decodes into a plain object with every field of the schema: proto3 defaults for absent
  // scalars, [] for repeated fields, undefined for absent messages, oneof members and
  // `optional` fields. Unknown fields are skipped (a newer server may add some).
  decode(type, bytes) {
    const fields = this.fields(type);
    const out = {};
    for (const [name, , kind, repeated, , oneof] of fields) {
      if (repeated) out[name] = [];
      else if (kind === 'message' || oneof !== null) out[name] = undefined;
      else out[name] = defaultOf(kind);
    }
    const r = new Reader(bytes);
    while (!r.done()) {
      const tag = Number(r.varint());
      const number = tag >>> 3;
      const wire = tag & 7;
      const field = fields.find((f) => f[1] === number);
      if (!field) { r.skip(wire); continue; }
      const [name, , kind, repeated, ref, oneof] = field;
      if (repeated && wire === WIRE.delimited && wireTypeOf(kind) !== WIRE.delimited) {
        // Packed repeated scalars: one length-delimited run of values.
        const run = new Reader(r.delimited());
        while (!run.done()) out[name].push(this.readOne(run, kind, ref));
        continue;
      }
      if (wire !== wireTypeOf(kind)) throw new Error(`protobuf: ${type}.${name} has wire type ${wire}`);
      const v = this.readOne(r, kind, ref);
      if (repeated) out[name].push(v);
      else {
        if (oneof !== null && oneof !== '?') {
          for (const f of fields) if (f[5] === oneof && f[0] !== name) out[f[0]] = undefined;
        }
        out[name] = v;
      }
    }
    return out;
  }

  readOne(r, kind, ref) {
    if (kind === 'message') return this.decode(ref, r.delimited());
    if (kind === 'string') return utf8Decoder.decode(r.delimited());
    if (kind === 'bytes') return r.delimited().slice();
    if (VARINT.has(kind)) return scalarFromVarint(kind, r.varint());
    return fixedFrom(kind, r);
  }

  // The value's name in an enum, e.g. enumName('OrderStatus', 2) → 'ORDER_STATUS_CONFIRMED'.
  enumName(type, number) {
    return (this.enums[type] || {})[String(number)] || String(number);
  }

  // The number of an enum value by name.
  enumValue(type, name) {
    const entry = Object.entries(this.enums[type] || {}).find(([, n]) => n === name);
    if (!entry) throw new Error(`protobuf: ${type} has no value ${name}`);
    return Number(entry[0]);
  }
}

// The console's protobuf codec (web/protobuf.js) against messages prost encoded: decodes them exactly, and what it encodes prost decodes back (tests/browser_pages.rs writes the fixtures).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Codec } from '../../web/protobuf.js';
import { frame, takeFrames, parseTrailers } from '../../web/grpc-web.js';

const fixtures = JSON.parse(readFileSync(process.env.CODEC_FIXTURES, 'utf8'));
const codec = new Codec(fixtures.schema);
const hex = (bytes) => Buffer.from(bytes).toString('hex');
const bytes = (h) => new Uint8Array(Buffer.from(h, 'hex'));

// The decoder fills every absent field with its default; compare only what the fixture names.
function pick(full, expected) {
  if (Array.isArray(expected)) return expected.map((e, i) => pick(full[i], e));
  if (expected && typeof expected === 'object') return Object.fromEntries(Object.keys(expected).map((k) => [k, pick(full[k], expected[k])]));
  return full;
}

for (const c of fixtures.cases) {
  test(`decodes prost's ${c.name}`, () => {
    assert.deepEqual(pick(codec.decode(c.type, bytes(c.hex)), c.value), c.value);
  });
  test(`encodes ${c.name} as prost does`, () => {
    assert.equal(hex(codec.encode(c.type, c.value)), c.hex);
  });
}

test('absent fields decode to proto3 defaults; oneof members and messages to undefined', () => {
  const order = codec.decode('Order', new Uint8Array(0));
  assert.equal(order.id, '');
  assert.equal(order.quantity, 0);
  assert.equal(order.status, 0);
  const event = codec.decode('WatchRoomEvent', new Uint8Array(0));
  assert.equal(event.chat, undefined);
  assert.deepEqual(codec.decode('ListOrdersResponse', new Uint8Array(0)).orders, []);
});

test('unknown fields are skipped and unknown keys are refused', () => {
  // RoomRef { room_id: "r" } followed by field 9 (varint 300) and field 10 (bytes "xy").
  const decoded = codec.decode('RoomRef', bytes('0a0172' + '48ac02' + '52027879'));
  assert.equal(decoded.room_id, 'r');
  assert.throws(() => codec.encode('RoomRef', { room: 'r' }), /RoomRef has no field room/);
});

test('grpc-web frames split across reads, trailers parse', () => {
  const payload = codec.encode('RoomRef', { room_id: 'abc' });
  const trailers = new TextEncoder().encode('grpc-status: 3\r\ngrpc-message: room_id%20is%20required\r\n');
  const stream = new Uint8Array([...frame(payload), ...frame(trailers, 0x80)]);
  const first = takeFrames(stream.subarray(0, 7));
  assert.equal(first.frames.length, 0);
  const all = takeFrames(stream);
  assert.equal(all.frames.length, 2);
  assert.equal(codec.decode('RoomRef', all.frames[0].payload).room_id, 'abc');
  assert.equal(all.frames[1].flag, 0x80);
  assert.deepEqual(parseTrailers(all.frames[1].payload), { 'grpc-status': '3', 'grpc-message': 'room_id%20is%20required' });
  assert.equal(all.rest.length, 0);
});

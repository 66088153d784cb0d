import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { ModelFormatError } from '../../src/errors';
import { encodeSafetensors, halfToFloat, parseSafetensors, readSafetensors, tensorAsFloat32 } from '../../src/models/safetensors';

const F = 'weights.safetensors';

function f32(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}
function u16(values: number[]): Uint8Array {
  return new Uint8Array(new Uint16Array(values).buffer);
}
/** A file from a raw header string and data bytes. */
function raw(header: string, data = new Uint8Array(0), declared?: bigint): Uint8Array {
  const head = Buffer.from(header, 'utf-8');
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, declared ?? BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}
function expectError(fn: () => unknown, ...fragments: string[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a ModelFormatError').to.be.instanceOf(ModelFormatError);
  const msg = (err as Error).message;
  expect(msg.startsWith(`${F}: `), msg).to.equal(true);
  expect(msg).to.not.contain('\n');
  for (const f of fragments) expect(msg).to.contain(f);
}

describe('models: safetensors reader', () => {
  it('decodes F32, F64, F16 and BF16 to float32 by hand-checked bit patterns', () => {
    const f64 = new Uint8Array(new Float64Array([0.1, -3]).buffer);
    // F16: 1, -2, 65504 (max), 2^-24 (smallest subnormal), +inf, 0.333251953125 (0x3555)
    // BF16: 0x3f80 = 1, 0x4049 = 3.140625, 0xc2f7 = -123.5
    const bytes = encodeSafetensors(
      [
        { name: 'a', dtype: 'F32', shape: [2, 2], bytes: f32([1.5, -2, 0, 1e-8]) },
        { name: 'b', dtype: 'F64', shape: [2], bytes: f64 },
        { name: 'c', dtype: 'F16', shape: [6], bytes: u16([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x3555]) },
        { name: 'd', dtype: 'BF16', shape: [3], bytes: u16([0x3f80, 0x4049, 0xc2f7]) },
      ],
      { format: 'pt' },
    );
    const st = parseSafetensors(bytes, F);
    expect(st.metadata).to.deep.equal({ format: 'pt' });
    expect([...st.tensors.keys()]).to.deep.equal(['a', 'b', 'c', 'd']);
    expect(st.tensors.get('a')!.shape).to.deep.equal([2, 2]);
    expect(Array.from(tensorAsFloat32(st, 'a'))).to.deep.equal([1.5, -2, 0, Math.fround(1e-8)]);
    expect(Array.from(tensorAsFloat32(st, 'b'))).to.deep.equal([Math.fround(0.1), -3]);
    expect(Array.from(tensorAsFloat32(st, 'c'))).to.deep.equal([1, -2, 65504, 2 ** -24, Infinity, 0.333251953125]);
    expect(Array.from(tensorAsFloat32(st, 'd'))).to.deep.equal([1, 3.140625, -123.5]);
    expect(Number.isNaN(halfToFloat(0x7e00))).to.equal(true);
    expect(halfToFloat(0x8000)).to.equal(-0);
  });

  it('reads the F16 parity fixture: every header entry valid, values finite', () => {
    const st = readSafetensors(path.join(__dirname, '..', 'fixtures', 'parity', 'resnet18.safetensors'));
    expect(st.metadata.classes).to.equal('10');
    expect(st.tensors.get('conv1.weight')).to.include({ dtype: 'F16' });
    const w = tensorAsFloat32(st, 'conv1.weight');
    expect(w.length).to.equal(64 * 3 * 7 * 7);
    expect(w.every(Number.isFinite)).to.equal(true);
  });

  it('accepts zero-sized tensors and an empty file body', () => {
    const st = parseSafetensors(encodeSafetensors([{ name: 'e', dtype: 'F32', shape: [0, 3], bytes: new Uint8Array(0) }]), F);
    expect(tensorAsFloat32(st, 'e').length).to.equal(0);
  });

  describe('refuses bad files, naming the file and the field', () => {
    it('shorter than the length prefix', () => expectError(() => parseSafetensors(new Uint8Array(5), F), 'header length', '8-byte'));
    it('a header larger than the cap (checked before reading it)', () =>
      expectError(() => parseSafetensors(raw('{}', undefined, 1n << 40n), F), 'header length', 'exceeds', 'limit'));
    it('a header over a custom cap', () =>
      expectError(() => parseSafetensors(raw(`{"__metadata__":{"a":"${'x'.repeat(100)}"}}`), F, { maxHeaderBytes: 64 }), 'exceeds the 64-byte limit'));
    it('a header running past the end of the file', () => expectError(() => parseSafetensors(raw('{}', undefined, 1000n), F), 'runs past the end'));
    it('malformed JSON', () => expectError(() => parseSafetensors(raw('{"a": {"dtype": "F32",'), F), 'header', 'not valid JSON'));
    it('a JSON array instead of an object', () => expectError(() => parseSafetensors(raw('[1,2]'), F), 'must be a JSON object'));
    it('non-UTF-8 header bytes', () => {
      const b = raw('{"ab":1}');
      b[10] = 0xff;
      expectError(() => parseSafetensors(b, F), 'UTF-8');
    });
    it('an unknown dtype', () =>
      expectError(() => parseSafetensors(raw('{"w":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1)), F), '"w".dtype', 'F8'));
    it('a bad shape', () =>
      expectError(() => parseSafetensors(raw('{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', new Uint8Array(4)), F), '"w".shape'));
    it('an unknown entry field', () =>
      expectError(() => parseSafetensors(raw('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}', new Uint8Array(4)), F), '"w".x', 'unknown field'));
    it('data offsets out of range', () =>
      expectError(
        () => parseSafetensors(raw('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', new Uint8Array(8)), F),
        '"w".data_offsets',
        'out of range',
      ));
    it('data offsets reversed', () =>
      expectError(() => parseSafetensors(raw('{"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}', new Uint8Array(4)), F), '"w".data_offsets'));
    it('data offsets that disagree with dtype × shape', () =>
      expectError(() => parseSafetensors(raw('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', new Uint8Array(8)), F), '"w".data_offsets', 'needs 12'));
    it('overlapping tensors', () =>
      expectError(
        () =>
          parseSafetensors(
            raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', new Uint8Array(8)),
            F,
          ),
        '"b".data_offsets',
        'overlaps',
      ));
    it('a hole between tensors', () =>
      expectError(() => parseSafetensors(raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', new Uint8Array(8)), F), '"a".data_offsets', 'hole'));
    it('trailing bytes the header does not describe', () =>
      expectError(() => parseSafetensors(raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', new Uint8Array(12)), F), 'trailing bytes'));
    it('non-string metadata', () => expectError(() => parseSafetensors(raw('{"__metadata__":{"seed":0}}'), F), '__metadata__.seed'));
    it('decoding an integer tensor as weights', () => {
      const st = parseSafetensors(encodeSafetensors([{ name: 'n', dtype: 'I64', shape: [], bytes: new Uint8Array(8) }]), F);
      expectError(() => tensorAsFloat32(st, 'n'), '"n".dtype', 'I64');
    });
    it('a missing file', () => {
      const p = path.join(os.tmpdir(), 'layertune-no-such-file.safetensors');
      if (fs.existsSync(p)) fs.unlinkSync(p);
      let err: unknown;
      try {
        readSafetensors(p);
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(ModelFormatError);
      expect((err as Error).message)
        .to.contain(p)
        .and.contain('ENOENT');
    });
  });
});

import { DataError } from '../../src/errors';
import type { Container } from 'inversify';
import { createContainer, TOKENS, type DataSourceFactory } from '../../src/container';
import type { DataSource, Example } from '../../src/data/source';
import type { JobInput } from '../../src/config/schema';
import { type Prepared, prepare } from '../../src/job';
import { tmpDir } from './images';

/**
 * Synthetic images in memory: class k is a colour gradient with a class-specific hue, so a network
 * can learn it quickly. Keys starting with "bad:" fail to decode, like a corrupt file.
 */
export class MemorySource implements DataSource {
  readonly train: Example[];
  readonly val: Example[];
  readonly skipped: Array<{ file: string; reason: string }> = [];
  readonly warnings: string[] = [];
  constructor(
    readonly classes: string[],
    perClass: number,
    valPerClass: number,
    bad: string[] = [],
  ) {
    const mk = (split: string, n: number) => classes.flatMap((_, label) => Array.from({ length: n }, (_, i) => ({ key: `${split}:${label}:${i}`, label })));
    this.train = [...mk('train', perClass), ...bad.map((b) => ({ key: `bad:${b}`, label: 0 }))];
    this.val = mk('val', valPerClass);
  }
  async pixels(ex: Example, size: number): Promise<Uint8Array> {
    if (ex.key.startsWith('bad:')) throw new DataError(ex.key, 'cannot decode image (synthetic corrupt file)');
    const i = Number(ex.key.split(':')[2]);
    const px = new Uint8Array(size * size * 3);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const o = (y * size + x) * 3;
        px[o + (ex.label % 3)] = 120 + ((x * 4 + i * 7) % 120);
        px[o + ((ex.label + 1) % 3)] = (y * 3 + i) % 60;
      }
    }
    return px;
  }
}

/** The default pipeline with the data stage rebound to `create`: how a test trains on an in-memory source. */
export function dataContainer(create: () => DataSource): Container {
  const c = createContainer();
  c.rebind<DataSourceFactory>(TOKENS.DataSource).toConstantValue({ create });
  return c;
}

/**
 * A prepared 32 px job over `source` for the divergence-guard tests: BatchNorm on stored statistics and a
 * low top rate, so ordinary steps stay well inside the guard's spike threshold.
 */
export function prepareGuardJob(source: DataSource, epochs: number): Promise<Prepared> {
  return prepare(
    {
      model: { size: 32, batchNorm: 'frozen' },
      groups: { strategy: 'stepped', top: 0.01 },
      train: { epochs, batch: 4 },
      backend: 'wasm',
      out: tmpDir(),
    } as JobInput,
    { log: () => {}, container: dataContainer(() => source) },
  );
}

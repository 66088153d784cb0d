import { expect } from 'chai';
import { injectable } from 'inversify';
import { runJob } from '../../src/job';
import { resolveJob } from '../../src/config/load';
import type { JobInput } from '../../src/config/schema';
import { createContainer, TOKENS, type DataSourceFactory } from '../../src/container';
import { CALLBACK_ORDER, inCallbackOrder, type Callback } from '../../src/train/callbacks';
import { ProgressCallback } from '../../src/train/progress';
import { InterruptOnSignal } from '../../src/train/signals';
import { MemorySource } from '../helpers/memory-source';
import { tmpDir } from '../helpers/images';

describe('callbacks run by their order', function () {
  this.timeout(300000);

  it('sorts by order, stable among equals; no order means CALLBACK_ORDER.DEFAULT', () => {
    const cb = (name: string, order?: number): Callback => ({ name, order });
    const sorted = inCallbackOrder([cb('late', 70), cb('plain-1'), cb('first', -5), cb('plain-2'), cb('at-default', 50), cb('early', 10)]);
    expect(sorted.map((c) => c.name)).to.deep.equal(['first', 'early', 'plain-1', 'plain-2', 'at-default', 'late']);
  });

  it('the signal handler runs after every built-in and user callback, wherever it is listed', () => {
    const interrupt = new InterruptOnSignal({ runDir: tmpDir() });
    try {
      const user: Callback = { name: 'mine' };
      const sorted = inCallbackOrder([interrupt, user, new ProgressCallback()]);
      expect(sorted.map((c) => c.name)).to.deep.equal(['progress', 'mine', 'signals']);
      expect(interrupt.order).to.equal(CALLBACK_ORDER.signals);
    } finally {
      interrupt.dispose();
    }
  });

  it('in runJob, a bound callback with a lower order sees each event first, whatever the binding order', async () => {
    const seen: string[] = [];
    @injectable()
    class Late implements Callback {
      readonly name = 'late';
      readonly order = 60;
      afterStep(): void {
        seen.push('late');
      }
    }
    @injectable()
    class Early implements Callback {
      readonly name = 'early';
      readonly order = 40;
      afterStep(): void {
        seen.push('early');
      }
    }
    const input = { model: { size: 32 }, train: { epochs: 1, batch: 4 }, backend: 'wasm', out: tmpDir('lt-order-') } as JobInput;
    const container = createContainer(resolveJob(input));
    container.rebind<DataSourceFactory>(TOKENS.DataSource).toConstantValue({ create: () => new MemorySource(['a', 'b'], 4, 1) });
    container.bind<Callback>(TOKENS.Callback).to(Late);
    container.bind<Callback>(TOKENS.Callback).to(Early);
    await runJob(input, { log: () => undefined, report: false, container });
    // 8 images at batch 4: two steps
    expect(seen).to.deep.equal(['early', 'late', 'early', 'late']);
  });
});

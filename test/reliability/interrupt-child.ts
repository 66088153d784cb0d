/**
 * A training run with SIGINT/SIGTERM handling, as the CLI will run it once InterruptOnSignal is wired into
 * `layertune train` (see src/train/signals.ts): `interrupt-child.ts <data> <out> <epochs>`. Exits like
 * cli/main.ts for user errors, but with the InterruptedError's own exit code (130/143).
 */
import { runJob } from '../../src/job';
import { UserError } from '../../src/errors';
import { InterruptedError, InterruptOnSignal } from '../../src/train/signals';

// `mocha test/reliability` loads every .ts in the folder: run only when started as a script
if (require.main === module) main();

function main(): void {
  const [data, out, epochs] = process.argv.slice(2);
  const handler = new InterruptOnSignal({ runDir: out });
  runJob(
    { data: { dir: data }, model: { size: 32 }, train: { epochs: Number(epochs), batch: 2, seed: 5 }, backend: 'wasm', out },
    { callbacks: [handler] },
  ).then(
    () => process.exit(0),
    (e) => {
      handler.dispose();
      if (e instanceof UserError) {
        console.error(`error: ${e.message}`);
        process.exit(e instanceof InterruptedError ? e.exitCode : 2);
      }
      console.error(e);
      process.exit(1);
    },
  );
}

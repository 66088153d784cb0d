import { Command, CommanderError } from 'commander';
import { UserError } from '../errors';
import * as train from './commands/train';
import * as predict from './commands/predict';
import * as evaluate from './commands/evaluate';
import * as plan from './commands/plan';
import * as lrFind from './commands/lr-find';
import * as search from './commands/search';
import * as report from './commands/report';
import * as inspect from './commands/inspect';
import * as demo from './commands/demo';
import * as exportWeb from './commands/export-web';
import * as augmentPreview from './commands/augment-preview';
import * as worker from './commands/worker';
import * as submit from './commands/submit';
import { packageVersion } from '../package-root';
import { InterruptedError } from '../train/signals';

/** Each command lives in its own module under commands/ and registers itself here. */
const COMMANDS: Array<{ register(program: Command): void }> = [
  train,
  plan,
  predict,
  evaluate,
  lrFind,
  search,
  report,
  inspect,
  demo,
  exportWeb,
  augmentPreview,
  worker,
  submit,
];

export function buildCli(): Command {
  const program = new Command('layertune')
    .description('Fine-tune pretrained CNNs on TensorFlow.js with layer-wise learning rates')
    .version(packageVersion(), '-V, --version')
    // flag errors come back as CommanderErrors and print as one line like every other user error (main below);
    // both settings are copied to the commands registered after them
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  for (const c of COMMANDS) c.register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildCli().parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help was printed (asked for, or a bare `layertune`): keep commander's status
      if (['commander.help', 'commander.helpDisplayed', 'commander.version'].includes(e.code)) return e.exitCode;
      console.error(`${e.message.startsWith('error: ') ? e.message : `error: ${e.message}`} (see --help)`);
      return 2;
    }
    if (e instanceof InterruptedError) {
      console.error(`error: ${e.message}`);
      return e.exitCode;
    }
    if (e instanceof UserError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

/**
 * Runs the CLI and exits with its status. bin/layertune.js calls this directly: through a
 * node_modules/.bin symlink, npx or a global install, neither require.main nor argv[1] names this file,
 * so guessing the entry point from them made the CLI a silent no-op.
 */
export function run(argv: string[] = process.argv): void {
  main(argv).then(
    (code) => process.exit(code),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}

// `node dist/cli/main.js …` (and tsx src/cli/main.ts) run it directly
if (require.main === module) run();

/** The reliability tests' names for the shared CLI runners in test/cli/run.ts. */
import { layertune, layertuneKillable, type Run } from '../cli/run';

export { ROOT, BIN } from '../cli/run';
export type CliResult = Run;

/** Runs the real CLI in a child process (what a user types), synchronously. */
export const cli = (args: string[], timeoutMs = 120000): CliResult => layertune(args, timeoutMs);

/** The CLI as a child that the test can signal; resolves when it exits. */
export function cliChild(args: string[], onLine?: (line: string, kill: (s: NodeJS.Signals) => void) => void): Promise<CliResult> {
  return layertuneKillable(args, (l, kill) => onLine?.(l, (s) => kill(s)));
}

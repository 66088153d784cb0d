/** `layertune report <runDir>`: (re)builds report.html and the PNG charts of a run folder from its metrics. */
import type { Command } from 'commander';
import { writeReport } from '../../report/report';

export function register(program: Command): void {
  program
    .command('report <runDir>')
    .description('write report.html and PNG charts (loss, accuracy, per-group lr and update ratio, confusion matrix) for a run folder')
    .action(async (runDir: string) => {
      const r = await writeReport(runDir);
      console.log(`wrote ${r.html} (${Object.keys(r.charts).join(', ')})`);
    });
}

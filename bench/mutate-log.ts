// A Stryker reporter for `npm run mutate`: every mutant, as soon as it is tested, is appended as a
// line of JSON to the file named by MUTATE_LOG, with a first line counting the mutants planned per
// file. Stryker's own reporters write only at the end of a run; with this, a run stopped half-way
// (a deadline, a shared machine) still shows what it measured: `npm run mutate -- --stopped GROUP`
// records the group's modules from it, marked as partly measured.
import { appendFileSync, writeFileSync } from 'node:fs';
import { declareClassPlugin, PluginKind } from '@stryker-mutator/api/plugin';
import type { MutantResult } from '@stryker-mutator/api/core';
import type { MutationTestingPlanReadyEvent, Reporter } from '@stryker-mutator/api/report';

/** One line of the log: a mutant as tested, with only what the results file needs. */
export interface LoggedMutant {
  fileName: string;
  status: MutantResult['status'];
  line: number;
  column: number;
  mutatorName: string;
  replacement?: string;
}

/** The first line of the log: how many mutants each file has, ignored ones left out, and the commit measured. */
export interface LoggedPlan {
  planned: Record<string, number>;
  commit?: string;
}

class MutateLog implements Reporter {
  static inject = [] as const;
  private readonly file = process.env.MUTATE_LOG;

  onMutationTestingPlanReady(event: MutationTestingPlanReadyEvent): void {
    if (!this.file) return;
    const planned: Record<string, number> = {};
    for (const { mutant } of event.mutantPlans) {
      if ('status' in mutant && mutant.status === 'Ignored') continue;
      planned[mutant.fileName] = (planned[mutant.fileName] ?? 0) + 1;
    }
    writeFileSync(this.file, JSON.stringify({ planned, commit: process.env.MUTATE_COMMIT } satisfies LoggedPlan) + '\n');
  }

  onMutantTested(r: Readonly<MutantResult>): void {
    if (!this.file) return;
    const line: LoggedMutant = { fileName: r.fileName, status: r.status, line: r.location.start.line, column: r.location.start.column, mutatorName: r.mutatorName, replacement: r.replacement };
    appendFileSync(this.file, JSON.stringify(line) + '\n');
  }
}

export const strykerPlugins = [declareClassPlugin(PluginKind.Reporter, 'mutate-log', MutateLog)];

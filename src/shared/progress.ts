// How long work says how far it has come, without knowing who listens: the pipeline, the review
// and the delivery call these; the commands decide what a person sees (a bar on a terminal, one
// line per stage in a log: src/commands/progress-view.ts). Updates come per piece, batch or
// chunk of bytes, never per row, and carry counts only, never patron data.

/** What a stage's `done` and `total` count. */
export type ProgressUnit = 'rows' | 'users' | 'bytes';

export interface ProgressStage {
  /**
   * How far the stage has come: `done` of the stage's total, in its unit, and other counts that
   * go with it (rows read while bytes are the measure; users validated and zipped while rows are).
   */
  update(done: number, counts?: Record<string, number>): void;
  /** The stage is over, with its last figures. */
  end(done?: number, counts?: Record<string, number>): void;
}

export interface Progress {
  /** A stage begins, e.g. "pass 1, indexing primary ids", counting `unit` towards `total` when it is known. */
  stage(name: string, unit: ProgressUnit, total?: number): ProgressStage;
}

const silentStage: ProgressStage = { update: () => {}, end: () => {} };

/** Progress nobody listens to. */
export const noProgress: Progress = { stage: () => silentStage };

// An undo stack: each side effect of ADD pushes its inverse; a failure unwinds them, newest first.

export class UndoStack {
  private steps: Array<{ what: string; fn: () => void | Promise<void> }> = [];

  push(what: string, fn: () => void | Promise<void>): void {
    this.steps.push({ what, fn });
  }

  /** Forgets every step: the work they would undo is now committed. */
  commit(): void {
    this.steps = [];
  }

  /** Runs every inverse, newest first, and keeps going past failures; returns what failed. */
  async unwind(): Promise<string[]> {
    const failures: string[] = [];
    for (const step of this.steps.reverse()) {
      try {
        await step.fn();
      } catch (err) {
        failures.push(`undo ${step.what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    this.steps = [];
    return failures;
  }
}
